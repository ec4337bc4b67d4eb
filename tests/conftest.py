"""Test fixtures: the real emulators (started once per session on free ports),
the one-port app every function is mounted on, and signed-in callers."""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devtools.stack import PROJECT_ID, Stack  # noqa: E402

# Each domain's fixtures, registered once (a session fixture imported into several test
# modules would be defined, and its services started, once per module).
pytest_plugins = ["billing_support", "costs_support", "knowledge_support", "deploy_support", "notify_support"]


def pytest_addoption(parser):
    parser.addoption("--cost-table", action="store_true",
                     help="print the Firestore reads/writes of each successful access-matrix call")


def pytest_terminal_summary(terminalreporter, config):
    if not config.getoption("--cost-table"):
        return
    rows = [row for name, mod in sorted(sys.modules.items()) if name.startswith("test_access_matrix")
            for row in getattr(mod, "COST_ROWS", [])]  # every access-matrix module's metered calls
    seen, out = set(), []
    for method, path, who, status, reads, writes in rows:
        if status < 400 and (method, path) not in seen:  # first successful caller of each endpoint
            seen.add((method, path))
            out.append(f"{method:<7}{path:<70}{who:<10}{status:>7}{reads:>7}{writes:>7}")
    terminalreporter.write_line(f"{'method':<7}{'path':<70}{'caller':<10}{'status':>7}{'reads':>7}{'writes':>7}")
    for line in out:
        terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def stack():
    s = Stack()
    try:
        s.firestore()
        s.auth()
        s.apply_env()
        os.environ["APP_ENV"] = "local"
        os.environ["CORS_ORIGINS"] = "https://app.example.com"
        # the suite calls faster than a person: limits out of its way (tests/test_conventions.py sets low ones)
        os.environ["RATE_LIMITS"] = "default=1000000,embeddings=1000000,deploy=1000000,billing=1000000"
        from shared import config

        config.reset()
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="session")
def client(stack):
    from werkzeug.test import Client

    from devtools.server import build_app

    return Client(build_app())


@pytest.fixture(scope="session")
def live_url(stack):
    """Every function on a real 127.0.0.1 port (threaded), as `make dev` serves them."""
    from devtools.server import serving

    with serving() as url:
        yield url


# The services each function needs besides Firestore and Auth: the session fixture starting them
# and setting their configuration, as the deployed function has it.
SERVICES = {
    **dict.fromkeys(("billing", "stripeWebhook", "stripeEventWorker", "billingReconcile"), "stripe_stack"),
    **dict.fromkeys(("costs", "pullCosts", "pullOpenrouterActivity", "costPullWorker"), "costs_env"),
    **dict.fromkeys(("knowledge", "media", "knowledgeReembedWorker"), "kb_stack"),
    **dict.fromkeys(("deployments", "deployWorker", "pluginConfigs", "skillConfigs", "apiKeys", "backups"),
                    "deploy_env"),
}


@pytest.fixture(autouse=True)
def services_for_path(request):
    """A test parametrised with a `path` (the fuzz test) gets the services of that path's function."""
    path = getattr(getattr(request.node, "callspec", None), "params", {}).get("path")
    if isinstance(path, str):
        fixture = SERVICES.get(path.lstrip("/").split("/")[0].split("?")[0])
        if fixture:
            request.getfixturevalue(fixture)


@pytest.fixture(autouse=True)
def clean_firestore(request):
    if "stack" not in request.fixturenames and "client" not in request.fixturenames:
        yield
        return
    stack = request.getfixturevalue("stack")
    host = stack.env["FIRESTORE_EMULATOR_HOST"]
    for _ in range(50):  # 409 while a background transaction (a queued worker) still holds a lock
        r = httpx.delete(f"http://{host}/emulator/v1/projects/{PROJECT_ID}/databases/(default)/documents",
                         timeout=60)  # the first one, on a cold emulator of a loaded machine, takes seconds
        if r.status_code != 409:
            break
        time.sleep(0.1)
    r.raise_for_status()
    yield


@dataclass
class Caller:
    name: str
    token: str | None
    uid: str | None

    @property
    def user_id(self) -> str:
        from shared.auth import user_id_for

        return user_id_for(self.uid)


@pytest.fixture(scope="session")
def accounts(stack):
    from devtools.token import emulator_account

    host = stack.env["FIREBASE_AUTH_EMULATOR_HOST"]
    out = {"anonymous": Caller("anonymous", None, None)}
    for name in ("owner", "other", "admin", "suspended"):
        acc = emulator_account(host, f"{name}@example.com", "password-123")
        out[name] = Caller(name, acc["idToken"], acc["localId"])
    return out


@pytest.fixture
def callers(accounts, clean_firestore):
    """The five kinds of caller, with the admin and suspended users' documents in place."""
    from shared import clock, repos
    from shared.models import User

    now = clock.now_ms()
    for name, role, status in (("admin", "admin", "active"), ("suspended", "user", "suspended")):
        c = accounts[name]
        repos.users.set(User(_id=c.user_id, clerkId=c.uid, email=f"{name}@example.com", role=role,
                             status=status, createdAt=now, lastSeenAt=now))
    return accounts


class Api:
    """Calls the one-port app as an HTTP client would."""

    def __init__(self, client):
        self.client = client

    def __call__(self, method: str, path: str, caller: Caller | None = None, json=None, headers=None, **kw):
        h = dict(headers or {})
        if caller is not None and caller.token:
            h["Authorization"] = f"Bearer {caller.token}"
        return self.client.open(path, method=method, json=json, headers=h, **kw)


@pytest.fixture
def api(client, callers):
    return Api(client)
