"""Who may touch a deployment: its owner or an admin. Others get 404, so ids do not leak."""
from __future__ import annotations

from shared import entitlements, repos
from shared.auth import Caller
from shared.errors import not_found
from shared.models import Deployment


def owned(deployment_id: str, caller: Caller, tx=None) -> Deployment:
    dep = repos.deployments.get(deployment_id, tx)
    if dep is None or not caller.can_access(dep.userId):
        raise not_found(f"deployment {deployment_id!r}")
    return dep


def require_deploy(owner_id: str, caller: Caller) -> None:
    """Actions that spend compute need the owner's subscription (admins act regardless)."""
    if not caller.is_admin:
        entitlements.require_deploy_access(owner_id)
