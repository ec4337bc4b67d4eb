"""What the customer is told about billing changes (shared/billing/notices.py), and once only."""
from shared.billing import notices
from shared.models import Subscription


def sub(**kw):
    return Subscription(**{"_id": "s1", "userId": "u1", "status": "active", "plan": "pro",
                           "stripeSubscriptionId": "sub_1",
                           "currentPeriodEnd": 1000, "createdAt": 1, "updatedAt": 1, **kw})


def test_payment_failed_cancel_and_trial_ending():
    (n,) = notices.after_change(sub(), {"status": ("active", "past_due")})
    assert n["kind"] == "billing.payment_failed" and n["user_id"] == "u1"
    (same,) = notices.after_change(sub(), {}, "invoice.payment_failed", {})
    assert same["dedupe_key"] == n["dedupe_key"]  # the event and the status change are one notice per period
    (c,) = notices.after_change(sub(), {"status": ("active", "canceled")}, "customer.subscription.deleted", {})
    assert c["kind"] == "billing.subscription_canceled"
    event = {"data": {"object": {"trial_end": 1_900_000_000}}}
    (t,) = notices.after_change(sub(status="trialing"), {}, "customer.subscription.trial_will_end", event)
    assert t["kind"] == "billing.trial_ending" and t["dedupe_key"] == "s1/trial/1900000000000"
    assert notices.trial_ending(sub(status="trialing"), 1_900_000_000_000)["dedupe_key"] == t["dedupe_key"]
    assert notices.after_change(sub(), {"plan": ("starter", "pro")}, "customer.subscription.updated", {}) == []
