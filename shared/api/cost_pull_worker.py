"""`costPullWorker` (the Cloud Tasks target doing one batch of users of a cost pull started by
`pullCosts` or `pullOpenrouterActivity`): deployed private, it takes the queue's tasks with their
OIDC token for TASKS_INVOKER_SA (audience COSTS_WORKER_URL), checked by shared/google_identity.py.
"""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, StringConstraints

from shared.api.inputs import Strict
from shared.costs import settings, worker
from shared.errors import Unavailable
from shared.http import Api, Reply, Request, tasks_caller

Id = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^/\s]+$")]


class DeploymentItem(Strict):
    id: Id
    status: Literal["provisioning", "running", "stopped", "error"]
    createdAt: int = Field(ge=0)
    zone: str = Field("", max_length=64)  # no longer sent (the estimate does not use it): tasks queued before
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


class BatchResult(Reply):
    model_config = ConfigDict(extra="allow")
    ok: int
    failed: int
    skipped: int
    duplicate: bool


api = Api("costPullWorker", "One batch of users of a cost pull (Cloud Tasks target)")


@api.route("POST", "/", access="cloud_tasks", machine=tasks_caller(settings.get), body=BatchBody, response=BatchResult)
def run_batch(req: Request):
    """Pull one batch (Cloud Tasks only: the queue's headers and the task's OIDC token, whose
    signature Google's front has checked: the function is deployed private)."""
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
        raise Unavailable("retry_later", str(exc), retry_after=30) from None
