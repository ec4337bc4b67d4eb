"""stripeWebhook against localstripe and the real stripe library, served on a real HTTP port, its
events applied by stripeEventWorker through the Cloud Tasks stand-in: signature checks, exactly-once
under redelivery, order independence, unknown customers, failed effects retried by the queue (no new
delivery from Stripe), a failed enqueue answered 503, and 50 concurrent mixed deliveries for one customer."""
from __future__ import annotations

import json
import random
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import stripe
from billing_support import (
    FAILING_CARD,
    card_customer,
    deliver,
    deliver_settled,
    doc_fields,
    events_of,
    expected_fields,
    ledger,
    localstripe_webhook,
    make_event,
    new_customer,
    settled,
    sign,
    wait_for,
)

from shared import entitlements, repos, tasks
from shared.billing import stripe_api
from shared.billing.sync import HANDLED, RECEIVED
from shared.errors import Forbidden


def subscribe(sc, customer: str, price: str = "price_starter_month") -> dict:
    return sc.v1.subscriptions.create({"customer": customer, "items": [{"plan": price}]}).to_dict()


def sub_now(sc, sub_id: str) -> dict:
    return sc.v1.subscriptions.retrieve(sub_id).to_dict()


def test_localstripe_delivers_signed_webhooks_and_firestore_follows(served, sc, plans):
    cus = new_customer(sc, "u_live")
    localstripe_webhook(f"{served}/stripeWebhook")
    try:
        sub = subscribe(sc, cus)
        assert wait_for(lambda: doc_fields("u_live")["status"] == "active")
        assert doc_fields("u_live") == expected_fields(sc, cus)
        assert doc_fields("u_live")["plan"] == "starter" and doc_fields("u_live")["stripeSubscriptionId"] == sub["id"]
        assert entitlements.can_deploy("u_live")

        sc.v1.subscriptions.cancel(sub["id"])
        assert wait_for(lambda: doc_fields("u_live")["status"] == "canceled")
        assert doc_fields("u_live") == expected_fields(sc, cus)
        assert not entitlements.can_deploy("u_live")
    finally:
        localstripe_webhook(None)
    mine = lambda: [e for e in ledger().values() if e["customer"] == cus]  # noqa: E731
    assert wait_for(lambda: any(e["type"] == "customer.subscription.deleted" for e in mine()))
    assert wait_for(lambda: all(e["outcome"] != RECEIVED for e in mine()))
    types = [e["type"] for e in mine()]
    assert {"customer.subscription.created", "invoice.payment_succeeded", "customer.subscription.deleted"} <= set(types)
    assert all(e["outcome"] in ("applied", "unchanged") for e in mine())


def test_past_due_keeps_bots_but_refuses_new_deployments(served, sc, plans):
    cus = new_customer(sc, "u_due")
    sub = subscribe(sc, cus)
    card_customer(sc, cus, FAILING_CARD)  # the next invoice fails
    sc.v1.subscriptions.update(sub["id"], {"items": [{"id": sub["items"]["data"][0]["id"],
                                                      "plan": "price_starter_year"}]})
    assert sub_now(sc, sub["id"])["status"] == "past_due"
    # localstripe records no invoice.payment_failed here: send Stripe's event around its real invoice
    unpaid = [i.to_dict() for i in sc.v1.invoices.list({"customer": cus}).auto_paging_iter() if i.status == "open"]
    assert len(unpaid) == 1
    invoice = unpaid[0]
    assert deliver_settled(served, make_event("invoice.payment_failed", invoice))["outcome"] == "applied"
    assert doc_fields("u_due") == expected_fields(sc, cus)
    assert doc_fields("u_due")["status"] == "past_due" and doc_fields("u_due")["plan"] == "starter"
    with pytest.raises(Forbidden) as err:
        entitlements.require_deploy_access("u_due")
    assert err.value.code == "payment_past_due"


@pytest.mark.parametrize("case", ["bad_secret", "stale", "tampered", "missing", "not_json"])
def test_bad_or_stale_signature_is_400_and_writes_nothing(served, sc, plans, case):
    cus = new_customer(sc, "u_sig")
    before = doc_fields("u_sig")
    subscribe(sc, cus)
    event = [e for e in events_of(sc, cus) if e["type"] == "customer.subscription.created"][0]
    body = json.dumps(event).encode()
    header = {"bad_secret": sign(body, secret="whsec_wrong"), "stale": sign(body, t=int(time.time()) - 3600),
              "tampered": sign(body), "missing": None, "not_json": sign(b"{not json")}[case]
    if case == "tampered":
        body = body.replace(b'"type": "customer.subscription.created"', b'"type": "customer.subscription.deleted"')
    if case == "not_json":
        body = b"{not json"
    headers = {"Content-Type": "application/json"} | ({"Stripe-Signature": header} if header else {})
    r = httpx.post(f"{served}/stripeWebhook", content=body, headers=headers)
    expected = {"missing": "missing_signature", "not_json": "invalid_payload"}.get(case, "invalid_signature")
    assert r.status_code == (400 if case == "not_json" else 401), r.text  # the signature is its credential
    assert r.json()["error"]["code"] == expected
    assert ledger() == {} and doc_fields("u_sig") == before


def test_duplicate_delivery_is_applied_once(served, sc, plans):
    cus = new_customer(sc, "u_dup")
    subscribe(sc, cus)
    event = [e for e in events_of(sc, cus) if e["type"] == "customer.subscription.created"][0]
    first = deliver(served, event)
    assert first.status_code == 200 and first.json()["duplicate"] is False
    assert settled(event["id"])["outcome"] == "applied"
    updated_at = repos.subscriptions.require("u_dup").updatedAt
    for _ in range(3):
        again = deliver(served, event)
        assert again.status_code == 200 and again.json()["duplicate"] is True
    assert list(ledger()) == [event["id"]]
    assert repos.subscriptions.require("u_dup").updatedAt == updated_at
    assert doc_fields("u_dup") == expected_fields(sc, cus)


def test_reversed_order_updated_before_created_and_deleted_before_updated(served, sc, plans):
    cus = new_customer(sc, "u_rev")
    sub = subscribe(sc, cus)
    created = [e for e in events_of(sc, cus) if e["type"] == "customer.subscription.created"][0]
    sc.v1.subscriptions.update(sub["id"], {"items": [{"id": sub["items"]["data"][0]["id"], "plan": "price_pro_month"}]})
    updated = make_event("customer.subscription.updated", sub_now(sc, sub["id"]))

    # updated arrives before created: the state is Stripe's (pro), and created does not put starter back
    assert deliver_settled(served, updated)["outcome"] == "applied"
    assert deliver_settled(served, created)["outcome"] == "unchanged"
    assert doc_fields("u_rev") == expected_fields(sc, cus)
    assert doc_fields("u_rev")["plan"] == "pro" and doc_fields("u_rev")["status"] == "active"

    # deleted arrives before a later "updated": canceled stays
    sc.v1.subscriptions.cancel(sub["id"])
    deleted = [e for e in events_of(sc, cus) if e["type"] == "customer.subscription.deleted"][0]
    late_update = make_event("customer.subscription.updated", {**sub, "status": "active"}, created=updated["created"])
    assert deliver_settled(served, deleted)["outcome"] == "applied"
    assert deliver_settled(served, late_update)["outcome"] == "unchanged"
    assert doc_fields("u_rev") == expected_fields(sc, cus)
    assert doc_fields("u_rev")["status"] == "canceled"
    assert set(ledger()) == {created["id"], updated["id"], deleted["id"], late_update["id"]}


def test_replayed_old_event_does_not_overwrite_newer_state(served, sc, plans):
    cus = new_customer(sc, "u_old")
    first = subscribe(sc, cus)
    sc.v1.subscriptions.cancel(first["id"])
    old_events = events_of(sc, cus)
    time.sleep(1.1)  # a later `created` second, so Stripe's newest subscription is unambiguous
    second = subscribe(sc, cus, "price_pro_month")
    for e in events_of(sc, cus):
        assert deliver(served, e).status_code == 200
        if e["type"] in HANDLED:
            settled(e["id"])
    assert doc_fields("u_old")["stripeSubscriptionId"] == second["id"] and doc_fields("u_old")["plan"] == "pro"

    # the same old events again (replay) and an old one never seen before: nothing moves back
    replay = [deliver(served, e).json() for e in old_events]
    assert all(r.get("duplicate") or r.get("ignored") for r in replay)
    unseen_old = make_event("customer.subscription.deleted", {**first, "status": "canceled"}, created=first["created"])
    assert deliver_settled(served, unseen_old)["outcome"] == "unchanged"
    assert doc_fields("u_old") == expected_fields(sc, cus)
    assert doc_fields("u_old")["status"] == "active"


def test_unknown_customer_is_recorded_and_answered_2xx(served, sc, plans):
    cus = sc.v1.customers.create({"email": "stranger@example.com"}).id
    card_customer(sc, cus)
    subscribe(sc, cus)
    event = [e for e in events_of(sc, cus) if e["type"] == "customer.subscription.created"][0]
    assert deliver_settled(served, event)["outcome"] == "unknown_customer"
    assert repos.subscriptions.first(stripeCustomerId=cus) is None
    assert deliver(served, event).json()["duplicate"] is True


def test_failed_effect_is_retried_by_the_queue_without_a_new_delivery(served, sc, plans, monkeypatch):
    cus = new_customer(sc, "u_fail")
    subscribe(sc, cus)
    event = [e for e in events_of(sc, cus) if e["type"] == "customer.subscription.created"][0]
    real, calls = stripe_api.customer_subscriptions, []

    def flaky(customer_id):  # Stripe unreachable for the worker's first two deliveries
        calls.append(customer_id)
        if len(calls) <= 2:
            raise stripe.APIConnectionError("Stripe could not be reached")
        return real(customer_id)
    monkeypatch.setattr(stripe_api, "customer_subscriptions", flaky)
    started = time.monotonic()
    r = deliver(served, event)
    acked = time.monotonic() - started
    assert r.status_code == 200 and r.json() == {"received": True, "eventId": event["id"], "duplicate": False}
    assert acked < 5 and ledger()[event["id"]]["outcome"] in (RECEIVED, "applied")  # answered before the effect
    assert settled(event["id"])["outcome"] == "applied"  # the queue's third delivery, one from Stripe
    assert len(calls) == 3
    assert doc_fields("u_fail") == expected_fields(sc, cus) and list(ledger()) == [event["id"]]


def test_event_recorded_but_not_queued_is_503_and_the_redelivery_queues_it(served, sc, plans, monkeypatch):
    cus = new_customer(sc, "u_q")
    subscribe(sc, cus)
    event = [e for e in events_of(sc, cus) if e["type"] == "customer.subscription.created"][0]
    real = tasks.enqueue

    def down(*args, **kwargs):
        raise RuntimeError("Cloud Tasks unavailable")
    monkeypatch.setattr(tasks, "enqueue", down)
    r = deliver(served, event)
    assert r.status_code == 503 and r.json()["error"]["code"] == "queue_unavailable" and r.headers["Retry-After"]
    assert ledger()[event["id"]]["outcome"] == RECEIVED and doc_fields("u_q")["status"] == "pending"
    monkeypatch.setattr(tasks, "enqueue", real)
    again = deliver(served, event)  # Stripe's retry: recorded but never applied, so queued again
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert settled(event["id"])["outcome"] == "applied"
    assert doc_fields("u_q") == expected_fields(sc, cus)


def test_50_concurrent_mixed_deliveries_for_one_customer(served, sc, plans):
    cus = new_customer(sc, "u_many")
    sub = subscribe(sc, cus)
    events = []
    for price in ("price_pro_month", "price_starter_month", "price_pro_month"):
        sc.v1.subscriptions.update(sub["id"], {"items": [{"id": sub_now(sc, sub["id"])["items"]["data"][0]["id"],
                                                          "plan": price}]})
        events.append(make_event("customer.subscription.updated", sub_now(sc, sub["id"])))
    sc.v1.subscriptions.cancel(sub["id"])
    time.sleep(1.1)
    second = subscribe(sc, cus, "price_pro_month")
    events.append(make_event("customer.subscription.updated", sub_now(sc, second["id"])))
    events += [e for e in events_of(sc, cus) if e["type"].startswith(("customer.subscription.", "invoice."))]
    events.append(make_event("checkout.session.completed", {"id": "cs_test_x", "object": "checkout.session",
                                                            "customer": cus, "subscription": second["id"]}))
    distinct = {e["id"] for e in events}
    rng = random.Random(7)
    deliveries = events + [rng.choice(events) for _ in range(50 - len(events))]
    rng.shuffle(deliveries)
    assert len(deliveries) == 50 and len(distinct) >= 10

    with httpx.Client(limits=httpx.Limits(max_connections=50)) as http, ThreadPoolExecutor(50) as pool:
        results = list(pool.map(lambda e: deliver(served, e, http), deliveries))
    assert [r.status_code for r in results] == [200] * 50, [r.text for r in results if r.status_code != 200]
    handled = {e["id"] for e in events if e["type"] in HANDLED}
    for event_id in handled:
        settled(event_id)

    assert doc_fields("u_many") == expected_fields(sc, cus)
    assert doc_fields("u_many")["stripeSubscriptionId"] == second["id"]
    book = ledger()
    assert set(book) == handled  # each handled event exactly once (keyed by event id)
    assert all(e["outcome"] in ("applied", "unchanged") for e in book.values())
    first = sum(1 for r in results if r.json().get("duplicate") is False)
    assert first == len(handled)  # every other delivery was answered as a duplicate


def test_unhandled_types_are_acknowledged_and_oversized_bodies_refused(served, sc, plans):
    cus = new_customer(sc, "u_misc")
    created = [e for e in events_of(sc, cus) if e["type"] == "customer.created"][0]
    r = deliver(served, created)
    assert r.status_code == 200 and r.json()["ignored"] is True and ledger() == {}
    body = b'{"id": "evt_big", "type": "invoice.paid", "pad": "' + b"x" * 600_000 + b'"}'
    r = httpx.post(f"{served}/stripeWebhook", content=body, headers={"Stripe-Signature": sign(body)})
    assert r.status_code == 413 and ledger() == {}
