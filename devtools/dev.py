"""`make dev`: start the emulators, seed demo content, serve every function on one port."""
from __future__ import annotations

import json
import os
import signal
import sys

import httpx
from werkzeug.serving import run_simple

from devtools import deploy_dev
from devtools.stack import Stack
from devtools.token import STATE


def _interrupt(signum, frame):
    raise KeyboardInterrupt  # SIGTERM stops the stack as Ctrl-C does


def main() -> int:
    signal.signal(signal.SIGTERM, _interrupt)
    port = int(os.environ.get("PORT", "8080"))
    stack = Stack()
    try:
        print("starting Firestore, Pub/Sub and Auth emulators and the local stand-ins ...", flush=True)
        stack.firestore()
        stack.pubsub()
        stack.auth()
        # deployments: Cloud Tasks queue, local Compute Engine and Secret Manager
        deploy_dev.start(stack, port)
        # costs: Cloud Tasks queue + OpenRouter/OpenAI stand-ins; tasks reach the worker on this server
        stack.tasks(["cost-pulls"])
        providers = stack.providers()
        httpx.put(f"{providers}/_control/state", json={"synthetic": True})  # every key/project answers data
        stack.env["COSTS_WORKER_URL"] = f"http://127.0.0.1:{port}/costPullWorker"
        stack.stripe()  # localstripe + the front for Prices/Checkout/Portal
        stack.tasks(["stripe-events"])  # the webhook's recorded events, applied by stripeEventWorker
        stack.env["STRIPE_EVENT_WORKER_URL"] = f"http://127.0.0.1:{port}/stripeEventWorker"
        stack.storage()  # media: Cloud Storage stand-in + local signing key
        stack.embeddings()  # knowledge: OpenAI-format embeddings (served by the provider stand-in)
        stack.apply_env()
        deploy_dev.subscribe(port)
        os.environ.setdefault("APP_ENV", "local")
        os.environ.setdefault("CORS_ORIGINS", "http://localhost:3000,http://127.0.0.1:3000")
        from devtools import seed
        from devtools.server import build_app
        from functions import FUNCTIONS

        seed.seed(stack.env["FIREBASE_AUTH_EMULATOR_HOST"])
        from devtools import seed_billing

        seed_billing.seed(stack.env, f"http://127.0.0.1:{port}/stripeWebhook")
        app = build_app()
        STATE.write_text(json.dumps({**stack.env, "PORT": str(port)}))
        for key, value in stack.env.items():
            print(f"  {key}={value}")
        print(f"  emulator logs: {stack.logdir}")
        for f in FUNCTIONS:
            print(f"function {f.name:<24} {f.trigger:<6} http://127.0.0.1:{port}/{f.name}   ({f.source})")
        print(deploy_dev.usage(port, stack.env["FIREBASE_AUTH_EMULATOR_HOST"], seed.ADMIN_EMAIL, seed.ADMIN_PASSWORD))
        print(f"API document: http://127.0.0.1:{port}/openapi.json   browse it (Swagger UI, served locally): "
              f"http://127.0.0.1:{port}/docs")
        print(f"seeded admin: {seed.ADMIN_EMAIL} / {seed.ADMIN_PASSWORD}; Ctrl-C stops everything", flush=True)
        from devtools.server import JsonErrorHandler

        run_simple("127.0.0.1", port, app, threaded=True, request_handler=JsonErrorHandler)
    except KeyboardInterrupt:
        pass
    finally:
        STATE.unlink(missing_ok=True)
        stack.stop()
        print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
