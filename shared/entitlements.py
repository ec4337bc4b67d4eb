"""Access follows billing: who may deploy. Other domains call `require_deploy_access`.

Deploy actions need a `trialing` (trial not yet over) or `active` subscription.
`past_due` keeps running bots running (nothing here stops them) but refuses new
deployments; `pending` and `canceled` refuse them too.
"""
from __future__ import annotations

from shared import clock, repos
from shared.errors import Forbidden
from shared.models import Subscription

DEPLOY_STATUSES = ("trialing", "active")  # past_due keeps running bots but gets no new deployments


def subscription_of(user_id: str) -> Subscription | None:
    return repos.subscriptions.first(userId=user_id)


def allows_deploy(sub: Subscription | None, now_ms: int | None = None) -> bool:
    if sub is None or sub.status not in DEPLOY_STATUSES:
        return False
    if sub.status == "trialing" and sub.trialEnd is not None and sub.trialEnd <= (now_ms or clock.now_ms()):
        return False  # trial ran out and no webhook / reconciliation has moved it on yet
    return True


def can_deploy(user_id: str) -> bool:
    return allows_deploy(subscription_of(user_id))


def require_deploy_access(user_id: str) -> None:
    sub = subscription_of(user_id)
    if allows_deploy(sub):
        return
    if sub is not None and sub.status == "past_due":
        raise Forbidden("payment_past_due",
                        "the last payment failed: running bots keep running, new deployments wait for payment")
    raise Forbidden("subscription_required", "deploying needs an active subscription or a running trial")
