"""`deployWorker`: the Cloud Tasks target that runs deploy jobs (logic: shared/deploy/worker.py).

Only Cloud Tasks may call it: the X-CloudTasks-* headers of our queue are required, and
outside local mode an OIDC token for this function's own URL, signed for the invoker
service account (TASKS_INVOKER_SA). Answers 2xx when the task is done with (the job finished,
or there was nothing to do) and 503 when the queue should deliver it again.
"""
from __future__ import annotations

from pydantic import BaseModel, Field

from shared import config, logs
from shared.api.inputs import Strict
from shared.deploy import settings, worker
from shared.errors import ApiError
from shared.http import Api, Request

log = logs.get("deploy.worker")
api = Api("deployWorker", "Runs deploy jobs (Cloud Tasks target only)")


class TaskBody(Strict):
    jobId: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")


class TaskDone(BaseModel):
    jobId: str
    outcome: str = Field(description="completed, failed, or why there was nothing to do")


def verify_caller(raw) -> None:
    s = settings.get()
    queue = raw.headers.get("X-CloudTasks-QueueName", "")
    if queue.rsplit("/", 1)[-1] != s.queue or not raw.headers.get("X-CloudTasks-TaskName"):
        raise ApiError(403, "not_cloud_tasks", "only the deploy queue may call this function")
    if config.get().local:
        return
    if not s.invoker_sa:
        raise ApiError(500, "misconfigured", "TASKS_INVOKER_SA is not set")
    from google.auth import exceptions as gauth_exc
    from google.auth.transport import requests as greq
    from google.oauth2 import id_token

    scheme, _, token = raw.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "unauthenticated", "an OIDC token is required")
    try:
        claims = id_token.verify_oauth2_token(token, greq.Request(), audience=s.worker_url)
    except (ValueError, gauth_exc.GoogleAuthError) as exc:
        raise ApiError(401, "unauthenticated", f"invalid OIDC token: {exc}") from None
    if claims.get("email") != s.invoker_sa or not claims.get("email_verified"):
        raise ApiError(403, "forbidden", "token not issued for the tasks invoker")


@api.route("POST", "/", access="custom", body=TaskBody, response=TaskDone)
def run_task(req: Request):
    """Run one deploy job (Cloud Tasks only).

    Cloud Tasks' Authorization header carries a Google OIDC token (checked here), not a user's
    token. 503 (`retry_later`: another delivery holds the job, or this attempt failed transiently)
    asks the queue to deliver the task again."""
    try:
        verify_caller(req.raw)
    except ApiError as exc:
        log.warning("deploy task refused", extra={"code": exc.code, "reason": exc.message})
        raise
    job_id = req.body.jobId
    token = logs.request_id.set(req.raw.headers.get("X-CloudTasks-TaskName"))  # task name on every line
    try:
        status, outcome = worker.run(job_id)
    finally:
        logs.request_id.reset(token)
    if status == 503:
        raise ApiError(503, "retry_later", outcome, {"jobId": job_id, "outcome": outcome})
    return {"jobId": job_id, "outcome": outcome}
