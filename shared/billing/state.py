"""Stripe's subscription objects -> the fields of our `subscriptions` document.

The document always mirrors Stripe's *current* state of the customer (re-read
from Stripe, never taken from an event's possibly stale snapshot), so the result
does not depend on the order or number of webhook deliveries.
"""
from __future__ import annotations

from shared import repos
from shared.billing import stripe_api

STATUS = {
    "trialing": "trialing", "active": "active",
    "past_due": "past_due", "unpaid": "past_due",  # unpaid: retries exhausted; still no new deploys
    "canceled": "canceled", "incomplete_expired": "canceled",
    "incomplete": "pending", "paused": "pending",  # first payment or trial-end payment method missing
}
ENDED = ("canceled", "incomplete_expired")
SYNCED = ("stripeSubscriptionId", "status", "plan", "trialEnd", "currentPeriodEnd")


def current(subs: list[dict]) -> dict | None:
    """The subscription that decides access: the newest one not ended, else the newest ended one."""
    if not subs:
        return None
    live = [s for s in subs if s.get("status") not in ENDED]
    return max(live or subs, key=lambda s: (s.get("created") or 0, s.get("id", "")))


def _ms(seconds) -> int | None:
    return int(seconds) * 1000 if seconds else None


def _item(sub: dict) -> dict:
    items = (sub.get("items") or {}).get("data") or []
    return items[0] if items else {}


def price_of(sub: dict) -> tuple[str | None, str | None]:
    """(price id, product id) of the first item; localstripe and old API versions say `plan`."""
    item = _item(sub)
    price = item.get("price") or item.get("plan") or sub.get("plan") or {}
    return price.get("id"), price.get("product")


def plan_slug(sub: dict, plans: list, fallback: str | None) -> str | None:
    """Plan by exact price, else by the price's product (a yearly price of the same plan), else metadata."""
    price_id, product = price_of(sub)
    for p in plans:
        if p.stripePriceId == price_id:
            return p.slug
    if product:
        for p in plans:
            try:
                if stripe_api.price(p.stripePriceId).get("product") == product:
                    return p.slug
            except Exception:  # a plan whose price is missing in Stripe cannot match
                continue
    meta = (sub.get("metadata") or {}).get("plan")
    return meta if meta in ("starter", "pro") else fallback


def fields_of(sub: dict, plans: list, fallback_plan: str | None) -> dict:
    period_end = sub.get("current_period_end") or _item(sub).get("current_period_end")
    return {
        "stripeSubscriptionId": sub["id"],
        "status": STATUS.get(sub.get("status") or "", "pending"),
        "plan": plan_slug(sub, plans, fallback_plan),
        "trialEnd": _ms(sub.get("trial_end")),
        "currentPeriodEnd": _ms(period_end),
    }


def load_plans() -> list:
    return repos.pricing_plans.all({}, (("sortOrder", "ASCENDING"),))
