"""Which Google identity is calling: the OIDC ID tokens Cloud Tasks and Cloud Scheduler send for
a service account. Every function called by them checks its caller here, and only here.

- `verify(token, account=, audience=, private=, what=)` -> the token's claims, checked: issuer is
  Google, `aud` is the function's URL, not expired (nor issued in the future) beyond LEEWAY_S,
  `email` is the expected service account with `email_verified`.
  * private=True: the function is deployed with --no-allow-unauthenticated, so Google's front has
    verified the signature and replaced it with `SIGNATURE_REMOVED_BY_GOOGLE` before the request
    reaches us: such a token is decoded without a signature check. A token that still carries a
    signature is verified as below (defense in depth).
  * private=False (public functions Cloud Scheduler calls): the signature is verified with Google's
    keys (GOOGLE_CERTS_URL points at a local key server with APP_ENV local or deploy-check).
  Errors: 401 `unauthenticated` (missing, malformed, expired, badly signed token, wrong audience or
  issuer), 403 `forbidden` (another account, or account/audience not configured), 503
  `unavailable` (Google's keys unreachable).
- `caller(request, ...)`: the same for the request's `Authorization: Bearer` token.
- `cloud_task(request, queue=, ...)`: the Cloud Tasks workers: the queue's X-CloudTasks-* headers
  (403 `not_cloud_tasks`), then the token. APP_ENV=local only: headers and no token are accepted
  (the local Cloud Tasks stand-in sends none unless started with --oidc-key).
- `scheduler_or_admin(request, ...)`: a bearer token issued by Google is the scheduler (verified,
  public); anything else must be an admin's user token (shared.auth). APP_ENV=local only: the
  X-CloudScheduler-ScheduleTime header without an Authorization header is the scheduler.
"""
from __future__ import annotations

import time

import flask

from shared import config
from shared.errors import Forbidden, Unauthenticated, Unavailable

GOOGLE_ISSUERS = ("https://accounts.google.com", "accounts.google.com")
GOOGLE_CERTS = "https://www.googleapis.com/oauth2/v3/certs"
SIGNATURE_REMOVED = "SIGNATURE_REMOVED_BY_GOOGLE"
LEEWAY_S = 30


def certs_url() -> str:
    """Google's ID-token keys; GOOGLE_CERTS_URL points at a local key server (local, deploy-check)."""
    config.refuse_local_endpoint("GOOGLE_CERTS_URL")
    return config.env("GOOGLE_CERTS_URL") or GOOGLE_CERTS


def _unauthenticated(message: str) -> Unauthenticated:
    return Unauthenticated("unauthenticated", message, challenge="Bearer")


def bearer(request: flask.Request) -> str | None:
    """The bearer token; None without an Authorization header; 401 for another scheme."""
    header = request.headers.get("Authorization", "")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthenticated("Authorization must be 'Bearer <token>'")
    return token.strip()


def is_google(token: str) -> bool:
    """Whether the token says Google issued it (read without verifying: only to route it)."""
    import jwt

    try:
        return jwt.decode(token, options={"verify_signature": False}).get("iss") in GOOGLE_ISSUERS
    except jwt.InvalidTokenError:
        return False


def _signature_removed(token: str) -> bool:
    return token.count(".") == 2 and token.rsplit(".", 1)[1] == SIGNATURE_REMOVED


def _decode_unverified(token: str, what: str) -> dict:
    import jwt

    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError as exc:
        raise _unauthenticated(f"invalid OIDC token for the {what}: {type(exc).__name__}") from None
    return claims


def _verify_signature(token: str, audience: str, what: str) -> dict:
    import jwt  # google-auth checks JWK-format keys with PyJWT
    from google.auth import exceptions as gauth_exc
    from google.auth.transport import requests as greq
    from google.oauth2 import id_token

    try:
        return dict(id_token.verify_token(token, greq.Request(), audience=audience, certs_url=certs_url(),
                                          clock_skew_in_seconds=LEEWAY_S))
    except gauth_exc.TransportError:
        raise Unavailable("unavailable", "Google's signing keys could not be fetched") from None
    except (ValueError, gauth_exc.GoogleAuthError, jwt.InvalidTokenError, jwt.PyJWKError) as exc:
        raise _unauthenticated(f"invalid OIDC token for the {what}: {type(exc).__name__}") from None


def _check_claims(claims: dict, *, account: str, audience: str, what: str) -> None:
    now = time.time()
    if claims.get("iss") not in GOOGLE_ISSUERS:
        raise _unauthenticated(f"OIDC token for the {what} from another issuer")
    aud = claims.get("aud")
    if aud != audience and not (isinstance(aud, list) and audience in aud):
        raise _unauthenticated(f"OIDC token for the {what} has another audience")
    exp, iat = claims.get("exp"), claims.get("iat")
    if not isinstance(exp, (int, float)) or not isinstance(iat, (int, float)):
        raise _unauthenticated(f"invalid OIDC token for the {what}: exp and iat are required")
    if exp < now - LEEWAY_S:
        raise _unauthenticated(f"OIDC token for the {what} has expired")
    if iat > now + LEEWAY_S:
        raise _unauthenticated(f"OIDC token for the {what} is issued in the future")
    if claims.get("email") != account or claims.get("email_verified") is not True:
        raise Forbidden("forbidden", f"the token is not the {what}'s service account")


def verify(token: str, *, account: str | None, audience: str | None, private: bool, what: str) -> dict:
    """The claims of a Google-issued OIDC token for `account`, meant for `audience` (see above)."""
    if not account or not audience:
        raise Forbidden("forbidden", f"{what} calls are not configured (service account and audience)")
    claims = _decode_unverified(token, what)  # a malformed token is refused before any key fetch
    if not (private and _signature_removed(token)):  # else Google's front has verified the signature
        claims = _verify_signature(token, audience, what)
    _check_claims(claims, account=account, audience=audience, what=what)
    return claims


def caller(request: flask.Request, *, account: str | None, audience: str | None, private: bool,
           what: str) -> dict:
    """The claims of the request's bearer token, verified as `verify` does."""
    token = bearer(request)
    if token is None:
        raise _unauthenticated(f"an OIDC token for the {what} is required")
    return verify(token, account=account, audience=audience, private=private, what=what)


def cloud_task(request: flask.Request, *, queue: str, account: str | None, audience: str | None,
               what: str) -> dict | None:
    """A Cloud Tasks delivery from `queue` (short name) to a private worker: its headers, then
    its OIDC token. Returns the claims; None for the local shortcut (APP_ENV=local, no token)."""
    if (request.headers.get("X-CloudTasks-QueueName", "").rsplit("/", 1)[-1] != queue
            or not request.headers.get("X-CloudTasks-TaskName")):
        raise Forbidden("not_cloud_tasks", f"only the {queue} queue may call the {what}")
    if "Authorization" not in request.headers and config.get().local:
        return None
    return caller(request, account=account, audience=audience, private=True, what=what)


def scheduler_or_admin(request: flask.Request, *, account: str | None,
                       audience: str | None) -> tuple[str, str | None]:
    """("scheduler", None) for Cloud Scheduler's OIDC token (a public function: the signature is
    verified), else ("admin", user id) for an admin's user token (401/403 otherwise)."""
    token = bearer(request)
    if token is None and config.get().local and "X-CloudScheduler-ScheduleTime" in request.headers:
        return "scheduler", None
    if token is not None and is_google(token):
        verify(token, account=account, audience=audience, private=False, what="scheduler")
        return "scheduler", None
    from shared import auth  # keeps the user token checks and repositories out of start-up

    admin = auth.authenticate(request, "admin", allow_suspended=False)
    assert admin is not None  # access "admin": a caller, or it raised
    return "admin", admin.id
