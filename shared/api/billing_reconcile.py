"""`billingReconcile`: re-reads every open subscription from Stripe and repairs drift.

Two callers: an admin (`POST /` with a user token, through the usual Api auth), and
Cloud Scheduler, whose request carries a Google-signed OIDC token for the
BILLING_SCHEDULER_SA service account with audience BILLING_RECONCILE_URL. The
function is deployed public, so that token is verified here (Google's keys, the
audience, the issuer and the service account) before anything runs.
"""
from __future__ import annotations

from typing import Any

import flask
from pydantic import BaseModel

from shared import logs
from shared.billing import config as billing_config
from shared.billing import sync
from shared.errors import ApiError
from shared.http import Api, Request, json_response

api = Api("billingReconcile", "Billing reconciliation with Stripe (admin or Cloud Scheduler)")
log = logs.get("billing.reconcile")
GOOGLE_ISSUERS = ("https://accounts.google.com", "accounts.google.com")


class ReconcileReport(BaseModel):
    checked: int
    changed: list[dict[str, Any]]
    errors: list[dict[str, Any]]
    startedAt: int
    finishedAt: int


@api.route("POST", "/", access="admin", response=ReconcileReport)
def run_now(req: Request):
    """Admin: reconcile now; returns what changed."""
    return sync.reconcile()


def _google_token(request: flask.Request) -> str | None:
    """The bearer token if it claims to be issued by Google (not yet verified)."""
    import jwt

    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    try:
        claims = jwt.decode(token.strip(), options={"verify_signature": False})
    except jwt.InvalidTokenError:
        return None
    return token.strip() if claims.get("iss") in GOOGLE_ISSUERS else None


def verify_scheduler(token: str) -> dict:
    import jwt
    from google.auth import exceptions as gauth_exc
    from google.auth.transport import requests as gauth_requests
    from google.oauth2 import id_token

    cfg = billing_config.get()
    if not cfg.scheduler_sa or not cfg.reconcile_audience:
        raise ApiError(403, "forbidden", "scheduler calls are not configured (BILLING_SCHEDULER_SA, BILLING_RECONCILE_URL)")
    try:
        claims = id_token.verify_token(token, gauth_requests.Request(), audience=cfg.reconcile_audience,
                                       certs_url=cfg.google_certs_url)
    except gauth_exc.TransportError:
        raise ApiError(503, "unavailable", "Google's signing keys could not be fetched") from None
    except (ValueError, jwt.InvalidTokenError, jwt.PyJWKClientError, gauth_exc.GoogleAuthError) as exc:
        raise ApiError(401, "unauthenticated", f"invalid scheduler token: {type(exc).__name__}") from None
    if claims.get("iss") not in GOOGLE_ISSUERS or claims.get("email") != cfg.scheduler_sa \
            or claims.get("email_verified") is not True:
        raise ApiError(403, "forbidden", "token is not the scheduler's service account")
    return claims


def entry(request: flask.Request) -> flask.Response:
    token = _google_token(request)
    if token is None:
        return api(request)
    try:
        if request.method != "POST" or request.path.rstrip("/"):
            raise ApiError(405, "method_not_allowed", "the scheduler calls POST /", headers={"Allow": "POST"})
        verify_scheduler(token)
        report = sync.reconcile()
    except ApiError as exc:
        log.warning("scheduler call refused: %s", exc.message)
        return json_response(exc.body(), exc.status, exc.headers)
    return json_response(report)
