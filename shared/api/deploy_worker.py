"""`deployWorker`: the Cloud Tasks target that runs deploy jobs (logic: shared/deploy/worker.py).

Only Cloud Tasks may call it (shared/google_identity.cloud_task): the X-CloudTasks-* headers of our
queue, and the task's OIDC token for TASKS_INVOKER_SA with this function's URL (DEPLOY_WORKER_URL)
as audience. The function is deployed private, so Google's front has verified the token's
signature (it arrives as SIGNATURE_REMOVED_BY_GOOGLE); the claims are checked here. APP_ENV=local
only: a delivery without a token is accepted (the local Cloud Tasks stand-in sends none unless
started with --oidc-key). Answers 2xx when the task is done with (the job finished, or there was
nothing to do) and 503 when the queue should deliver it again.
"""
from __future__ import annotations

from pydantic import Field

from shared import logs
from shared.api.inputs import Strict
from shared.deploy import settings, worker
from shared.errors import Unavailable
from shared.http import Api, Reply, Request, tasks_caller

api = Api("deployWorker", "Runs deploy jobs (Cloud Tasks target only)")


class TaskBody(Strict):
    jobId: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")


class TaskDone(Reply):
    jobId: str
    outcome: str = Field(description="completed, failed, or why there was nothing to do")


@api.route("POST", "/", access="cloud_tasks", machine=tasks_caller(settings.get), body=TaskBody, response=TaskDone)
def run_task(req: Request):
    """Run one deploy job (Cloud Tasks only).

    Cloud Tasks' Authorization header carries a Google OIDC token (shared/google_identity.py), not
    a user's token. 503 (`retry_later`: another delivery holds the job, or this attempt failed
    transiently) asks the queue to deliver the task again."""
    job_id = req.body.jobId
    token = logs.request_id.set(req.raw.headers.get("X-CloudTasks-TaskName"))  # task name on every line
    try:
        again, outcome = worker.run(job_id)
    finally:
        logs.request_id.reset(token)
    if again:
        raise Unavailable("retry_later", outcome, {"jobId": job_id, "outcome": outcome})
    return {"jobId": job_id, "outcome": outcome}
