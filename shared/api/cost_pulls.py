"""`pullCosts` and `pullOpenrouterActivity` (Cloud Scheduler, every 6 hours, or an admin
on demand) and `costPullWorker` (the Cloud Tasks target doing one batch of users).

Callers are identified by shared/google_identity.py: the pulls are deployed public and take
Cloud Scheduler's OIDC token for COSTS_SCHEDULER_SA (audience COSTS_SCHEDULER_AUDIENCE, each
function's own URL; signature verified) or an admin's user token; the worker is deployed private
and takes the queue's tasks with their OIDC token for TASKS_INVOKER_SA (audience COSTS_WORKER_URL).
"""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, StringConstraints

from shared import clock
from shared.api.inputs import Strict
from shared.costs import runs, settings, trigger
from shared.costs.ledger import runs as runs_repo
from shared.errors import ApiError
from shared.http import Api, Reply, Request

Id = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^/\s]+$")]


class PullBody(Strict):
    """Admin only. The schedule time names the run: the same time again is the same run."""
    scheduleTime: datetime | None = None


class DeploymentItem(Strict):
    id: Id
    status: Literal["provisioning", "running", "stopped", "error"]
    createdAt: int = Field(ge=0)
    zone: str = Field("", max_length=64)
    gcpProject: str = Field("", max_length=30)  # which project pays for the VM (shared/costs/pricing.py)


class UserItem(Strict):
    userId: Id
    deployments: list[DeploymentItem] = Field(max_length=100)


class BatchBody(Strict):
    runId: Id
    kind: Literal["costs", "activity"]
    batch: int = Field(ge=0)
    scheduleTime: int = Field(ge=0)
    users: list[UserItem] = Field(max_length=1000)


class RunReport(Reply):
    """A run and the sum of its finished batches (see shared.costs.runs.report)."""
    model_config = ConfigDict(extra="allow")
    runId: str
    kind: Literal["costs", "activity"]
    finished: bool
    batchesDone: int
    ok: int
    failed: int
    skipped: int
    failures: list[dict]


class BatchResult(Reply):
    model_config = ConfigDict(extra="allow")
    ok: int
    failed: int
    skipped: int
    duplicate: bool


def _scheduler() -> dict:
    cfg = settings.get()
    return {"account": cfg.scheduler_sa, "audience": cfg.scheduler_audience}


def _tasks() -> dict:
    cfg = settings.get()
    return {"queue": cfg.queue, "account": cfg.invoker_sa, "audience": cfg.worker_url}


def pull_api(name: str, kind: str, what: str) -> Api:
    api = Api(name, what)

    @api.route("POST", "/", access="scheduler", machine=_scheduler, body=PullBody, status=(202, 200),
               response=RunReport)
    def start(req: Request):
        """Start the run of a schedule time (once per time); answers its report. The scheduler's
        job sends `{}`; its schedule time comes from the X-CloudScheduler-ScheduleTime header."""
        who, admin_id = req.caller
        if who == "scheduler":
            schedule_ms = trigger.schedule_time(req.raw)
        else:
            at = req.body.scheduleTime
            if at is not None and at.tzinfo is None:
                raise ApiError(422, "invalid_body", "scheduleTime needs a time zone (e.g. ...Z)")
            schedule_ms = int(at.timestamp() * 1000) if at else clock.now_ms()
        report, started = runs.start(kind, schedule_ms, who, admin_id)
        return {**report, "started": started}, (202 if started else 200)

    @api.route("GET", "/runs/{runId}", access="admin", response=RunReport)
    def get_run(req: Request):
        """Admin: a run's progress and its ok / failed / skipped counts."""
        run = runs_repo.require(req.params["runId"])
        if run.kind != kind:
            raise ApiError(404, "not_found", f"no {kind} run {req.params['runId']!r}")
        return runs.report(run)

    return api


costs_api = pull_api("pullCosts", "costs", "Pull OpenRouter balance, OpenAI spend and the GCP estimate")
activity_api = pull_api("pullOpenrouterActivity", "activity", "Pull OpenRouter activity per day and model")

worker_api = Api("costPullWorker", "One batch of users of a cost pull (Cloud Tasks target)")


@worker_api.route("POST", "/", access="cloud_tasks", machine=_tasks, body=BatchBody, response=BatchResult)
def run_batch(req: Request):
    """Pull one batch (Cloud Tasks only: the queue's headers and the task's OIDC token, whose
    signature Google's front has checked: the function is deployed private)."""
    from shared.costs import worker  # the provider clients: not loaded by the functions that only read runs

    cfg = settings.get()
    b = req.body
    users = [u.model_dump() for u in b.users]
    # Cloud Tasks counts earlier deliveries in X-CloudTasks-TaskRetryCount; the last one records what failed
    try:
        retries = int(req.raw.headers.get("X-CloudTasks-TaskRetryCount", "0"))
    except ValueError:
        retries = 0
    try:
        return worker.run_batch(b.runId, b.kind, b.batch, b.scheduleTime, users,
                                final=retries + 1 >= cfg.batch_attempts)
    except worker.RetryBatch as exc:
        raise ApiError(503, "retry_later", str(exc), headers={"Retry-After": "30"}) from None
