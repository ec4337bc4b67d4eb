"""Who may touch a deployment: its owner or an admin. Others get 404, so ids do not leak."""
from __future__ import annotations

from typing import Any, Callable

from shared import db, entitlements, repos
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


@db.transactional
def upsert_config(tx, repo: db.Repo, item, check: Callable[[Any], None] = lambda current: None) -> bool:
    """Write a deployment's plugin or skill config only while the deployment exists (a delete job
    removing it conflicts rather than interleaves); True when the config is new. `check(current)`:
    the request's If-Match, inside the transaction."""
    if repos.deployments.get(item.deploymentId, tx) is None:
        raise not_found(f"deployment {item.deploymentId!r}")
    current = repo.get(item.id, tx)
    check(current)
    repo.set(item, tx)
    return current is None


def config_of(repo: db.Repo, deployment_id: str, item_id: str, what: str, tx=None):
    """A deployment's plugin or skill config (404 if it has none)."""
    found = repo.get(f"{deployment_id}_{item_id}", tx) if db.valid_id(f"{deployment_id}_{item_id}") else None
    if found is None:
        raise not_found(f"{what} {item_id!r}")
    return found


@db.transactional
def delete_config(tx, repo: db.Repo, deployment_id: str, item_id: str, what: str,
                  check: Callable[[Any], None] = lambda current: None) -> None:
    """Remove a deployment's plugin or skill config (404 if it has none; `check`: the If-Match)."""
    check(config_of(repo, deployment_id, item_id, what, tx))
    repo.delete(f"{deployment_id}_{item_id}", tx)
