"""`skillConfigs`: which skills a deployment's bot runs, and when (cron override)."""
from __future__ import annotations

from pydantic import Field

from shared import plan_limits, repos
from shared.api.inputs import Strict
from shared.deploy import access, catalog
from shared.http import Api, Request, list_of
from shared.models import SkillConfig

api = Api("skillConfigs", "Skills of a deployment's bot")


class ByDeployment(Strict):
    deploymentId: str = Field(min_length=1, max_length=128)


class SkillWrite(Strict):
    enabled: bool
    cronOverride: str | None = Field(None, max_length=100)


@api.route("GET", "/", query=ByDeployment, response=list_of(SkillConfig))
def list_for(req: Request):
    """A deployment's skill configs."""
    dep = access.owned(req.query.deploymentId, req.caller)
    return {"items": repos.skill_configs.all({"deploymentId": dep.id}, cap=100)}


@api.route("PUT", "/{deploymentId}/{skillId}", body=SkillWrite, status=(200, 201), response=SkillConfig)
def put(req: Request):
    """Enable/disable a skill and optionally override its schedule (five-field cron, UTC); 201 when new."""
    dep = access.owned(req.params["deploymentId"], req.caller)
    skill_id = catalog.skill(req.params["skillId"]).id
    cron = catalog.validate_cron(req.body.cronOverride) if req.body.cronOverride else None
    item = SkillConfig(_id=f"{dep.id}_{skill_id}", deploymentId=dep.id, userId=dep.userId, skillId=skill_id,
                       enabled=req.body.enabled, cronOverride=cron)
    guard = None
    if item.enabled and not req.caller.is_admin:  # enabling one more must fit the plan (shared/plan_limits.py)
        plan_limits.ensure_lock(dep.userId)
        guard = plan_limits.config_guard("skill", dep.userId, dep.id, item.enabled)
    return item, (201 if access.upsert_config(repos.skill_configs, item, guard) else 200)


@api.route("DELETE", "/{deploymentId}/{skillId}", status=204)
def delete(req: Request):
    """Remove a skill's config."""
    dep = access.owned(req.params["deploymentId"], req.caller)
    access.delete_config(repos.skill_configs, dep.id, req.params["skillId"], "skill config")
