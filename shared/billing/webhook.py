"""Stripe webhook requests: signature check on the raw body, the event recorded and queued for
stripeEventWorker (shared/billing/sync.py applies it there, exactly once), then the 2xx Stripe waits for."""
from __future__ import annotations

import stripe

from shared import jsonbody, logs, tasks
from shared.billing import settings as billing_settings
from shared.billing import sync
from shared.errors import Malformed, TooLarge, Unauthenticated, Unavailable

# the signature is the caller's credential (the OpenAPI document's `stripeSignature`): 401 without a valid one
SIGNATURE = "Stripe-Signature"

log = logs.get("billing.webhook")

MAX_EVENT_BYTES = 512 * 1024


def verify(payload: bytes, signature: str | None) -> dict:
    """The event if `Stripe-Signature` signs this exact body with our secret within the tolerance."""
    cfg = billing_settings.get()
    if not signature:
        raise Unauthenticated("missing_signature", "Stripe-Signature header is required", challenge=SIGNATURE)
    try:
        stripe.WebhookSignature.verify_header(payload.decode("utf-8"), signature, cfg.require_webhook_secret(),
                                              cfg.webhook_tolerance_s)
    except stripe.SignatureVerificationError as exc:
        raise Unauthenticated("invalid_signature", f"signature check failed: {exc.user_message or exc}",
                              challenge=SIGNATURE) from None
    except UnicodeDecodeError:
        raise Malformed("invalid_payload", "body is not UTF-8") from None
    try:
        event = jsonbody.loads(payload, max_depth=64)  # Stripe's events nest far less than this
    except ValueError as exc:
        raise Malformed("invalid_payload", f"body is not acceptable JSON: {exc}") from None
    if not isinstance(event, dict) or not isinstance(event.get("id"), str) or not isinstance(event.get("type"), str) \
            or not event["id"] or len(event["id"]) > 255 or "/" in event["id"]:
        raise Malformed("invalid_payload", "not a Stripe event")
    return event


def receive(request) -> dict:
    """A webhook request (flask.Request) -> the outcome; 400 for anything not signed by Stripe."""
    if (request.content_length or 0) > MAX_EVENT_BYTES:
        raise TooLarge("payload_too_large", f"event larger than {MAX_EVENT_BYTES} bytes")
    payload = request.get_data(cache=False)
    signature = request.headers.get("Stripe-Signature")
    if len(payload) > MAX_EVENT_BYTES:
        raise TooLarge("payload_too_large", f"event larger than {MAX_EVENT_BYTES} bytes")
    event = verify(payload, signature)
    outcome = sync.record(event)
    if outcome.pop("queue"):
        queue(event["id"])
    return {"received": True, "eventId": event["id"], **outcome}


def queue(event_id: str) -> None:
    """A task for the worker, named after the event (Cloud Tasks keeps one task per name). If it cannot
    be created, 503: Stripe delivers the event again, finds it recorded but not applied, queues again."""
    cfg = billing_settings.get()
    if not cfg.worker_url:
        raise billing_settings.ConfigError("STRIPE_EVENT_WORKER_URL is not set: recorded events have no worker")
    try:
        tasks.enqueue(cfg.queue, cfg.worker_url, {"eventId": event_id},
                      name=tasks.task_id("stripeEvent", event_id))
    except Exception as exc:
        log.error("could not queue stripe event", extra={"eventId": event_id, "error": repr(exc)})
        raise Unavailable("queue_unavailable", "the event was recorded but could not be queued; deliver it again",
                          retry_after=60) from None


def process(event_id: str) -> dict:
    """stripeEventWorker's handler: apply the recorded event (see shared/billing/sync.py), then enforce
    the customer's plan, also on a repeated delivery (a stop that had to wait is retried)."""
    result = sync.process(event_id)
    customer = result.pop("customer", None)
    if result.get("outcome") != "not_recorded":
        _enforce_plan(customer)
    return {"eventId": event_id, **result}


def _enforce_plan(customer: str | None) -> None:
    """A plan change (downgrade) stops the bots beyond the new plan's limit (shared/plan_limits.py).
    A bot whose job is busy is stopped on the next delivery: 503 makes the queue deliver the task again."""
    from shared import plan_limits

    snap = sync.doc_of_customer(customer)
    if snap is None:
        return
    report = plan_limits.enforce(snap.get("userId"))
    if report["waiting"]:
        raise Unavailable("plan_enforcement_pending", "bots beyond the plan's limit have a job running; "
                          "they are stopped on the next delivery", report, retry_after=60)
