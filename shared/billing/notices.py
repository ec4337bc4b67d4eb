"""What the customer is told about billing (shared/notifications): trial ending in 3 days, payment failed,
subscription canceled. Derived from what a Stripe event or a reconciliation changed, once each (dedupe
keys name the subscription document and the period or trial end)."""
from __future__ import annotations

from shared.models import Subscription

TRIAL_NOTICE_MS = 3 * 86_400_000


def _note(doc: Subscription, kind: str, title: str, body: str, key: str) -> dict:
    return {"user_id": doc.userId, "kind": kind, "title": title, "body": body,
            "data": {"subscriptionId": doc.id, "plan": doc.plan}, "dedupe_key": f"{doc.id}/{key}"}


def trial_ending(doc: Subscription, trial_end: int | None) -> dict | None:
    if not trial_end:
        return None
    return _note(doc, "billing.trial_ending", "Your trial ends in 3 days",
                 "Add a payment method to keep your bots running after the trial.", f"trial/{trial_end}")


def after_change(doc: Subscription, changes: dict, event_type: str | None = None, event: dict | None = None) -> list:
    """Notices for `doc` given {field: (old, new)} (and the Stripe event that caused it, if any)."""
    new = {k: v for k, (_, v) in changes.items()}
    status = new.get("status", doc.status)
    period = new.get("currentPeriodEnd", doc.currentPeriodEnd)
    out = []
    if event_type == "invoice.payment_failed" or ("status" in new and status == "past_due"):
        out.append(_note(doc, "billing.payment_failed", "Your payment failed",
                         "We could not charge your card. Running bots keep running; update your payment method "
                         "to deploy again.", f"payment_failed/{period}"))
    if "status" in new and status == "canceled":
        out.append(_note(doc, "billing.subscription_canceled", "Your subscription was canceled",
                         "New deployments need a plan again. Your running bots are not stopped by this.",
                         f"canceled/{doc.stripeSubscriptionId or 'trial'}/{period}"))
    if event_type == "customer.subscription.trial_will_end":
        obj = ((event or {}).get("data") or {}).get("object") or {}
        end = int(obj["trial_end"]) * 1000 if obj.get("trial_end") else new.get("trialEnd", doc.trialEnd)
        note = trial_ending(doc, end)
        out += [note] if note else []
    return out
