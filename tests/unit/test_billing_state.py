"""Stripe subscription objects -> our fields (the status map, price -> plan, seconds -> ms), the
current subscription of a customer, and the billing settings."""
from __future__ import annotations

import pytest

from shared import config
from shared.billing import settings as billing_settings
from shared.billing import state
from shared.config import ConfigError
from shared.models import PricingPlan

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


def read_billing():
    billing_settings.reset()
    return billing_settings.get()


def test_stand_in_urls_are_refused_outside_local(monkeypatch):
    for name in ("FIRESTORE_EMULATOR_HOST", "FIREBASE_AUTH_EMULATOR_HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "p")
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("STRIPE_API_BASE", "http://127.0.0.1:1")
    config.reset()
    try:
        with pytest.raises(ConfigError, match="only with APP_ENV=local"):
            read_billing()
        monkeypatch.delenv("STRIPE_API_BASE")
        cfg = read_billing()
        assert cfg.api_base is None and cfg.trial_days == 14 and cfg.webhook_tolerance_s == 300
        monkeypatch.setenv("BILLING_TRIAL_DAYS", "0")
        with pytest.raises(ConfigError, match="BILLING_TRIAL_DAYS"):
            read_billing()
    finally:
        monkeypatch.undo()
        config.reset()
        billing_settings.reset()
