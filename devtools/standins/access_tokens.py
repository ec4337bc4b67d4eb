"""OAuth access tokens of service accounts between the local stand-ins.

On Google a VM gets an access token for its attached service account from the metadata
server and every API resolves the token to that account. Locally the Compute stand-in plays
the metadata server (it mints a token for the account attached to the instance) and the
Secret Manager stand-in resolves the token back to the account; both are given the same
random key (`--token-key`, made by devtools/stack.py), so a token names an account only if
one of them minted it. A request without a token is the operator's runtime account (the
functions, which hold secretmanager.admin in production).
"""
from __future__ import annotations

import base64
import hashlib
import hmac

PREFIX = "ya29.local"


def mint(key: str, email: str) -> str:
    who = base64.urlsafe_b64encode(email.encode()).decode().rstrip("=")
    mac = hmac.new(key.encode(), who.encode(), hashlib.sha256).hexdigest()
    return f"{PREFIX}.{who}.{mac}"


def resolve(key: str, token: str) -> str | None:
    """The account a token was minted for; None if it is not one of ours."""
    if not key or not token.startswith(PREFIX + "."):
        return None
    who, _, mac = token[len(PREFIX) + 1:].partition(".")
    good = hmac.new(key.encode(), who.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(good, mac):
        return None
    return base64.urlsafe_b64decode(who + "=" * (-len(who) % 4)).decode()
