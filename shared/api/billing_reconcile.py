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

from shared import google_oidc, logs
from shared.billing import config as billing_config
from shared.billing import sync
from shared.errors import ApiError
from shared.http import Api, Request, json_response

api = Api("billingReconcile", "Billing reconciliation with Stripe (admin or Cloud Scheduler)")
log = logs.get("billing.reconcile")


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
    """The bearer token if it claims to be issued by Google (verified later)."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token and google_oidc.is_google_token(token) else None


def verify_scheduler(token: str) -> dict:
    cfg = billing_config.get()
    return google_oidc.verify(token, audience=cfg.reconcile_audience, service_account=cfg.scheduler_sa,
                              what="scheduler")


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
