"""`skillConfigs`: which skills a deployment's bot runs, and when (cron override). PUT and PATCH
keep what they do not name (shared/deploy/configs.py)."""
from __future__ import annotations

from pydantic import Field, StrictBool, model_validator

from shared import plan_limits, repos
from shared.api.inputs import Strict
from shared.deploy import access, catalog, configs
from shared.http import Api, Request, list_of
from shared.models import SkillConfig

api = Api("skillConfigs", "Skills of a deployment's bot")


class ByDeployment(Strict):
    deploymentId: str = Field(min_length=1, max_length=128)


class SkillWrite(Strict):
    enabled: StrictBool
    cronOverride: str | None = Field(None, max_length=100, description="five-field cron (UTC); omitted: kept; "
                                     "null: the skill's default schedule")


class SkillPatch(Strict):
    enabled: StrictBool | None = None
    cronOverride: str | None = Field(None, max_length=100, description="omitted: kept; null: the default")

    @model_validator(mode="after")
    def _something(self):
        if not self.model_fields_set:
            raise ValueError("give enabled, cronOverride or both")
        return self


@api.route("GET", "/", query=ByDeployment, response=list_of(SkillConfig))
def list_for(req: Request):
    """A deployment's skill configs."""
    dep = access.owned(req.query.deploymentId, req.caller)
    return {"items": repos.skill_configs.all({"deploymentId": dep.id}, cap=100)}


def _write(req: Request):
    dep = access.owned(req.params["deploymentId"], req.caller)
    skill_id = catalog.skill(req.params["skillId"]).id
    named = req.body.model_fields_set
    enabled = req.body.enabled if "enabled" in named and req.body.enabled is not None else configs.KEEP
    cron = configs.KEEP
    if "cronOverride" in named:
        cron = catalog.validate_cron(req.body.cronOverride) if req.body.cronOverride else None
    guard = None
    if enabled is True and not req.caller.is_admin:  # enabling one more must fit the plan (shared/plan_limits.py)
        plan_limits.ensure_lock(dep.userId)
        guard = plan_limits.config_guard("skill", dep.userId, dep.id, True)
    item, created = configs.write_skill(dep.id, skill_id, enabled, cron, dep.userId, guard)
    return item, (201 if created else 200)


@api.route("PUT", "/{deploymentId}/{skillId}", body=SkillWrite, status=(200, 201), response=SkillConfig)
def put(req: Request):
    """Enable/disable a skill and optionally override its schedule (five-field cron, UTC); 201 when new.
    Enabling needs the skill's plugins enabled (409 names the missing ones) and room in the plan."""
    return _write(req)


@api.route("PATCH", "/{deploymentId}/{skillId}", body=SkillPatch, status=(200, 201), response=SkillConfig)
def patch(req: Request):
    """Toggle a skill or change its schedule, keeping the rest; 201 when new."""
    return _write(req)


@api.route("DELETE", "/{deploymentId}/{skillId}", status=204)
def delete(req: Request):
    """Remove a skill's config."""
    dep = access.owned(req.params["deploymentId"], req.caller)
    configs.delete_skill(dep.id, req.params["skillId"])
