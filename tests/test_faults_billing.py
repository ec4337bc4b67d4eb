"""Billing under faults: Stripe timing out is transient everywhere. A webhook's event is recorded and
acknowledged; the worker answers 503 and the queue delivers it again until it applies; reconciliation retries a
customer once in the run, reports what still failed as transient and answers 503 so Cloud
Scheduler retries the run; a permanent Stripe error is reported and the run still answers 200."""
from __future__ import annotations

import requests
import stripe
from billing_support import doc_fields, events_of, expected_fields, ledger, new_customer, settled, sign
from test_billing_reconcile import drifted_customer
from test_billing_webhook import subscribe

from shared import repos
from shared.billing import stripe_api


def flaky(monkeypatch, fail_for: dict[str, int]):
    """customer_subscriptions raising Stripe's connection error (a read timeout inside) for the
    given customers, that many times each (-1: always)."""
    real = stripe_api.customer_subscriptions

    def patched(customer_id):
        left = fail_for.get(customer_id, 0)
        if left:
            fail_for[customer_id] = left - 1 if left > 0 else left
            try:
                raise requests.exceptions.ReadTimeout("read timed out")
            except requests.exceptions.ReadTimeout as exc:
                raise stripe.APIConnectionError("Request to Stripe timed out") from exc
        return real(customer_id)
    monkeypatch.setattr(stripe_api, "customer_subscriptions", patched)


def post_event(client, event):
    import json

    body = json.dumps(event).encode()
    return client.post("/stripeWebhook", data=body,
                       headers={"Stripe-Signature": sign(body), "Content-Type": "application/json"})


def test_webhook_with_stripe_timing_out_is_acknowledged_then_applied_by_the_queue(client, sc, plans, monkeypatch):
    cus = new_customer(sc, "u_wh")
    subscribe(sc, cus)
    event = [e for e in events_of(sc, cus) if e["type"] == "customer.subscription.created"][0]
    flaky(monkeypatch, {cus: 1})
    r = post_event(client, event)
    assert r.status_code == 200 and r.json["received"] is True, r.json  # the webhook itself calls no Stripe API
    assert settled(event["id"])["outcome"] == "applied"  # the worker's 503 made the queue deliver it again
    assert list(ledger()) == [event["id"]] and doc_fields("u_wh") == expected_fields(sc, cus)


def test_reconcile_retries_transient_failures_and_asks_the_scheduler_to_retry(api, callers, plans, sc,
                                                                               monkeypatch):
    once, _ = drifted_customer(sc, "u_once")
    always, _ = drifted_customer(sc, "u_always")
    flaky(monkeypatch, {once: 1, always: -1})
    r = api("POST", "/billingReconcile", callers["admin"])
    assert r.status_code == 503 and r.json["error"]["code"] == "reconcile_incomplete", r.json
    report = r.json["error"]["details"]
    assert [c["subscriptionId"] for c in report["changed"]] == ["u_once"]  # retried within the run
    assert [(e["subscriptionId"], e["transient"]) for e in report["errors"]] == [("u_always", True)]
    assert repos.subscriptions.require("u_once").status == "canceled"
    monkeypatch.undo()
    r = api("POST", "/billingReconcile", callers["admin"])  # the scheduler's retry
    assert r.status_code == 200 and [c["subscriptionId"] for c in r.json["changed"]] == ["u_always"]
