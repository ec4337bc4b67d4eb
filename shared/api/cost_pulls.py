"""The routes of the two cost pulls, `pullCosts` (shared/api/pull_costs.py) and `pullOpenrouterActivity`
(shared/api/pull_openrouter_activity.py), which differ only in the kind of run they start
(shared/costs/runs.py), and their models (`RunReport` is also the costs function's run view). A run
fans out batches to `costPullWorker`.

Callers are identified by shared/google_identity.py: the pulls are deployed public and take
Cloud Scheduler's OIDC token for COSTS_SCHEDULER_SA (audience COSTS_SCHEDULER_AUDIENCE, each
function's own URL; signature verified) or an admin's user token.
"""
from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import ConfigDict

from shared import clock
from shared.api.inputs import Strict
from shared.costs import runs, settings, trigger
from shared.costs.ledger import Kind
from shared.costs.ledger import runs as runs_repo
from shared.errors import Invalid, NotFound
from shared.http import Api, Reply, Request, scheduler_caller


class PullBody(Strict):
    """Admin only. The schedule time names the run: the same time again is the same run."""
    scheduleTime: datetime | None = None


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


def cost_pull_api(name: str, kind: Kind, what: str) -> Api:
    """The function `name` starting and reporting runs of `kind`."""
    api = Api(name, what)

    @api.route("POST", "/", access="scheduler", machine=scheduler_caller(settings.get), body=PullBody,
               status=(202, 200), response=RunReport)
    def start(req: Request):
        """Start the run of a schedule time (once per time); answers its report. The scheduler's
        job sends `{}`; its schedule time comes from the X-CloudScheduler-ScheduleTime header."""
        who, admin_id = req.caller
        if who == "scheduler":
            schedule_ms = trigger.schedule_time(req.raw)
        else:
            at = req.body.scheduleTime
            if at is not None and at.tzinfo is None:
                raise Invalid("invalid_body", "scheduleTime needs a time zone (e.g. ...Z)")
            schedule_ms = int(at.timestamp() * 1000) if at else clock.now_ms()
        report, started = runs.start(kind, schedule_ms, who, admin_id)
        return {**report, "started": started}, (202 if started else 200)

    @api.route("GET", "/runs/{runId}", access="admin", response=RunReport)
    def get_run(req: Request):
        """Admin: a run's progress and its ok / failed / skipped counts."""
        run = runs_repo.require(req.params["runId"])
        if run.kind != kind:
            raise NotFound("not_found", f"no {kind} run {req.params['runId']!r}")
        return runs.report(run)

    return api
