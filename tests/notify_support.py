"""Fixtures of the notification and webhook tests: the deliveries' queue on the Cloud Tasks stand-in,
the app served on a real port (deploy_support's), and a receiving server that records what it gets."""
from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

QUEUE = "webhook-deliveries"


class Receiver:
    """A webhook receiver on 127.0.0.1: records each request; answers `statuses` in turn (then 200)."""

    def __init__(self):
        self.requests: list[dict] = []
        self.statuses: list[int] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with outer.lock:
                    outer.requests.append({"path": self.path, "body": body,
                                           "headers": {k.lower(): v for k, v in self.headers.items()}})
                    status = outer.statuses.pop(0) if outer.statuses else 200
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(json.dumps({"received": status < 300}).encode())

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.statuses.clear()


def notify_settings(base_url: str) -> dict[str, str]:
    return {"WEBHOOKS_WORKER_URL": f"{base_url}/webhookWorker", "WEBHOOKS_QUEUE": QUEUE,
            "WEBHOOKS_BACKOFF_S": "0.2,0.4", "WEBHOOKS_RETRY_WINDOW_S": "3", "WEBHOOKS_SWEEP_AFTER_S": "1",
            "WEBHOOKS_TIMEOUT_MS": "3000", "OUTBOUND_ALLOW_LOOPBACK": "on"}


def reset_notify(**overrides: str) -> None:
    from shared import config
    from shared.notifications import settings

    os.environ.update(overrides)
    config.reset()
    settings.reset()
    try:
        from shared import outbound
        outbound.reset()
    except ImportError:
        pass


@pytest.fixture(scope="session")
def notify_env(deploy_env):
    deploy_env.stack.tasks([QUEUE])
    env = notify_settings(deploy_env.base_url)
    reset_notify(**env)
    receiver = Receiver()
    deploy_env.receiver = receiver
    yield deploy_env
    receiver.server.shutdown()
    for key in env:
        os.environ.pop(key, None)


@pytest.fixture
def nenv(notify_env, denv):
    """Per test: the receiver forgets, the settings are the fixture's again."""
    notify_env.receiver.reset()
    reset_notify(**notify_settings(notify_env.base_url))
    yield notify_env
    reset_notify(**notify_settings(notify_env.base_url))
