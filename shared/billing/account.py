"""A user's side of billing: the Stripe customer (made once), the free trial, Checkout and Portal.

A user has at most one `subscriptions` document. Documents created here use the
user id as document id, so two concurrent first requests collide on one document
inside their transactions instead of creating two; documents imported from the old
backend keep their ids and are found by `userId`.
"""
from __future__ import annotations

from shared import clock, db, logs, repos
from shared.billing import config as billing_config
from shared.billing import stripe_api
from shared.errors import ApiError, not_found
from shared.models import Subscription, User

log = logs.get("billing")
DAY_MS = 86_400_000
# Stripe Checkout accepts a trial end at least 48 hours away; a shorter remainder is not carried over.
MIN_CHECKOUT_TRIAL_S = 48 * 3600 + 300


def _doc_of(tx, user_id: str) -> Subscription | None:
    own = repos.subscriptions.get(user_id, tx)  # read even when absent: a concurrent create then conflicts
    return own or repos.subscriptions.first(tx=tx, userId=user_id)


def subscription_of(user_id: str) -> Subscription | None:
    return repos.subscriptions.first(userId=user_id)


# customer
@db.transactional
def _link_customer(tx, user_id: str, customer_id: str) -> str:
    doc = _doc_of(tx, user_id)
    now = clock.now_ms()
    if doc is None:
        repos.subscriptions.create(Subscription(_id=user_id, userId=user_id, stripeCustomerId=customer_id,
                                                status="pending", createdAt=now, updatedAt=now), tx)
        return customer_id
    if doc.stripeCustomerId:
        return doc.stripeCustomerId
    repos.subscriptions.update(doc.id, {"stripeCustomerId": customer_id, "updatedAt": now}, tx)
    return customer_id


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
@db.transactional
def _start_trial(tx, user_id: str, now: int, days: int) -> tuple[Subscription, bool]:
    doc = _doc_of(tx, user_id)
    trial_end = now + days * DAY_MS
    if doc is None:
        doc = Subscription(_id=user_id, userId=user_id, status="trialing", trialEnd=trial_end,
                           createdAt=now, updatedAt=now)
        return repos.subscriptions.create(doc, tx), True
    if doc.status == "trialing" and not doc.stripeSubscriptionId and (doc.trialEnd or 0) > now:
        return doc, False  # the trial already running: a repeated call changes nothing
    if doc.status == "pending" and not doc.stripeSubscriptionId and doc.trialEnd is None:
        fields = {"status": "trialing", "trialEnd": trial_end, "updatedAt": now}
        repos.subscriptions.update(doc.id, fields, tx)
        return doc.model_copy(update=fields), True
    if doc.stripeSubscriptionId:
        raise ApiError(409, "trial_unavailable", "this account already has a paid subscription")
    raise ApiError(409, "trial_unavailable", "the free trial has already been used")


def start_trial(user_id: str) -> tuple[Subscription, bool]:
    return _start_trial(user_id, clock.now_ms(), billing_config.get().trial_days)


# checkout and portal
def checkout(user: User, plan_slug: str, interval: str) -> dict:
    plan = repos.pricing_plans.first(slug=plan_slug)
    if plan is None or not plan.active:
        raise not_found(f"plan {plan_slug!r}")
    doc = subscription_of(user.id)
    if doc and doc.stripeSubscriptionId and doc.status in ("trialing", "active", "past_due"):
        raise ApiError(409, "already_subscribed", "a subscription exists: change plans in the billing portal")
    with stripe_api.user_facing():
        price_id = stripe_api.price_for_interval(plan.stripePriceId, interval)
    if price_id is None:
        raise ApiError(409, "price_unavailable", f"plan {plan_slug!r} has no {interval}ly price")
    customer = ensure_customer(user)
    cfg = billing_config.get()
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
        raise ApiError(409, "no_billing_account", "nothing to manage yet: subscribe first")
    with stripe_api.user_facing():
        session = stripe_api.portal_session(doc.stripeCustomerId, billing_config.get().portal_return_url)
    return {"url": session["url"]}
