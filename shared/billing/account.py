"""A user's side of billing: the Stripe customer (made once), the free trial, Checkout and Portal.

A user has at most one `subscriptions` document. Documents created here use the
user id as document id, so two concurrent first requests collide on one create
instead of making two; documents imported from the old backend keep their ids and
are found by `userId`. Changes are optimistic single-document writes (create, or
update with an update-time precondition), re-read and retried when they lose a race.
"""
from __future__ import annotations

from google.api_core import exceptions as gexc

from shared import clock, db, logs, repos
from shared.billing import settings as billing_settings
from shared.billing import stripe_api
from shared.errors import Conflict, not_found
from shared.models import Subscription, User

log = logs.get("billing")
DAY_MS = 86_400_000
MAX_ROUNDS = 10
# Stripe Checkout accepts a trial end at least 48 hours away; a shorter remainder is not carried over.
MIN_CHECKOUT_TRIAL_S = 48 * 3600 + 300


def _snap_of(user_id: str):
    """The user's subscriptions document snapshot (ours by id, else an imported one by userId), or None."""
    own = repos.subscriptions.ref(user_id).get()
    if own.exists:
        return own
    for snap in repos.subscriptions.query({"userId": user_id}).limit(1).stream():
        return snap
    return None


def _update_if_unchanged(snap, fields: dict) -> bool:
    """Write only if nobody changed the document since `snap` (no lock is held meanwhile)."""
    try:
        snap.reference.update(fields, option=db.client().write_option(last_update_time=snap.update_time))
        return True
    except gexc.FailedPrecondition:
        return False


def _create(doc: Subscription) -> bool:
    try:
        repos.subscriptions.create(doc)
        return True
    except gexc.AlreadyExists:  # a concurrent first request created it: read again
        return False


def subscription_of(user_id: str) -> Subscription | None:
    return repos.subscriptions.first(userId=user_id)


# customer
def _link_customer(user_id: str, customer_id: str) -> str:
    """Store the customer id unless one is stored already; returns the stored one."""
    for _ in range(MAX_ROUNDS):
        snap, now = _snap_of(user_id), clock.now_ms()
        doc = repos.subscriptions.load(snap) if snap else None
        if doc is None:
            if _create(Subscription(_id=user_id, userId=user_id, stripeCustomerId=customer_id,
                                    status="pending", createdAt=now, updatedAt=now)):
                return customer_id
        elif doc.stripeCustomerId:
            return doc.stripeCustomerId
        elif _update_if_unchanged(snap, {"stripeCustomerId": customer_id, "updatedAt": now}):
            return customer_id
    raise Conflict("conflict", "the subscription kept changing; try again")


def ensure_customer(user: User) -> str:
    """The user's Stripe customer id, creating the customer on first use.

    The create call carries an idempotency key derived from the user, so retries and a
    second tab get the same customer from Stripe; the id is then stored only if none is
    stored yet. Should two different customers still appear (a key older than Stripe's
    24 h memory), the one not stored is deleted, so no orphan is left behind.
    """
    doc = subscription_of(user.id)
    if doc and doc.stripeCustomerId:
        return doc.stripeCustomerId
    with stripe_api.user_facing():
        created = stripe_api.create_customer(user.id, user.email, user.name)
    stored = _link_customer(user.id, created)
    if stored != created:
        log.warning("duplicate Stripe customer removed", extra={"userId": user.id, "customer": created})
        with stripe_api.user_facing():
            stripe_api.delete_customer(created)
    return stored


# trial
def _trial_step(user_id: str, now: int, days: int) -> tuple[Subscription, bool] | None:
    """One optimistic attempt; None when a concurrent request changed the document first."""
    snap = _snap_of(user_id)
    doc = repos.subscriptions.load(snap) if snap else None
    trial_end = now + days * DAY_MS
    if doc is None:
        doc = Subscription(_id=user_id, userId=user_id, status="trialing", trialEnd=trial_end,
                           createdAt=now, updatedAt=now)
        return (doc, True) if _create(doc) else None
    if doc.status == "trialing" and not doc.stripeSubscriptionId and (doc.trialEnd or 0) > now:
        return doc, False  # the trial already running: a repeated call changes nothing
    if doc.status == "pending" and not doc.stripeSubscriptionId and doc.trialEnd is None:
        fields = {"status": "trialing", "trialEnd": trial_end, "updatedAt": now}
        return (doc.model_copy(update=fields), True) if _update_if_unchanged(snap, fields) else None
    if doc.stripeSubscriptionId:
        raise Conflict("trial_unavailable", "this account already has a paid subscription")
    raise Conflict("trial_unavailable", "the free trial has already been used")


def start_trial(user_id: str) -> tuple[Subscription, bool]:
    days = billing_settings.get().trial_days
    for _ in range(MAX_ROUNDS):
        result = _trial_step(user_id, clock.now_ms(), days)
        if result is not None:
            return result
    raise Conflict("conflict", "the subscription kept changing; try again")


# checkout and portal
def checkout(user: User, plan_slug: str, interval: str) -> dict:
    plan = repos.pricing_plans.first(slug=plan_slug)
    if plan is None or not plan.active:
        raise not_found(f"plan {plan_slug!r}")
    doc = subscription_of(user.id)
    if doc and doc.stripeSubscriptionId and doc.status in ("trialing", "active", "past_due"):
        raise Conflict("already_subscribed", "a subscription exists: change plans in the billing portal")
    with stripe_api.user_facing():
        price_id = stripe_api.price_for_interval(plan.stripePriceId, interval)
    if price_id is None:
        raise Conflict("price_unavailable", f"plan {plan_slug!r} has no {interval}ly price")
    customer = ensure_customer(user)
    cfg = billing_settings.get()
    sub_data: dict = {"metadata": {"userId": user.id, "plan": plan_slug}}
    now_s = clock.now_ms() // 1000
    if doc and doc.status == "trialing" and not doc.stripeSubscriptionId and doc.trialEnd \
            and doc.trialEnd // 1000 - now_s >= MIN_CHECKOUT_TRIAL_S:
        sub_data["trial_end"] = doc.trialEnd // 1000  # paying during the free trial does not shorten it
    with stripe_api.user_facing():
        session = stripe_api.checkout_session({
            "mode": "subscription", "customer": customer, "client_reference_id": user.id,
            "line_items": [{"price": price_id, "quantity": 1}],
            "success_url": cfg.success_url, "cancel_url": cfg.cancel_url,
            "subscription_data": sub_data, "metadata": {"userId": user.id, "plan": plan_slug},
        })
    return {"url": session["url"], "sessionId": session["id"], "customerId": customer, "priceId": price_id}


def portal(user: User) -> dict:
    doc = subscription_of(user.id)
    if doc is None or not doc.stripeCustomerId:
        raise Conflict("no_billing_account", "nothing to manage yet: subscribe first")
    with stripe_api.user_facing():
        session = stripe_api.portal_session(doc.stripeCustomerId, billing_settings.get().portal_return_url)
    return {"url": session["url"]}
