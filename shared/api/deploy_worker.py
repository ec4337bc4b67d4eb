"""`deployWorker`: the Cloud Tasks target that runs deploy jobs (logic: shared/deploy/worker.py).

Only Cloud Tasks may call it: the X-CloudTasks-* headers of our queue are required, and
outside local mode an OIDC token for this function's own URL, signed for the invoker
service account (TASKS_INVOKER_SA). Answers 2xx when the task is done with (the job finished,
or there was nothing to do) and 503 when the queue should deliver it again.
"""
from __future__ import annotations

import flask
from pydantic import Field, ValidationError

from shared import config, logs
from shared.api.inputs import Strict
from shared.deploy import settings, worker
from shared.errors import ApiError
from shared.http import json_response, validation_error

log = logs.get("deploy.worker")


class TaskBody(Strict):
    jobId: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")


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


def handle(raw: flask.Request) -> flask.Response:
    """Entry point. Not an `Api` route: Cloud Tasks' Authorization header carries a Google OIDC
    token, which the users' bearer-token authentication would reject."""
    token = logs.request_id.set(raw.headers.get("X-CloudTasks-TaskName") or None)  # task name on every line
    try:
        if raw.method != "POST":
            raise ApiError(405, "method_not_allowed", "POST only", headers={"Allow": "POST"})
        verify_caller(raw)
        try:
            body = TaskBody.model_validate(raw.get_json(silent=True) or {})
        except ValidationError as exc:
            raise validation_error(exc, "body") from None
        status, outcome = worker.run(body.jobId)
        return json_response({"jobId": body.jobId, "outcome": outcome}, status)
    except ApiError as exc:
        log.warning("deploy task refused", extra={"code": exc.code, "reason": exc.message})
        return json_response(exc.body(), exc.status, exc.headers)
    except Exception:
        log.exception("deploy task crashed")
        return json_response(ApiError(500, "internal", "internal error").body(), 500)
    finally:
        logs.request_id.reset(token)
