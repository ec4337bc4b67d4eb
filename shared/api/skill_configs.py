"""`skillConfigs`: which skills a deployment's bot runs, and when (cron override)."""
from __future__ import annotations

from pydantic import Field, StrictBool

from shared import repos
from shared.api.inputs import Strict
from shared.deploy import access, catalog
from shared.http import Api, Request, list_of, precondition
from shared.models import SkillConfig

api = Api("skillConfigs", "Skills of a deployment's bot")


class ByDeployment(Strict):
    deploymentId: str = Field(min_length=1, max_length=128)


class SkillWrite(Strict):
    enabled: StrictBool  # JSON true/false only: 0 and "false" are refused
    cronOverride: str | None = Field(None, max_length=100)


@api.route("GET", "/", query=ByDeployment, response=list_of(SkillConfig))
def list_for(req: Request):
    """A deployment's skill configs."""
    dep = access.owned(req.query.deploymentId, req.caller)
    return {"items": repos.skill_configs.all({"deploymentId": dep.id}, cap=100)}


@api.route("GET", "/{deploymentId}/{skillId}", response=SkillConfig, etag=True)
def get_one(req: Request):
    """One skill config of a deployment (with its ETag, for a later If-Match)."""
    dep = access.owned(req.params["deploymentId"], req.caller)
    return access.config_of(repos.skill_configs, dep.id, req.params["skillId"], "skill config")


@api.route("PUT", "/{deploymentId}/{skillId}", body=SkillWrite, status=(200, 201), response=SkillConfig, etag=True)
def put(req: Request):
    """Enable/disable a skill and optionally override its schedule (five-field cron, UTC); 201 when new."""
    dep = access.owned(req.params["deploymentId"], req.caller)
    skill_id = catalog.skill(req.params["skillId"]).id
    cron = catalog.validate_cron(req.body.cronOverride) if req.body.cronOverride else None
    item = SkillConfig(_id=f"{dep.id}_{skill_id}", deploymentId=dep.id, userId=dep.userId, skillId=skill_id,
                       enabled=req.body.enabled, cronOverride=cron)
    created = access.upsert_config(repos.skill_configs, item, lambda current: precondition(req, current))
    return item, (201 if created else 200)


@api.route("DELETE", "/{deploymentId}/{skillId}", status=204, etag=True)
def delete(req: Request):
    """Remove a skill's config."""
    dep = access.owned(req.params["deploymentId"], req.caller)
    access.delete_config(repos.skill_configs, dep.id, req.params["skillId"], "skill config",
                         lambda current: precondition(req, current))
