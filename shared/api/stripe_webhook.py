"""`stripeWebhook`: Stripe's signed event deliveries (no user auth: the signature is the check)."""
from __future__ import annotations

from shared.billing import webhook
from shared.http import Api, Request

api = Api("stripeWebhook", "Stripe webhook endpoint")


@api.route("POST", "/", access="public")
def receive(req: Request):
    """Verify the Stripe-Signature of the raw body, then apply the event exactly once."""
    return webhook.receive(req.raw)
