"""`pullCosts` and `pullOpenrouterActivity` (Cloud Scheduler, every 6 hours, or an admin
on demand) and `costPullWorker` (the Cloud Tasks target doing one batch of users)."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from shared import clock
from shared.api.inputs import Strict
from shared.costs import runs, trigger, worker
from shared.costs.ledger import runs as runs_repo
from shared.errors import ApiError
from shared.http import Api, Request

Id = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^/\s]+$")]


class PullBody(Strict):
    """Admin only. The schedule time names the run: the same time again is the same run."""
    scheduleTime: datetime | None = None


class DeploymentItem(Strict):
    id: Id
    status: Literal["provisioning", "running", "stopped", "error"]
    createdAt: int = Field(ge=0)
    zone: str = Field("", max_length=64)


class UserItem(Strict):
    userId: Id
    deployments: list[DeploymentItem] = Field(max_length=100)


class BatchBody(Strict):
    runId: Id
    kind: Literal["costs", "activity"]
    batch: int = Field(ge=0)
    scheduleTime: int = Field(ge=0)
    users: list[UserItem] = Field(max_length=1000)


class RunReport(BaseModel):
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


class BatchResult(BaseModel):
    model_config = ConfigDict(extra="allow")
    ok: int
    failed: int
    skipped: int
    duplicate: bool


def pull_api(name: str, kind: str, what: str) -> Api:
    api = Api(name, what)

    @api.route("POST", "/", access="custom", body=PullBody, status=(202, 200), response=RunReport)
    def start(req: Request):
        """Start the run of a schedule time (once per time); answers its report. The scheduler's
        job sends `{}`; its schedule time comes from the X-CloudScheduler-ScheduleTime header."""
        who, admin_id, schedule_ms = trigger.caller(req.raw)
        if who == "admin":
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


@worker_api.route("POST", "/", access="custom", body=BatchBody, response=BatchResult)
def run_batch(req: Request):
    """Pull one batch. Deployed without public access: Cloud Run's IAM check admits only the
    tasks' OIDC token (which is also why the header is not read as a user's token here)."""
    if not req.raw.headers.get("X-CloudTasks-QueueName"):
        raise ApiError(403, "forbidden", "only Cloud Tasks calls this function")
    b = req.body
    users = [u.model_dump() for u in b.users]
    return worker.run_batch(b.runId, b.kind, b.batch, b.scheduleTime, users)
