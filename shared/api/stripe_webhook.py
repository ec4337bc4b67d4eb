"""`stripeWebhook`: Stripe's signed event deliveries (no user auth: the signature is the check)."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from shared.billing import webhook
from shared.http import Api, Request

api = Api("stripeWebhook", "Stripe webhook endpoint")


class WebhookAck(BaseModel):
    model_config = ConfigDict(extra="allow")  # plus what the event changed
    received: bool
    eventId: str


@api.route("POST", "/", access="public", response=WebhookAck)
def receive(req: Request):
    """Verify the Stripe-Signature of the raw body, then apply the event exactly once."""
    return webhook.receive(req.raw)
