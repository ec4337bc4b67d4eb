"""Access follows billing: who may deploy. Other domains call `require_deploy_access`."""
from __future__ import annotations

from shared import clock, repos
from shared.errors import ApiError
from shared.models import Subscription

DEPLOY_STATUSES = ("trialing", "active")  # past_due keeps running bots but gets no new deployments


def subscription_of(user_id: str) -> Subscription | None:
    return repos.subscriptions.first(userId=user_id)


def can_deploy(user_id: str) -> bool:
    sub = subscription_of(user_id)
    if sub is None or sub.status not in DEPLOY_STATUSES:
        return False
    if sub.status == "trialing" and sub.trialEnd is not None and sub.trialEnd <= clock.now_ms():
        return False  # trial ran out and no webhook has moved it on yet
    return True


def require_deploy_access(user_id: str) -> None:
    if not can_deploy(user_id):
        raise ApiError(403, "subscription_required",
                       "deploying needs an active subscription or a running trial")
