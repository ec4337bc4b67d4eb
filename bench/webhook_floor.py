"""The floor of the webhook benchmark: a bare functions-framework function that verifies the
Stripe signature (the stripe library, as stripeWebhook does) and records the event with one
Firestore commit (a create, as stripeWebhook does), and nothing else."""
import json
import os

import functions_framework
import stripe
from google.api_core import exceptions
from google.cloud import firestore

_db = []


@functions_framework.http
def floor(request):
    payload = request.get_data()
    stripe.WebhookSignature.verify_header(payload.decode(), request.headers.get("Stripe-Signature", ""),
                                          os.environ["STRIPE_WEBHOOK_SECRET"], 300)
    event = json.loads(payload)
    if not _db:
        _db.append(firestore.Client())
    try:
        _db[0].collection("benchFloor").document(event["id"]).create({"type": event["type"]})
    except exceptions.AlreadyExists:
        pass
    return {"received": True}
