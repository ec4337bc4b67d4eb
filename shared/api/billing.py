"""`billing`: the caller's subscription, Stripe Checkout and Portal sessions, the free trial."""
from __future__ import annotations

from typing import Literal

from shared import entitlements
from shared.api.inputs import Strict
from shared.billing import account
from shared.http import Api, Reply, Request
from shared.models import Plan, Subscription

api = Api("billing", "Subscription, checkout, billing portal and free trial")


class CheckoutBody(Strict):
    plan: Plan
    interval: Literal["month", "year"] = "month"


class SubscriptionView(Reply):
    subscription: Subscription | None
    canDeploy: bool


class CheckoutView(Reply):
    url: str
    sessionId: str
    customerId: str
    priceId: str


class PortalView(Reply):
    url: str


class TrialView(Reply):
    subscription: Subscription


@api.route("GET", "/subscription", response=SubscriptionView)
def get_subscription(req: Request):
    """The caller's subscription (or null) and whether it allows deploying."""
    sub = account.subscription_of(req.caller.id)
    return {"subscription": sub, "canDeploy": entitlements.allows_deploy(sub)}


@api.route("POST", "/checkout", body=CheckoutBody, response=CheckoutView, idempotent=True, rate="billing")
def create_checkout(req: Request):
    """A Stripe Checkout URL for the plan's price; creates the caller's Stripe customer once."""
    return account.checkout(req.caller.user, req.body.plan, req.body.interval)


@api.route("POST", "/portal", response=PortalView, idempotent=True, rate="billing")
def create_portal(req: Request):
    """A Stripe Billing Portal URL for the caller's customer."""
    return account.portal(req.caller.user)


@api.route("POST", "/trial", status=(201, 200), response=TrialView, idempotent=True, rate="billing")
def start_trial(req: Request):
    """Start the free trial (once per user): 201 the first time, 200 with the same trial after."""
    sub, created = account.start_trial(req.caller.id)
    return {"subscription": sub}, (201 if created else 200)
