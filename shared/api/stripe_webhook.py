"""`stripeWebhook`: Stripe's signed event deliveries (no user auth: the signature is the check),
answered once the event is recorded and queued; `stripeEventWorker` (Cloud Tasks, private) applies it."""
from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, StringConstraints

from shared.api.inputs import Strict
from shared.billing import config as billing_config
from shared.billing import webhook
from shared.errors import ApiError
from shared.http import Api, Reply, Request

api = Api("stripeWebhook", "Stripe webhook endpoint")
worker_api = Api("stripeEventWorker", "Applies one recorded Stripe event (Cloud Tasks target)")


class WebhookAck(Reply):
    model_config = ConfigDict(extra="allow")  # duplicate / ignored
    received: bool
    eventId: str


class EventTask(Strict):
    eventId: Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r"^[^/]+$")]


class EventResult(Reply):
    model_config = ConfigDict(extra="allow")  # changed, duplicate
    eventId: str
    outcome: str | None = None


@api.route("POST", "/", access="custom", response=WebhookAck)
def receive(req: Request):
    """Verify the Stripe-Signature of the raw body, record the event and queue it; 2xx at once."""
    try:
        return webhook.receive(req.raw)
    except ApiError as exc:  # the signature is this caller's credential (the document's stripeSignature): 401
        if exc.code in ("missing_signature", "invalid_signature"):
            raise ApiError(401, exc.code, exc.message) from None
        raise


def _tasks() -> dict:
    cfg = billing_config.get()
    return {"queue": cfg.events_queue, "account": cfg.invoker_sa, "audience": cfg.event_worker_url}


@worker_api.route("POST", "/", access="cloud_tasks", machine=_tasks, body=EventTask, response=EventResult)
def apply_event(req: Request):
    """Apply one recorded event exactly once (Cloud Tasks only: the queue's headers and the task's
    OIDC token; deployed private). A failure answers 5xx and the queue delivers it again."""
    return webhook.process(req.body.eventId)
