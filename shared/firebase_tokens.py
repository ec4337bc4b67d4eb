"""Firebase Auth ID tokens, checked the way firebase-admin's `verify_id_token` checks them, with
google-auth's JWT code (already loaded by the Firestore client) instead of firebase-admin, whose
import and app set-up cost a signed-in function's first request ~0.2-0.4 s.

`verify(token, project)` -> the claims. Checked, as firebase-admin does: not a custom token
(`aud` of the Identity Toolkit), a `kid` header and `alg` RS256, `aud` = the project id, `iss` =
https://securetoken.google.com/<project>, `sub` a non-empty string of at most 128 characters, the
RS256 signature by one of the keys Google publishes for securetoken, `exp` and `iat` (no clock
skew, firebase-admin's default). Revocation is not checked (firebase-admin's `check_revoked=False`).
The keys are fetched once and kept as long as their Cache-Control max-age says.

With FIREBASE_AUTH_EMULATOR_HOST set (accepted only with APP_ENV local or deploy-check:
shared/config.py refuses to start otherwise) the Auth emulator's tokens are unsigned: the header
and signature are not checked, the claims above are (as firebase-admin does for the emulator).

Errors: InvalidToken (the caller's fault: 401), KeysUnavailable (Google's keys out of reach: 503).
"""
from __future__ import annotations

import re
import threading
import time

from shared import config, faults

CERTS_URL = "https://www.googleapis.com/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com"
ISSUER_PREFIX = "https://securetoken.google.com/"
CUSTOM_TOKEN_AUDIENCE = ("https://identitytoolkit.googleapis.com/"
                         "google.identity.identitytoolkit.v1.IdentityToolkit")
FETCH_TIMEOUT_S = 10  # firebase-admin's httpTimeout as we set it
DEFAULT_MAX_AGE_S = 300  # keys served without a max-age (Google always sends one)
_MAX_AGE = re.compile(r"max-age=(\d+)")


class InvalidToken(ValueError):
    pass


class KeysUnavailable(Exception):
    pass


class _Keys:
    """Google's securetoken certificates (key id -> PEM), refreshed when their max-age runs out."""

    def __init__(self):
        self.certs: dict[str, str] | None = None
        self.until = 0.0
        self.lock = threading.Lock()

    def get(self) -> dict[str, str]:
        if self.certs is None or time.monotonic() >= self.until:
            with self.lock:  # one fetch for the requests that find the keys stale together
                if self.certs is None or time.monotonic() >= self.until:
                    self.certs, self.until = _fetch()
        return self.certs

    def reset(self) -> None:
        self.certs, self.until = None, 0.0


def _fetch() -> tuple[dict[str, str], float]:
    import requests  # loaded already by google-api-core

    try:
        resp = requests.get(CERTS_URL, timeout=faults.timeout(FETCH_TIMEOUT_S, "Firebase token keys"))
        resp.raise_for_status()
        certs = resp.json()
    except (requests.RequestException, ValueError) as exc:
        raise KeysUnavailable(f"{type(exc).__name__}: {exc}") from None
    if not isinstance(certs, dict) or not certs or not all(isinstance(v, str) for v in certs.values()):
        raise KeysUnavailable("the keys endpoint answered something else than key id -> certificate")
    m = _MAX_AGE.search(resp.headers.get("Cache-Control", ""))
    return certs, time.monotonic() + (int(m.group(1)) if m else DEFAULT_MAX_AGE_S)


keys = _Keys()


def emulated() -> bool:
    return bool(config.emulator_host("FIREBASE_AUTH"))


def verify(token: str, project: str) -> dict:
    from google.auth import exceptions as gauth_exc
    from google.auth import jwt

    try:
        header = jwt.decode_header(token)
        claims = jwt.decode(token, verify=False)
    except (ValueError, TypeError, gauth_exc.GoogleAuthError) as exc:
        raise InvalidToken(f"malformed token ({type(exc).__name__})") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise InvalidToken("malformed token")
    fake = emulated()
    sub = claims.get("sub")
    if claims.get("aud") == CUSTOM_TOKEN_AUDIENCE:
        raise InvalidToken("a custom token, not an ID token")
    if not fake and not header.get("kid"):
        raise InvalidToken("no kid header")
    if not fake and header.get("alg") != "RS256":
        raise InvalidToken(f"algorithm {header.get('alg')!r}, not RS256")
    if claims.get("aud") != project:
        raise InvalidToken("issued for another project (aud)")
    if claims.get("iss") != ISSUER_PREFIX + project:
        raise InvalidToken("issued by another issuer (iss)")
    if not isinstance(sub, str) or not sub or len(sub) > 128:
        raise InvalidToken("sub must be a string of 1 to 128 characters")
    if fake:
        return claims
    try:
        return jwt.decode(token, certs=keys.get(), audience=project, clock_skew_in_seconds=0)
    except (ValueError, gauth_exc.GoogleAuthError) as exc:
        reason = "expired" if "expired" in str(exc).lower() else type(exc).__name__
        raise InvalidToken(reason) from None
