"""`skillConfigs`: which skills a deployment's bot runs, and when (cron override). PUT and PATCH
keep what they do not name (shared/deploy/configs.py)."""
from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field, StrictBool, model_validator

from shared import plan_limits, repos
from shared.api.inputs import Strict
from shared.deploy import access, catalog, configs
from shared.http import Api, Request, list_of, precondition
from shared.models import SkillConfig

api = Api("skillConfigs", "Skills of a deployment's bot")


def _field(number: str, step: str | None) -> str:
    item = rf"(\*(/{step})?|{number})" if step else number  # step None: no * at all
    return rf"{item}(,{item})*"


# The document's form of a schedule: five fields (minute hour day month weekday, UTC) of numbers, *, */steps no
# longer than the field, and lists; the weekday also takes a range; with both a day and a weekday set, neither
# uses *. The server also reads ranges elsewhere (9-17, 0-30/5) and names (MON, JAN): what cronsim and the bot's
# scheduler (OpenClaw's croner) both read the same way (catalog.validate_cron).
_WEEKDAY = r"(0-[1-7]|1-[2-7]|2-[3-7]|3-[4-7]|4-[5-7]|5-[67]|6-7|[0-7])"
_MINUTE, _HOUR = _field(r"[1-5]?[0-9]", r"([1-9]|[1-5][0-9]|60)"), _field(r"(1?[0-9]|2[0-3])", r"([1-9]|1[0-9]|2[0-4])")
_DAY, _MONTH = r"([1-9]|[12][0-9]|3[01])", _field(r"([1-9]|1[0-2])", r"([1-9]|1[0-2])")
_DAY_ANY, _WEEKDAY_ANY = _field(_DAY, _DAY), _field(_WEEKDAY, "[1-7]")
CRON = (f"^{_MINUTE} {_HOUR} (\\* {_MONTH} {_WEEKDAY_ANY}|{_DAY_ANY} {_MONTH} \\*|"
        f"{_field(_DAY, None)} {_MONTH} {_field(_WEEKDAY, None)})$")
Cron = Annotated[str, Field(max_length=100, json_schema_extra={"pattern": CRON})]


class ByDeployment(Strict):
    deploymentId: str = Field(min_length=1, max_length=128)


class SkillWrite(Strict):
    enabled: StrictBool
    cronOverride: Cron | None = Field(None, description="five-field cron (UTC); omitted: kept; "
                                      "null: the skill's default schedule")


class SkillPatch(Strict):
    model_config = ConfigDict(json_schema_extra={"minProperties": 1})
    enabled: StrictBool | None = None
    cronOverride: Cron | None = Field(None, description="omitted: kept; null: the default")

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


@api.route("GET", "/{deploymentId}/{skillId}", response=SkillConfig, etag=True)
def get_one(req: Request):
    """One skill config of a deployment, with its ETag (send it as If-Match to edit)."""
    dep = access.owned(req.params["deploymentId"], req.caller)
    return repos.skill_configs.require(f"{dep.id}_{catalog.skill(req.params['skillId']).id}")


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
    item, created = configs.write_skill(dep.id, skill_id, enabled, cron, dep.userId, guard,
                                        lambda old: precondition(req, old))
    return item, (201 if created else 200)


@api.route("PUT", "/{deploymentId}/{skillId}", body=SkillWrite, status=(200, 201), response=SkillConfig,
           etag=True)
def put(req: Request):
    """Enable/disable a skill and optionally override its schedule (five-field cron, UTC); 201 when new.
    Enabling needs the skill's plugins enabled (409 names the missing ones) and room in the plan."""
    return _write(req)


@api.route("PATCH", "/{deploymentId}/{skillId}", body=SkillPatch, status=(200, 201), response=SkillConfig,
           etag=True)
def patch(req: Request):
    """Toggle a skill or change its schedule, keeping the rest; 201 when new."""
    return _write(req)


@api.route("DELETE", "/{deploymentId}/{skillId}", status=204, etag=True)
def delete(req: Request):
    """Remove a skill's config."""
    dep = access.owned(req.params["deploymentId"], req.caller)
    configs.delete_skill(dep.id, req.params["skillId"], lambda old: precondition(req, old))
