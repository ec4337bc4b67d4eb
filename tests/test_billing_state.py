"""Stripe subscription objects -> our fields, the current subscription of a customer, the billing
config section, and deploy access by subscription status."""
from __future__ import annotations

import pytest

from shared import clock, config, entitlements, repos
from shared.billing import config as billing_config
from shared.billing import state
from shared.config import ConfigError
from shared.errors import Forbidden
from shared.models import PricingPlan, Subscription

PLANS = [PricingPlan(_id=s, slug=s, name=s, priceMonthly=1, priceYearly=10, stripePriceId=f"price_{s}_m")
         for s in ("starter", "pro")]


def sub(status="active", created=100, price="price_pro_m", **kw) -> dict:
    """Stripe's current API shape: price and current_period_end on the item."""
    return {"id": f"sub_{status}_{created}", "object": "subscription", "status": status, "created": created,
            "trial_end": None, "metadata": {},
            "items": {"data": [{"price": {"id": price, "product": None}, "current_period_end": 1_900_000_000}]}, **kw}


@pytest.mark.parametrize("stripe_status,ours", [
    ("trialing", "trialing"), ("active", "active"), ("past_due", "past_due"), ("unpaid", "past_due"),
    ("canceled", "canceled"), ("incomplete_expired", "canceled"), ("incomplete", "pending"), ("paused", "pending"),
])
def test_status_map(stripe_status, ours):
    assert state.fields_of(sub(stripe_status), PLANS, None)["status"] == ours


def test_fields_in_ms_and_plan_from_price():
    f = state.fields_of(sub("trialing", trial_end=1_800_000_000), PLANS, None)
    assert f == {"stripeSubscriptionId": "sub_trialing_100", "status": "trialing", "plan": "pro",
                 "trialEnd": 1_800_000_000_000, "currentPeriodEnd": 1_900_000_000_000}
    legacy = {**sub(), "current_period_end": 1_700_000_000,
              "items": {"data": [{"plan": {"id": "price_starter_m", "product": None}}]}}
    assert state.fields_of(legacy, PLANS, None)["plan"] == "starter"
    assert state.fields_of(legacy, PLANS, None)["currentPeriodEnd"] == 1_700_000_000_000
    unknown = sub(price="price_other", metadata={"plan": "starter"})
    assert state.fields_of(unknown, PLANS, "pro")["plan"] == "starter"  # metadata when the price is unknown
    assert state.fields_of(sub(price="price_other"), PLANS, "pro")["plan"] == "pro"  # else keep ours


def test_current_subscription_prefers_the_newest_live_one():
    old_live, new_dead, newer_live = sub("past_due", 100), sub("canceled", 300), sub("active", 200)
    assert state.current([old_live, new_dead, newer_live]) is newer_live
    assert state.current([sub("canceled", 1), new_dead]) is new_dead
    assert state.current([]) is None


def test_stand_in_urls_are_refused_outside_local(monkeypatch):
    for name in ("FIRESTORE_EMULATOR_HOST", "FIREBASE_AUTH_EMULATOR_HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "p")
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("STRIPE_API_BASE", "http://127.0.0.1:1")
    config.reset()
    try:
        with pytest.raises(ConfigError, match="only with APP_ENV=local"):
            billing_config.load()
        monkeypatch.delenv("STRIPE_API_BASE")
        cfg = billing_config.load()
        assert cfg.api_base is None and cfg.trial_days == 14 and cfg.webhook_tolerance_s == 300
        monkeypatch.setenv("BILLING_TRIAL_DAYS", "0")
        with pytest.raises(ConfigError, match="BILLING_TRIAL_DAYS"):
            billing_config.load()
    finally:
        monkeypatch.undo()
        config.reset()
        billing_config.reset()


@pytest.mark.parametrize("status,trial_days,allowed,code", [
    ("trialing", 3, True, None), ("trialing", -1, False, "subscription_required"), ("active", 0, True, None),
    ("past_due", 0, False, "payment_past_due"), ("pending", 0, False, "subscription_required"),
    ("canceled", 0, False, "subscription_required"), (None, 0, False, "subscription_required"),
])
def test_deploy_access_follows_billing(stack, status, trial_days, allowed, code):
    now = clock.now_ms()
    if status:
        repos.subscriptions.set(Subscription(_id="u_e", userId="u_e", status=status,
                                             trialEnd=now + trial_days * 86_400_000 if trial_days else None,
                                             createdAt=now, updatedAt=now))
    assert entitlements.can_deploy("u_e") is allowed
    if allowed:
        entitlements.require_deploy_access("u_e")
    else:
        with pytest.raises(Forbidden) as err:
            entitlements.require_deploy_access("u_e")
        assert err.value.code == code
