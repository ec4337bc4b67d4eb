"""`webhookWorker`: the Cloud Tasks target making one attempt of one webhook delivery
(logic: shared/notifications/delivery.py). Only Cloud Tasks may call it (shared/google_identity.py,
as deployWorker). Answers 200 once the attempt is recorded: the next attempt, if any, is a task of its
own with a schedule time, so the queue's own retries only cover a delivery that never answered."""
from __future__ import annotations

from pydantic import Field

from shared.api.inputs import Strict
from shared.http import Api, Reply, Request, tasks_caller
from shared.notifications import delivery, settings

api = Api("webhookWorker", "Delivers outgoing webhooks (Cloud Tasks target only)")


class DeliveryTask(Strict):
    deliveryId: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    attempt: int = Field(ge=1, le=1000)


class DeliveryAttemptDone(Reply):
    outcome: str = Field(description="delivered, pending (another attempt is scheduled), failed, or skipped")
    httpStatus: int | None = None
    error: str | None = None
    reason: str | None = None


@api.route("POST", "/", access="cloud_tasks", machine=tasks_caller(settings.get),
           body=DeliveryTask, response=DeliveryAttemptDone)
def run_task(req: Request):
    """Make one attempt of a delivery (Cloud Tasks only)."""
    return delivery.run(req.body.deliveryId, req.body.attempt)
