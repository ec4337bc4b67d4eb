"""Google-signed OIDC ID tokens, as Cloud Scheduler and Cloud Tasks send them to our functions.

`verify` checks signature (Google's certificates), audience, issuer and the caller's service
account; failures are ApiErrors (401 bad token, 403 another account, 503 keys unreachable).
"""
from __future__ import annotations

from shared import config
from shared.errors import ApiError

GOOGLE_ISSUERS = ("https://accounts.google.com", "accounts.google.com")
GOOGLE_CERTS = "https://www.googleapis.com/oauth2/v3/certs"


def certs_url() -> str:
    """Google's ID-token keys; GOOGLE_CERTS_URL points at a local key server (local, deploy-check)."""
    config.refuse_local_endpoint("GOOGLE_CERTS_URL")
    return config.env("GOOGLE_CERTS_URL") or GOOGLE_CERTS


def unverified_issuer(token: str) -> str | None:
    """The `iss` claim, read without verifying: only to route a token to the right verifier."""
    import jwt

    try:
        return jwt.decode(token, options={"verify_signature": False}).get("iss")
    except jwt.InvalidTokenError:
        return None


def is_google_token(token: str) -> bool:
    return unverified_issuer(token) in GOOGLE_ISSUERS


def verify(token: str, *, audience: str | None, service_account: str | None, what: str = "caller") -> dict:
    import jwt  # google-auth checks JWK-format keys with PyJWT
    from google.auth import exceptions as gauth_exc
    from google.auth.transport import requests as greq
    from google.oauth2 import id_token

    if not audience or not service_account:
        raise ApiError(403, "forbidden", f"{what} calls are not configured (service account and audience)")
    try:
        claims = id_token.verify_token(token, greq.Request(), audience=audience, certs_url=certs_url())
    except gauth_exc.TransportError:
        raise ApiError(503, "unavailable", "Google's signing keys could not be fetched") from None
    except (ValueError, gauth_exc.GoogleAuthError, jwt.InvalidTokenError, jwt.PyJWKClientError) as exc:
        raise ApiError(401, "unauthenticated", f"invalid {what} token: {type(exc).__name__}") from None
    if claims.get("iss") not in GOOGLE_ISSUERS:
        raise ApiError(401, "unauthenticated", f"{what} token from another issuer")
    if claims.get("email") != service_account or claims.get("email_verified") is not True:
        raise ApiError(403, "forbidden", f"token is not the {what}'s service account")
    return claims
