"""Deploy access by subscription status (shared/entitlements.py, against the Firestore emulator).
The pure part of billing's state (Stripe objects -> our fields): tests/unit/test_billing_state.py."""
from __future__ import annotations

import pytest

from shared import clock, entitlements, repos
from shared.errors import Forbidden
from shared.models import Subscription


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
