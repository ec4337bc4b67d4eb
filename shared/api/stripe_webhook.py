"""`stripeWebhook`: Stripe's signed event deliveries (no user auth: the signature is the check),
answered once the event is recorded and queued; `stripeEventWorker` (shared/api/stripe_event_worker.py,
Cloud Tasks, private) applies it."""
from __future__ import annotations

from pydantic import ConfigDict

from shared.billing import webhook
from shared.http import Api, Reply, Request

api = Api("stripeWebhook", "Stripe webhook endpoint")


class WebhookAck(Reply):
    model_config = ConfigDict(extra="allow")  # duplicate / ignored
    received: bool
    eventId: str


@api.route("POST", "/", access="custom", response=WebhookAck)  # custom: the signature (401 without it)
def receive(req: Request):
    """Verify the Stripe-Signature of the raw body, record the event and queue it; 2xx at once."""
    return webhook.receive(req.raw)
