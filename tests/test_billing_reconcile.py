"""billingReconcile: repairs drift from Stripe's state, reports it; callable by an admin and by
Cloud Scheduler (OIDC token verified against Google's key format, served locally)."""
from __future__ import annotations

import time

import pytest
from billing_support import doc_fields, expected_fields, new_customer, reset_billing

from devtools.server import json_app, serving
from devtools.standins.google_tokens import GoogleKey
from shared import clock, repos
from shared.models import Subscription

SCHEDULER_SA = "billing-scheduler@demo-openclaw.iam.gserviceaccount.com"
AUDIENCE = "https://us-central1-demo-openclaw.cloudfunctions.net/billingReconcile"


def drifted_customer(sc, user_id: str) -> tuple[str, dict]:
    """A customer whose Stripe subscription was canceled while our document still says active/starter."""
    cus = new_customer(sc, user_id)
    sub = sc.v1.subscriptions.create({"customer": cus, "items": [{"plan": "price_pro_month"}]}).to_dict()
    sc.v1.subscriptions.cancel(sub["id"])
    repos.subscriptions.update(user_id, {"status": "active", "plan": "starter", "stripeSubscriptionId": sub["id"],
                                         "currentPeriodEnd": sub["current_period_end"] * 1000})
    return cus, sub


def test_admin_reconcile_repairs_drift_and_reports_it(api, callers, plans, sc):
    cus, sub = drifted_customer(sc, "u_drift")
    in_sync, _ = drifted_customer(sc, "u_fine")
    repos.subscriptions.update("u_fine", {"status": "canceled", "plan": "pro"})  # canceled: not re-read
    now = clock.now_ms()
    repos.subscriptions.set(Subscription(_id="u_trial", userId="u_trial", status="trialing", trialEnd=now - 1,
                                         createdAt=now, updatedAt=now))
    repos.subscriptions.set(Subscription(_id="u_new", userId="u_new", status="trialing", trialEnd=now + 10**8,
                                         createdAt=now, updatedAt=now))

    assert api("POST", "/billingReconcile", callers["owner"]).status_code == 403
    r = api("POST", "/billingReconcile", callers["admin"])
    assert r.status_code == 200, r.json
    report = r.json
    assert report["checked"] == 3 and report["errors"] == []
    by_id = {c["subscriptionId"]: c for c in report["changed"]}
    assert set(by_id) == {"u_drift", "u_trial"}
    assert by_id["u_drift"]["before"] == {"status": "active", "plan": "starter"}
    assert by_id["u_drift"]["after"] == {"status": "canceled", "plan": "pro"}
    assert by_id["u_trial"]["after"] == {"status": "canceled"}
    assert doc_fields("u_drift") == expected_fields(sc, cus)
    assert repos.subscriptions.require("u_new").status == "trialing"

    again = api("POST", "/billingReconcile", callers["admin"]).json
    assert again["changed"] == [] and again["checked"] == 1


def test_reconcile_applies_webhook_events_the_queue_gave_up_on(api, callers, plans, sc):
    from shared.billing import sync

    cus = new_customer(sc, "u_lost")
    sc.v1.subscriptions.create({"customer": cus, "items": [{"plan": "price_starter_month"}]})
    event = {"id": "evt_lost", "type": "customer.subscription.created", "created": int(time.time()),
             "data": {"object": {"object": "subscription", "customer": cus}}}
    assert sync.record(event) == {"duplicate": False, "queue": True}  # recorded; its task never ran
    fresh = {"id": "evt_fresh", "type": "invoice.paid", "data": {"object": {"customer": cus}}}
    sync.record(fresh)  # recorded just now: its task may still come, reconcile leaves it alone
    sync.ledger_ref("evt_lost").update({"receivedAt": clock.now_ms() - sync.STALE_MS - 1})
    report = api("POST", "/billingReconcile", callers["admin"]).json
    assert report["staleEventsApplied"] == 1 and report["errors"] == []
    assert sync.ledger_ref("evt_lost").get().get("outcome") == "applied"
    assert sync.ledger_ref("evt_fresh").get().get("outcome") == sync.RECEIVED
    assert doc_fields("u_lost") == expected_fields(sc, cus)


def test_reconcile_reports_a_failing_customer_and_goes_on(api, callers, plans, sc):
    drifted_customer(sc, "u_ok")
    now = clock.now_ms()
    repos.subscriptions.set(Subscription(_id="u_gone", userId="u_gone", stripeCustomerId="cus_missing",
                                         status="active", createdAt=now, updatedAt=now))
    report = api("POST", "/billingReconcile", callers["admin"]).json
    assert [e["subscriptionId"] for e in report["errors"]] == ["u_gone"]
    assert [c["subscriptionId"] for c in report["changed"]] == ["u_ok"]


@pytest.fixture(scope="module")
def google_keys():
    """Google's ID-token keys endpoint (a JWK Set), served on 127.0.0.1 with a key made here."""
    key = GoogleKey.generate()
    with serving(json_app(key.jwks())) as url:
        yield key, f"{url}/oauth2/v3/certs"


@pytest.fixture
def scheduler_env(google_keys, stripe_stack, monkeypatch):
    monkeypatch.setenv("GOOGLE_CERTS_URL", google_keys[1])
    monkeypatch.setenv("BILLING_SCHEDULER_SA", SCHEDULER_SA)
    monkeypatch.setenv("BILLING_RECONCILE_URL", AUDIENCE)
    reset_billing()
    yield google_keys[0]
    monkeypatch.undo()
    reset_billing()


def google_token(key: GoogleKey, **over) -> str:
    return key.token(**{"audience": AUDIENCE, "email": SCHEDULER_SA, **over})


def test_scheduler_with_a_valid_oidc_token_runs_it(client, callers, plans, sc, scheduler_env):
    drifted_customer(sc, "u_sched")
    r = client.post("/billingReconcile", headers={"Authorization": f"Bearer {google_token(scheduler_env)}"})
    assert r.status_code == 200, r.json
    assert [c["subscriptionId"] for c in r.json["changed"]] == ["u_sched"]
    assert repos.subscriptions.require("u_sched").status == "canceled"


@pytest.mark.parametrize("case,status", [("other_sa", 403), ("audience", 401), ("expired", 401),
                                         ("foreign_key", 401), ("unverified_email", 403), ("get", 405)])
def test_scheduler_tokens_that_do_not_check_out_are_refused(client, callers, plans, sc, scheduler_env, case, status):
    drifted_customer(sc, "u_nope")
    key = scheduler_env
    token = {
        "other_sa": lambda: google_token(key, email="someone@demo-openclaw.iam.gserviceaccount.com"),
        "audience": lambda: google_token(key, aud="https://elsewhere.example.com"),
        "expired": lambda: google_token(key, iat=int(time.time()) - 7200, exp=int(time.time()) - 3600),
        "foreign_key": lambda: google_token(GoogleKey.generate()),
        "unverified_email": lambda: google_token(key, email_verified=False),
        "get": lambda: google_token(key),
    }[case]()
    method = "GET" if case == "get" else "POST"
    r = client.open("/billingReconcile", method=method, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == status, r.json
    assert "error" in r.json
    assert repos.subscriptions.require("u_nope").status == "active"  # nothing ran
