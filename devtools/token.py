"""Print an auth-emulator ID token for `make dev`'s stack (signs the account up on first use).

    .venv/bin/python -m devtools.token [EMAIL [PASSWORD]]
Defaults to the seeded admin. Reads the emulator address that `make dev` wrote to .devstack.json.
"""
import json
import sys
from pathlib import Path

import httpx

STATE = Path(__file__).resolve().parent.parent / ".devstack.json"
ADMIN_EMAIL, ADMIN_PASSWORD = "admin@example.com", "admin-password"  # the admin `make dev` seeds


def emulator_account(auth_host: str, email: str, password: str) -> dict:
    """Sign up (or in) on the auth emulator; returns its response with idToken and localId."""
    base = f"http://{auth_host}/identitytoolkit.googleapis.com/v1/accounts"
    body = {"email": email, "password": password, "returnSecureToken": True}
    r = httpx.post(f"{base}:signUp?key=local", json=body)
    if r.status_code != 200:
        r = httpx.post(f"{base}:signInWithPassword?key=local", json=body)
    r.raise_for_status()
    return r.json()


def main() -> int:
    if not STATE.exists():
        print("no running `make dev` stack (.devstack.json missing)", file=sys.stderr)
        return 1
    env = json.loads(STATE.read_text())
    email = sys.argv[1] if len(sys.argv) > 1 else ADMIN_EMAIL
    password = sys.argv[2] if len(sys.argv) > 2 else (ADMIN_PASSWORD if email == ADMIN_EMAIL else "password-123")
    print(emulator_account(env["FIREBASE_AUTH_EMULATOR_HOST"], email, password)["idToken"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
