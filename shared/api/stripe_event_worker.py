"""`stripeEventWorker` (Cloud Tasks, private): applies one Stripe event that `stripeWebhook`
(shared/api/stripe_webhook.py) recorded and queued. Logic: shared/billing/webhook.py and sync.py."""
from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, StringConstraints

from shared.api.inputs import Strict
from shared.billing import settings as billing_settings
from shared.billing import webhook
from shared.http import Api, Reply, Request, tasks_caller

api = Api("stripeEventWorker", "Applies one recorded Stripe event (Cloud Tasks target)")


class EventTask(Strict):
    eventId: Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r"^[^/]+$")]


class EventResult(Reply):
    model_config = ConfigDict(extra="allow")  # changed, duplicate
    eventId: str
    outcome: str | None = None


@api.route("POST", "/", access="cloud_tasks", machine=tasks_caller(billing_settings.get),
           body=EventTask, response=EventResult)
def apply_event(req: Request):
    """Apply one recorded event exactly once (Cloud Tasks only: the queue's headers and the task's
    OIDC token; deployed private). A failure answers 5xx and the queue delivers it again."""
    return webhook.process(req.body.eventId)
