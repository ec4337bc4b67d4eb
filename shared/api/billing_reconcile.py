"""`billingReconcile`: re-reads every open subscription from Stripe and repairs drift.

Two callers of `POST /`: Cloud Scheduler, with a Google-signed OIDC token for BILLING_SCHEDULER_SA
whose audience is BILLING_RECONCILE_URL (the function is deployed public, so the signature is
verified: shared/google_identity.py), and an admin with their usual user token.
"""
from __future__ import annotations

from typing import Any

from shared import logs
from shared.billing import settings as billing_settings
from shared.billing import sync
from shared.errors import Unavailable
from shared.http import Api, Reply, Request, scheduler_caller

api = Api("billingReconcile", "Billing reconciliation with Stripe (admin or Cloud Scheduler)")
log = logs.get("billing.reconcile")


class ReconcileReport(Reply):
    checked: int
    changed: list[dict[str, Any]]
    errors: list[dict[str, Any]]
    staleEventsApplied: int  # webhook events the queue gave up on, applied by this run
    startedAt: int
    finishedAt: int


@api.route("POST", "/", access="scheduler", machine=scheduler_caller(billing_settings.get), response=ReconcileReport)
def run_now(req: Request):
    """Reconcile now (Cloud Scheduler's OIDC token, or an admin); returns what changed."""
    who, admin_id = req.caller
    log.info("reconcile started", extra={"trigger": who, "adminId": admin_id})
    report = sync.reconcile()
    if any(e.get("transient") for e in report["errors"]):
        # Stripe or Firestore failed transiently (twice) for some customers: 503 makes Cloud Scheduler
        # retry the run (reconciling is idempotent); the report, as far as it got, is in the details
        raise Unavailable("reconcile_incomplete", "some subscriptions could not be checked for now; retry later",
                          report, retry_after=60)
    return report
