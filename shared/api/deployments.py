"""`deployments`: a user's bots on Compute Engine and the actions on them (as deploy jobs)."""
from __future__ import annotations

import re
import secrets as pysecrets
from typing import Annotated, Literal

from pydantic import (
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from shared import clock, db, plan_limits, repos
from shared.api.inputs import Omittable, PageQuery, Strict
from shared.deploy import access, jobs, live, projects, settings
from shared.errors import Invalid, not_found, validation_error
from shared.http import Api, Reply, Request, page_of, precondition
from shared.models import DeployJob, Deployment, DeploymentStatus

api = Api("deployments", "Bot deployments: VMs on Compute Engine, driven by deploy jobs")

GcpProject = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")]
Zone = Annotated[str, StringConstraints(pattern=r"^[a-z]+-[a-z]+[0-9]+-[a-z]$", max_length=40)]
BotName = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")]
Emoji = Annotated[str, StringConstraints(max_length=16, pattern=r"^[^\x00-\x1f\x7f\sA-Za-z0-9]*$")]
Model = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:/-]{1,100}$")]
SPENDING = ("deploy", "start", "reset", "update")  # need the owner's subscription; stop and delete never do


class BotSettings(Strict):
    botName: BotName
    brandEmoji: Emoji = ""
    primaryModel: Model
    fallbackModels: list[Model] = Field(default_factory=list, max_length=5, json_schema_extra={"uniqueItems": True},
                                        description="distinct; the primary model among them is left out (it is "
                                                    "tried first anyway)")

    @model_validator(mode="after")
    def distinct_models(self):
        if len(set(self.fallbackModels)) != len(self.fallbackModels):
            raise ValueError("fallbackModels must be distinct")
        # not an error: JSON Schema cannot compare two fields, so the document could not say it
        self.fallbackModels = [m for m in self.fallbackModels if m != self.primaryModel]
        return self


class DeploymentCreate(BotSettings):
    gcpProject: GcpProject
    zone: Zone


class DeploymentUpdate(Strict):
    # at least one of them (said in the document too); None: not given (null is not a value here)
    model_config = ConfigDict(json_schema_extra={"anyOf": [{"required": [f]} for f in (
        "botName", "brandEmoji", "primaryModel", "fallbackModels")]})
    botName: Omittable[BotName] = None
    brandEmoji: Omittable[Emoji] = None
    primaryModel: Omittable[Model] = None
    fallbackModels: Omittable[list[Model]] = Field(None, max_length=5, json_schema_extra={"uniqueItems": True})


class ActionBody(Strict):
    action: Literal["deploy", "start", "stop", "reset", "delete", "update"]


class DeploymentListQuery(PageQuery):
    status: DeploymentStatus | None = None


class MyJobsQuery(PageQuery):
    status: Literal["pending", "running", "completed", "failed"] | None = None


class LogsQuery(Strict):
    since: int | None = Field(None, ge=0, le=2**53, description="the `next` of the previous answer")


class Created(Reply):
    deployment: Deployment
    job: DeployJob


class Queued(Reply):
    job: DeployJob


class Correction(Reply):
    from_: DeploymentStatus = Field(alias="from")
    to: DeploymentStatus


class VmStatus(Reply):
    """shared.deploy.live.status: the VM's fields are null when it does not exist (NOT_FOUND)."""
    vmStatus: str
    internalIp: str | None = None
    createdAt: str | None = None
    lastStartAt: str | None = None
    lastStopAt: str | None = None
    deploymentStatus: DeploymentStatus
    cached: bool
    corrected: Correction | None = None


class SerialLog(Reply):
    contents: str
    start: int
    next: int
    truncated: bool


def vm_name(bot_name: str, deployment_id: str) -> str:
    """Valid Compute name ([a-z]([-a-z0-9]*[a-z0-9])?, <= 63), unique because it ends with the id."""
    slug = re.sub(r"[^a-z0-9]+", "-", bot_name.lower()).strip("-")[:30].strip("-") or "bot"
    return f"oc-{slug}-{deployment_id}"


@api.route("GET", "/", query=DeploymentListQuery, response=page_of(Deployment))
def list_mine(req: Request):
    """My deployments, newest first (optionally by status)."""
    q = req.query
    equals = {"userId": req.caller.id, **({"status": q.status} if q.status else {})}
    return repos.deployments.page(equals, (("createdAt", "DESCENDING"),), q.limit, q.cursor)


@api.route("POST", "/", body=DeploymentCreate, status=201, response=Created, idempotent=True,
           rate="deploy")
def create(req: Request):
    """Create a deployment and its first deploy job. A gcpProject outside the operator's projects is the
    customer's own: 409 `grant_missing` / `project_not_verified` say what they must grant or label first."""
    b = req.body
    access.require_deploy(req.caller.id, req.caller)
    regions = settings.get().allowed_regions
    if projects.is_customer(b.gcpProject):  # the customer's own project: their grant, their network
        projects.require(b.gcpProject, req.caller.id)
    elif regions and b.zone.rsplit("-", 1)[0] not in regions:
        raise Invalid("zone_not_allowed", f"zone must be in one of the regions: {', '.join(regions)}")
    dep_id = pysecrets.token_hex(10)
    dep = Deployment(_id=dep_id, userId=req.caller.id, vmName=vm_name(b.botName, dep_id), status="provisioning",
                     createdAt=clock.now_ms(), **b.model_dump())
    guard = None
    if not req.caller.is_admin:  # admins are not limited by a plan (nor by a subscription)
        plan_limits.ensure_lock(req.caller.id)
        guard = plan_limits.create_guard
    job = jobs.create_deployment(dep, req.caller.id, guard)
    return {"deployment": dep, "job": job}


@api.route("GET", "/{id}", response=Deployment, etag=True)
def get(req: Request):
    """One deployment."""
    return access.owned(req.params["id"], req.caller)


@api.route("PATCH", "/{id}", body=DeploymentUpdate, response=Deployment, etag=True)
def update(req: Request):
    """Change the bot's settings (applied by the next deploy)."""
    changes = req.body.changes()
    if not changes:
        raise Invalid("invalid_body", "send at least one of botName, brandEmoji, primaryModel, fallbackModels")
    return _update(req, req.params["id"], changes)


@db.transactional
def _update(tx, req: Request, dep_id: str, changes: dict) -> Deployment:
    """Read, check (owner, If-Match, the merged settings) and write in one transaction."""
    dep = access.owned(dep_id, req.caller, tx)
    precondition(req, dep)
    try:  # the change must also hold together with what it does not change (distinct models)
        merged = BotSettings.model_validate({**dep.model_dump(include=set(BotSettings.model_fields)), **changes})
    except ValidationError as exc:
        raise validation_error(exc, "body") from None
    repos.deployments.update(dep.id, {**changes, "fallbackModels": merged.fallbackModels}, tx)
    return dep.updated(merged.model_dump())


@api.route("POST", "/{id}/actions", body=ActionBody, status=202, response=Queued, idempotent=True,
           rate="deploy")
def action(req: Request):
    """Queue an action as a deploy job (409 with the active job if one is pending or running)."""
    dep = access.owned(req.params["id"], req.caller)
    guard = None
    if req.body.action in SPENDING:
        access.require_deploy(dep.userId, req.caller)
        if projects.is_customer(dep.gcpProject):  # tell the owner now what is missing, not in a failed job
            projects.require(dep.gcpProject, dep.userId)
        if not req.caller.is_admin and dep.status == "stopped":  # starting a bot again: the plan must allow it
            plan_limits.ensure_lock(dep.userId)
            guard = plan_limits.action_guard(req.body.action)
    return {"job": jobs.request_action(dep.id, req.body.action, req.caller.id, guard)}


@api.route("GET", "/jobs", query=MyJobsQuery, response=page_of(DeployJob))
def list_my_jobs(req: Request):
    """My deploy jobs across all my deployments, newest first (optionally of one status)."""
    q = req.query
    equals = {"userId": req.caller.id, **({"status": q.status} if q.status else {})}
    return repos.deploy_jobs.page(equals, (), q.limit, q.cursor)


@api.route("GET", "/{id}/jobs", query=PageQuery, response=page_of(DeployJob))
def list_jobs(req: Request):
    """The deployment's jobs, newest first."""
    dep = access.owned(req.params["id"], req.caller)
    return repos.deploy_jobs.page({"deploymentId": dep.id}, (), req.query.limit, req.query.cursor)


@api.route("GET", "/{id}/jobs/{jobId}", response=DeployJob)
def get_job(req: Request):
    """One job, with its log."""
    dep = access.owned(req.params["id"], req.caller)
    job = repos.deploy_jobs.get(req.params["jobId"])
    if job is None or job.deploymentId != dep.id:
        raise not_found(f"job {req.params['jobId']!r}")
    return job


@api.route("GET", "/{id}/status", response=VmStatus)
def vm_status(req: Request):
    """The VM's live state (cached a few seconds); corrects a stored status that disagrees."""
    return live.status(access.owned(req.params["id"], req.caller))


@api.route("GET", "/{id}/logs", query=LogsQuery, response=SerialLog)
def vm_logs(req: Request):
    """The VM's serial console, newest part, secrets masked; pass `since=next` to continue."""
    return live.serial_output(access.owned(req.params["id"], req.caller), req.query.since)


class BotUptime(Reply):
    last24h: float | None = Field(description="share of the last 24 h the bot answered (null: not watched yet)")
    last30d: float | None


class BotHealth(Reply):
    """shared/health/monitor.py: the bot's own health, beside the VM's `status`."""
    deploymentId: str
    state: Literal["unknown", "ok", "degraded", "recovering", "gave_up", "paused"]
    lastHeartbeatAt: int | None
    healthDeadline: int | None = Field(description="when the bot counts as down unless a heartbeat comes")
    gateway: str | None
    detail: str | None
    reason: str | None = Field(description="why it is degraded, or why automatic recovery gave up")
    downSince: int | None
    autoRecovery: bool
    restartsLastHour: int
    maxRestartsPerHour: int
    lastRestartJobId: str | None
    monitoredSince: int | None
    uptime: BotUptime


class BotHealthUpdate(Strict):
    autoRecovery: bool


@api.route("GET", "/{id}/health", response=BotHealth)
def bot_health(req: Request):
    """The bot's health: state, last heartbeat, uptime (24 h / 30 days), automatic recovery."""
    from shared.health import monitor

    return monitor.view(access.owned(req.params["id"], req.caller).id)


@api.route("PATCH", "/{id}/health", body=BotHealthUpdate, response=BotHealth)
def set_bot_health(req: Request):
    """Turn automatic recovery on or off for this bot (on again: the crash-loop count starts over)."""
    from shared.health import monitor

    dep = access.owned(req.params["id"], req.caller)
    return monitor.view(dep.id, monitor.set_auto_recovery(dep.id, dep.userId, req.body.autoRecovery))


GoogleAccount = Annotated[str, StringConstraints(pattern=r"^[^@\s]{1,64}@[A-Za-z0-9.-]{1,190}\.[A-Za-z]{2,24}$")]


class DashboardAccessBody(Strict):
    googleAccount: GoogleAccount | None = Field(
        None, description="the Google account you run gcloud as (default: your sign-in e-mail)")


class DashboardAccess(Reply):
    """shared.deploy.dashboard.open_access: run `command`, then open `url` (after `readyAt`)."""
    project: str
    zone: str
    instance: str
    port: int
    localPort: int
    member: str
    expiresAt: int
    readyAt: int
    command: str
    url: str
    gatewayToken: str


@api.route("POST", "/{id}/dashboard-access", body=DashboardAccessBody, response=DashboardAccess)
def dashboard_access(req: Request):
    """Owner only: a short-lived IAP tunnel grant on the bot's VM and a gateway token for its dashboard."""
    from shared.deploy import dashboard

    dep = access.owned(req.params["id"], req.caller)
    return dashboard.open_access(dep, req.caller, req.body.googleAccount)
