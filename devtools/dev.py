"""`make dev`: start the emulators, seed demo content, serve every function on one port."""
from __future__ import annotations

import os
import signal
import sys

from werkzeug.serving import run_simple

from devtools import deploy_dev
from devtools.stack import Stack


def _terminate(*_):
    raise KeyboardInterrupt  # SIGTERM stops the stack too (a background `make dev` ignores SIGINT)


def main() -> int:
    signal.signal(signal.SIGTERM, _terminate)
    port = int(os.environ.get("PORT", "8080"))
    stack = Stack()
    try:
        print("starting Firestore, Pub/Sub and Auth emulators, Cloud Tasks, local Compute and Secret Manager ...", flush=True)
        stack.firestore()
        stack.pubsub()
        stack.auth()
        deploy_dev.start(stack, port)
        stack.apply_env()
        deploy_dev.subscribe(port)
        os.environ.setdefault("APP_ENV", "local")
        os.environ.setdefault("CORS_ORIGINS", "http://localhost:3000,http://127.0.0.1:3000")
        from devtools import seed
        from devtools.catalog import FUNCTIONS
        from devtools.server import build_app

        seed.seed(stack.env["FIREBASE_AUTH_EMULATOR_HOST"])
        app = build_app()
        for key, value in stack.env.items():
            print(f"  {key}={value}")
        print(f"  emulator logs: {stack.logdir}")
        for name, src, trigger in FUNCTIONS:
            print(f"function {name:<24} {trigger:<6} http://127.0.0.1:{port}/{name}   ({src})")
        print(deploy_dev.usage(port, stack.env["FIREBASE_AUTH_EMULATOR_HOST"], seed.ADMIN_EMAIL, seed.ADMIN_PASSWORD))
        print(f"seeded admin: {seed.ADMIN_EMAIL} / {seed.ADMIN_PASSWORD}; Ctrl-C stops everything", flush=True)
        run_simple("127.0.0.1", port, app, threaded=True)
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()
        print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
