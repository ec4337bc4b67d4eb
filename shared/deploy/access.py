"""Who may touch a deployment: its owner or an admin. Others get 404, so ids do not leak."""
from __future__ import annotations

from shared import db, entitlements, repos
from shared.auth import Caller
from shared.errors import not_found
from shared.models import Deployment


def owned(deployment_id: str, caller: Caller) -> Deployment:
    dep = repos.deployments.get(deployment_id)
    if dep is None or not caller.can_access(dep.userId):
        raise not_found(f"deployment {deployment_id!r}")
    return dep


def require_deploy(owner_id: str, caller: Caller) -> None:
    """Actions that spend compute need the owner's subscription (admins act regardless)."""
    if not caller.is_admin:
        entitlements.require_deploy_access(owner_id)


@db.transactional
def upsert_config(tx, repo: db.Repo, item, guard=None) -> bool:
    """Write a deployment's plugin or skill config only while the deployment exists (a delete job
    removing it conflicts rather than interleaves); True when the config is new. `guard(tx, existing)`
    (shared/plan_limits.config_guard) reads first, may refuse, and returns its writes."""
    if repos.deployments.get(item.deploymentId, tx) is None:
        raise not_found(f"deployment {item.deploymentId!r}")
    existing = repo.get(item.id, tx)
    writes = guard(tx, existing) if guard else None
    repo.set(item, tx)
    if writes:
        writes(tx)
    return existing is None


def delete_config(repo: db.Repo, deployment_id: str, item_id: str, what: str) -> None:
    """Remove a deployment's plugin or skill config (404 if it has none)."""
    doc_id = f"{deployment_id}_{item_id}"
    if repo.get(doc_id) is None:
        raise not_found(f"{what} {item_id!r}")
    repo.delete(doc_id)
