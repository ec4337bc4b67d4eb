"""What the benchmarks share: the local stack, the one-port app on a real HTTP port, tokens."""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devtools.server import serving as served_app  # noqa: E402,F401 (re-exported)
from devtools.stack import Stack  # noqa: E402


@contextmanager
def local_stack(*services: str):
    """Start the given Stack services (default Firestore + Auth), set the environment, yield the Stack."""
    with Stack() as stack:
        for name in services or ("firestore", "auth"):
            getattr(stack, name)()
        stack.apply_env()
        os.environ.setdefault("APP_ENV", "local")
        yield stack


def token_for(stack: Stack, email: str, role: str = "user") -> tuple[str, str]:
    """(ID token, user id) of an auth-emulator account; its users document exists with `role`."""
    from devtools.token import emulator_account
    from shared import auth, clock, repos
    from shared.models import User

    acc = emulator_account(stack.env["FIREBASE_AUTH_EMULATOR_HOST"], email, "password-123")
    uid = auth.user_id_for(acc["localId"])
    now = clock.now_ms()
    repos.users.set(User(_id=uid, clerkId=acc["localId"], email=email, role=role, createdAt=now, lastSeenAt=now))
    return acc["idToken"], uid


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]
