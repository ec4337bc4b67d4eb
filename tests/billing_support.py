"""Billing test support: Stripe stand-ins (localstripe + the front), the functions served on a
real HTTP port (for webhook deliveries), signing, and Stripe-side setup with the real library."""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import time

import httpx
import pytest

from devtools.stack import Stack

PRICES = {  # price id -> (plan slug, amount in cents, interval)
    "price_starter_month": ("starter", 2900, "month"),
    "price_starter_year": ("starter", 29000, "year"),
    "price_pro_month": ("pro", 9900, "month"),
}
GOOD_CARD, FAILING_CARD = "4242424242424242", "4000000000000341"  # the second attaches, then every charge fails


EVENTS_QUEUE = "stripe-events"


@pytest.fixture(scope="session")
def stripe_stack(stack, live_url):
    """localstripe and the Stripe front on free ports; the app's billing config points at them. The
    webhook's events go through the Cloud Tasks stand-in to stripeEventWorker on the served app."""
    s = Stack(stack.logdir)
    try:
        s.stripe()
        s.apply_env()
        stack.tasks([EVENTS_QUEUE], max_retries=3)
        stack.apply_env()
        os.environ.update({"STRIPE_EVENTS_QUEUE": EVENTS_QUEUE,
                           "STRIPE_EVENT_WORKER_URL": f"{live_url}/stripeEventWorker"})
        from shared import tasks

        tasks.client.cache_clear()
        reset_billing()
        yield s
    finally:
        s.stop()


def reset_billing() -> None:
    from shared.billing import settings as billing_settings
    from shared.billing import stripe_api

    billing_settings.reset()
    stripe_api.reset()
    stripe_api.price.cache_clear()


@pytest.fixture(scope="session")
def served(stripe_stack, live_url):
    """The served functions, with the Stripe stand-ins up."""
    return live_url


@pytest.fixture(scope="session")
def sc(stripe_stack):
    """The real stripe library, pointed at the local Stripe front."""
    import stripe

    return stripe.StripeClient(os.environ["STRIPE_SECRET_KEY"], base_addresses={"api": os.environ["STRIPE_API_BASE"]})


@pytest.fixture(scope="session")
def stripe_prices(sc):
    """Products and prices in localstripe (plans with price ids: Stripe takes either)."""
    products = {}
    for price_id, (slug, amount, interval) in PRICES.items():
        if slug not in products:
            products[slug] = sc.v1.products.create({"name": slug.title(), "type": "service"}).id
        sc.v1.plans.create({"id": price_id, "amount": amount, "currency": "usd", "interval": interval,
                            "product": products[slug]})
    return products


@pytest.fixture
def plans(stripe_prices, clean_firestore):
    """The two pricing plans in Firestore (monthly prices, as the admin enters them)."""
    from shared import repos
    from shared.models import PricingPlan

    for n, slug in enumerate(("starter", "pro")):
        repos.pricing_plans.set(PricingPlan(_id=slug, slug=slug, name=slug.title(), priceMonthly=29 + 70 * n,
                                            priceYearly=290 + 700 * n, stripePriceId=f"price_{slug}_month",
                                            sortOrder=n))
    return stripe_prices


def sign(payload: bytes, t: int | None = None, secret: str | None = None) -> str:
    """A Stripe-Signature header, computed as Stripe documents it (HMAC-SHA256 of "t.payload")."""
    t = int(time.time()) if t is None else t
    secret = secret or os.environ["STRIPE_WEBHOOK_SECRET"]
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def deliver(base: str, event: dict, http: httpx.Client | None = None, **sign_kw) -> httpx.Response:
    body = json.dumps(event).encode()
    headers = {"Content-Type": "application/json", "Stripe-Signature": sign(body, **sign_kw)}
    return (http or httpx).post(f"{base}/stripeWebhook", content=body, headers=headers, timeout=60)


def make_event(etype: str, obj: dict, created: int | None = None, event_id: str | None = None) -> dict:
    """An event in Stripe's format around a real Stripe object (as Stripe would send it)."""
    return {"id": event_id or "evt_" + secrets.token_hex(12), "object": "event", "type": etype,
            "created": created or int(time.time()), "livemode": False, "api_version": "2017-08-15",
            "data": {"object": obj}, "pending_webhooks": 1, "request": {"id": None, "idempotency_key": None}}


def events_of(sc, customer: str) -> list[dict]:
    """The events localstripe recorded for a customer's objects."""
    from shared.billing.sync import customer_of

    out = []
    for ev in sc.v1.events.list({"limit": 100}).auto_paging_iter():
        ev = ev.to_dict()
        if customer_of(ev) == customer:
            out.append(ev)
    return out


def card_customer(sc, customer: str, number: str = GOOD_CARD) -> str:
    pm = sc.v1.payment_methods.create({"type": "card", "card": {"number": number, "exp_month": 12,
                                                                "exp_year": 2035, "cvc": "123"}})
    sc.v1.payment_methods.attach(pm.id, {"customer": customer})
    sc.v1.customers.update(customer, {"invoice_settings": {"default_payment_method": pm.id}})
    return pm.id


def new_customer(sc, user_id: str) -> str:
    """A Stripe customer with a working card, linked to a pending subscriptions document."""
    from shared import clock, repos
    from shared.models import Subscription

    cus = sc.v1.customers.create({"email": f"{user_id}@example.com", "metadata": {"userId": user_id}}).id
    card_customer(sc, cus)
    now = clock.now_ms()
    repos.subscriptions.set(Subscription(_id=user_id, userId=user_id, stripeCustomerId=cus, status="pending",
                                         createdAt=now, updatedAt=now))
    return cus


STRIPE_STATUS = {"active": "active", "trialing": "trialing", "past_due": "past_due", "unpaid": "past_due",
                 "canceled": "canceled", "incomplete": "pending"}


def expected_fields(sc, customer: str) -> dict:
    """What our document must say, read straight from Stripe's current state: the newest
    subscription not canceled (else the newest canceled one)."""
    subs = [s.to_dict() for s in sc.v1.subscriptions.list({"customer": customer, "status": "all"}).auto_paging_iter()]
    live = [s for s in subs if s["status"] != "canceled"]
    cur = max(live or subs, key=lambda s: (s["created"], s["id"]))
    price = cur["items"]["data"][0]["plan"]["id"]
    return {"stripeSubscriptionId": cur["id"], "status": STRIPE_STATUS[cur["status"]], "plan": PRICES[price][0],
            "trialEnd": cur["trial_end"] * 1000 if cur.get("trial_end") else None,
            "currentPeriodEnd": cur["current_period_end"] * 1000}


def doc_fields(user_id: str) -> dict:
    from shared import repos

    doc = repos.subscriptions.require(user_id)
    return {k: getattr(doc, k) for k in ("stripeSubscriptionId", "status", "plan", "trialEnd", "currentPeriodEnd")}


def ledger() -> dict[str, dict]:
    from shared import db
    from shared.billing.sync import LEDGER

    return {s.id: s.to_dict() for s in db.client().collection(LEDGER).stream()}


def settled(event_id: str, timeout: float = 30) -> dict:
    """The ledger entry of a recorded event once stripeEventWorker has applied it (fails if it does not)."""
    from shared import db
    from shared.billing.sync import LEDGER, RECEIVED

    def done():
        snap = db.client().collection(LEDGER).document(event_id).get()
        return snap.to_dict() if snap.exists and snap.get("outcome") != RECEIVED else None
    entry = wait_for(done, timeout, 0.05)
    assert entry, f"event {event_id} not applied within {timeout} s: {ledger().get(event_id)}"
    return entry


def deliver_settled(base: str, event: dict, http: httpx.Client | None = None) -> dict:
    """Deliver an event, check it is acknowledged (200) and return its ledger entry once applied."""
    r = deliver(base, event, http)
    assert r.status_code == 200 and r.json()["received"] is True, r.text
    return settled(event["id"])


def wait_for(predicate, timeout: float = 30, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(every)


def localstripe_webhook(url: str | None) -> None:
    """Point localstripe's deliveries at url (None: deliver nothing, by subscribing to no real event type)."""
    form = {"url": url or "http://127.0.0.1:9/", "secret": os.environ["STRIPE_WEBHOOK_SECRET"]}
    if url is None:
        form["events[0]"] = "none.none"
    httpx.post(f"{os.environ['LOCALSTRIPE_URL']}/_config/webhooks/app", data=form).raise_for_status()
