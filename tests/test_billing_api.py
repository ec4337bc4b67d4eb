"""billing: subscription, trial, Checkout and Portal, with the real stripe library against
localstripe and the local front that speaks Stripe's Checkout/Portal/Prices wire format."""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import httpx
from billing_support import new_customer, reset_billing

from shared import clock, entitlements, repos
from shared.models import Subscription

DAY_MS = 86_400_000


def customers_of(sc, user_id: str) -> list[str]:
    return [c.id for c in sc.v1.customers.list({"limit": 100}).auto_paging_iter()
            if (c.to_dict().get("metadata") or {}).get("userId") == user_id]


def session(sc, session_id: str) -> dict:
    return sc.v1.checkout.sessions.retrieve(session_id).to_dict()


def test_subscription_is_none_until_there_is_one(api, callers, plans):
    r = api("GET", "/billing/subscription", callers["owner"])
    assert r.status_code == 200 and r.json == {"subscription": None, "canDeploy": False}
    assert api("GET", "/billing/subscription").status_code == 401
    assert api("POST", "/billing/trial", callers["suspended"]).status_code == 403


def test_trial_starts_once(api, callers, plans):
    owner = callers["owner"]
    before = clock.now_ms()
    r = api("POST", "/billing/trial", owner)
    assert r.status_code == 201
    sub = r.json["subscription"]
    assert sub["status"] == "trialing" and sub["userId"] == owner.user_id
    assert before + 14 * DAY_MS <= sub["trialEnd"] <= clock.now_ms() + 14 * DAY_MS
    again = api("POST", "/billing/trial", owner)
    assert again.status_code == 200 and again.json["subscription"] == sub  # nothing changed
    got = api("GET", "/billing/subscription", owner).json
    assert got == {"subscription": sub, "canDeploy": True}
    assert entitlements.can_deploy(owner.user_id)


def test_trial_concurrent_calls_make_one_trial(served, callers, plans):
    token = callers["other"].token
    with ThreadPoolExecutor(6) as pool:
        codes = list(pool.map(lambda _: httpx.post(f"{served}/billing/trial", timeout=60,
                                                   headers={"Authorization": f"Bearer {token}"}).status_code,
                              range(6)))
    assert sorted(codes) == [200] * 5 + [201]
    assert len(repos.subscriptions.all({"userId": callers["other"].user_id})) == 1


def test_trial_is_refused_after_it_was_used_or_with_a_paid_subscription(api, callers, plans):
    owner = callers["owner"]
    now = clock.now_ms()
    repos.subscriptions.set(Subscription(_id=owner.user_id, userId=owner.user_id, status="canceled",
                                         trialEnd=now - DAY_MS, createdAt=now, updatedAt=now))
    r = api("POST", "/billing/trial", owner)
    assert r.status_code == 409 and r.json["error"]["code"] == "trial_unavailable"
    repos.subscriptions.update(owner.user_id, {"status": "active", "stripeSubscriptionId": "sub_x", "trialEnd": None})
    assert api("POST", "/billing/trial", owner).status_code == 409
    assert repos.subscriptions.require(owner.user_id).status == "active"


def test_expired_trial_does_not_allow_deploys(callers, plans):
    now = clock.now_ms()
    uid = callers["owner"].user_id
    repos.subscriptions.set(Subscription(_id=uid, userId=uid, status="trialing", trialEnd=now - 1,
                                         createdAt=now, updatedAt=now))
    assert not entitlements.can_deploy(uid)


def test_checkout_returns_a_stripe_url_for_the_plan_price(api, callers, plans, sc):
    owner = callers["owner"]
    r = api("POST", "/billing/checkout", owner, json={"plan": "starter", "interval": "month"})
    assert r.status_code == 200, r.json
    body = r.json
    assert body["priceId"] == "price_starter_month" and body["url"].startswith(os.environ["STRIPE_API_BASE"])
    assert httpx.get(body["url"]).status_code == 200
    cs = session(sc, body["sessionId"])
    assert cs["mode"] == "subscription" and cs["customer"] == body["customerId"]
    assert cs["client_reference_id"] == owner.user_id
    assert cs["line_items"]["data"] == [{"price": "price_starter_month", "quantity": 1}]
    doc = repos.subscriptions.require(owner.user_id)
    assert doc.stripeCustomerId == body["customerId"] and doc.status == "pending"

    yearly = api("POST", "/billing/checkout", owner, json={"plan": "starter", "interval": "year"})
    assert yearly.status_code == 200 and yearly.json["priceId"] == "price_starter_year"
    assert yearly.json["customerId"] == body["customerId"]
    assert customers_of(sc, owner.user_id) == [body["customerId"]]


def test_checkout_retries_and_second_tabs_make_one_customer(served, callers, plans, sc):
    user = callers["other"]
    headers = {"Authorization": f"Bearer {user.token}"}
    with ThreadPoolExecutor(5) as pool:
        answers = list(pool.map(lambda _: httpx.post(f"{served}/billing/checkout", headers=headers, timeout=60,
                                                     json={"plan": "pro", "interval": "month"}), range(5)))
    assert [a.status_code for a in answers] == [200] * 5, [a.text for a in answers]
    ids = {a.json()["customerId"] for a in answers}
    assert len(ids) == 1
    assert customers_of(sc, user.user_id) == list(ids)
    assert repos.subscriptions.require(user.user_id).stripeCustomerId in ids


def test_checkout_during_the_trial_keeps_the_trial_end(api, callers, plans, sc):
    owner = callers["owner"]
    trial = api("POST", "/billing/trial", owner).json["subscription"]
    r = api("POST", "/billing/checkout", owner, json={"plan": "pro"})
    assert r.status_code == 200
    data = session(sc, r.json["sessionId"])["subscription_data"]
    assert int(data["trial_end"]) == trial["trialEnd"] // 1000
    assert data["metadata"] == {"userId": owner.user_id, "plan": "pro"}
    assert repos.subscriptions.require(owner.user_id).status == "trialing"  # still on the free trial


def test_checkout_bad_input_and_unavailable_prices(api, callers, plans):
    owner = callers["owner"]
    for body in ({"plan": "gold"}, {"plan": "pro", "interval": "week"}, {"plan": "pro", "extra": 1}, {}):
        r = api("POST", "/billing/checkout", owner, json=body)
        assert r.status_code == 422 and r.json["error"]["code"] == "invalid_body"
    r = api("POST", "/billing/checkout", owner, json={"plan": "pro", "interval": "year"})
    assert r.status_code == 409 and r.json["error"]["code"] == "price_unavailable"
    repos.pricing_plans.update("starter", {"active": False})
    assert api("POST", "/billing/checkout", owner, json={"plan": "starter"}).status_code == 404
    assert repos.subscriptions.first(userId=owner.user_id) is None  # nothing half-made


def test_checkout_refused_when_already_subscribed(api, callers, plans, sc):
    owner = callers["owner"]
    new_customer(sc, owner.user_id)
    repos.subscriptions.update(owner.user_id, {"status": "active", "stripeSubscriptionId": "sub_live", "plan": "pro"})
    r = api("POST", "/billing/checkout", owner, json={"plan": "starter"})
    assert r.status_code == 409 and r.json["error"]["code"] == "already_subscribed"


def test_portal(api, callers, plans, sc):
    owner = callers["owner"]
    r = api("POST", "/billing/portal", owner)
    assert r.status_code == 409 and r.json["error"]["code"] == "no_billing_account"
    cus = new_customer(sc, owner.user_id)
    r = api("POST", "/billing/portal", owner)
    assert r.status_code == 200 and "/p/session/bps_" in r.json["url"]
    assert httpx.get(r.json["url"]).status_code == 200
    sid = r.json["url"].rsplit("/", 1)[1]
    portal = httpx.get(f"{os.environ['STRIPE_API_BASE']}/v1/billing_portal/sessions/{sid}",  # the front keeps it
                       headers={"Authorization": f"Bearer {os.environ['STRIPE_SECRET_KEY']}"}).json()
    assert portal["customer"] == cus and portal["return_url"].endswith("/billing")


def test_stripe_unreachable_is_a_clear_503(api, callers, plans, monkeypatch):
    monkeypatch.setenv("STRIPE_API_BASE", "http://127.0.0.1:9")
    monkeypatch.setenv("STRIPE_NETWORK_RETRIES", "0")
    reset_billing()
    try:
        r = api("POST", "/billing/checkout", callers["owner"], json={"plan": "starter"})
        assert r.status_code == 503 and r.json["error"]["code"] == "payment_provider_unavailable"
        assert r.headers["Retry-After"]
        assert repos.subscriptions.first(userId=callers["owner"].user_id) is None
    finally:
        monkeypatch.undo()
        reset_billing()


def test_a_second_customer_never_replaces_the_stored_one(callers, plans, sc):
    """Linking is first-wins: a customer made by a losing racer is not stored (ensure_customer deletes it)."""
    from shared.billing import account

    uid = callers["owner"].user_id
    first = new_customer(sc, uid)
    assert account._link_customer(uid, "cus_other") == first
    assert repos.subscriptions.require(uid).stripeCustomerId == first
