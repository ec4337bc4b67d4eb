"""`notifications`: the caller's notification list (read/unread) and outgoing webhooks (register,
change, rotate the secret, send a test event, read the delivery log). Logic: shared/notifications/."""
from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from shared import clock, db
from shared.api.inputs import Flag, OutboundUrl, PageQuery, Strict
from shared.errors import Forbidden, Invalid, NotFound
from shared.http import Api, Reply, Request, list_of, page_of
from shared.notifications import endpoints
from shared.notifications.store import KINDS, Delivery, Notification, Webhook, deliveries, notifications

api = Api("notifications", "What happened to my bots and my subscription, and my outgoing webhooks")

Kind = Annotated[str, StringConstraints(pattern="^(" + "|".join(k.replace(".", r"\.") for k in KINDS) + r"|\*)$")]
HookUrl = OutboundUrl
UserId = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^/\s]+$")]
READ_ALL_MAX = 500


class NotificationListQuery(PageQuery):
    unread: Flag = False
    userId: UserId | None = Field(None, description="admin: another user's list")


class WebhookCreate(Strict):
    url: HookUrl = Field(description="public https URL (private, loopback, link-local and metadata addresses "
                                     "are refused, also after DNS resolution and redirects)")
    events: list[Kind] = Field(min_length=1, max_length=len(KINDS) + 1, description='kinds, or ["*"]')
    description: str = Field("", max_length=200)


class WebhookUpdate(Strict):
    url: HookUrl | None = None
    events: list[Kind] | None = Field(None, min_length=1, max_length=len(KINDS) + 1)
    description: str | None = Field(None, max_length=200)
    enabled: bool | None = None


class WebhookWithSecret(Reply):
    webhook: Webhook
    secret: str = Field(description="whsec_...: verifies the OpenClaw-Signature header; shown only now")


class ReadAllResult(Reply):
    updated: int


class WebhookTestSent(Reply):
    deliveryId: str


def _mine(req: Request) -> str:
    who = req.query.userId if req.query is not None and getattr(req.query, "userId", None) else req.caller.id
    if who != req.caller.id and not req.caller.is_admin:
        raise Forbidden("forbidden", "only admins read another user's notifications")
    return who


def _entry(req: Request) -> Notification:
    n = notifications.get(req.params["id"])
    if n is None or not req.caller.can_access(n.userId):
        raise NotFound("not_found", f"notification {req.params['id']!r} not found")
    return n


@api.route("GET", "/", query=NotificationListQuery, response=page_of(Notification))
def list_notifications(req: Request):
    """My notifications, newest first (`unread=true`: only unread ones)."""
    equals = {"userId": _mine(req), **({"readAt": None} if req.query.unread else {})}
    return notifications.page(equals, (("createdAt", "DESCENDING"),), req.query.limit, req.query.cursor)


@api.route("POST", "/{id}/read", response=Notification)
def mark_read(req: Request):
    """Mark one notification read (again: unchanged)."""
    n = _entry(req)
    if n.readAt is None:
        n.readAt = clock.now_ms()
        notifications.update(n.id, {"readAt": n.readAt})
    return n


@api.route("POST", "/{id}/unread", response=Notification)
def mark_unread(req: Request):
    """Mark one notification unread."""
    n = _entry(req)
    if n.readAt is not None:
        n.readAt = None
        notifications.update(n.id, {"readAt": None})
    return n


@api.route("POST", "/read-all", response=ReadAllResult)
def read_all(req: Request):
    """Mark all my unread notifications read (up to 500 per call, in batches)."""
    q = notifications.query({"userId": req.caller.id, "readAt": None}, (("createdAt", "DESCENDING"),))
    refs = [s.reference for s in q.select([]).limit(READ_ALL_MAX).stream()]
    now = clock.now_ms()
    for i in range(0, len(refs), 250):
        batch = db.client().batch()
        for ref in refs[i:i + 250]:
            batch.update(ref, {"readAt": now})
        batch.commit()
    return {"updated": len(refs)}


@api.route("GET", "/webhooks", response=list_of(Webhook))
def list_webhooks(req: Request):
    """My webhook endpoints (secrets are never listed)."""
    return {"items": endpoints.webhooks.all({"userId": req.caller.id}, cap=100)}


@api.route("POST", "/webhooks", body=WebhookCreate, status=201, response=WebhookWithSecret)
def create_webhook(req: Request):
    """Register an endpoint; answers its signing secret (shown only here and on rotation)."""
    b = req.body
    w = endpoints.create(req.caller.id, b.url, b.events, b.description)
    return {"webhook": w, "secret": w.secret}


@api.route("GET", "/webhooks/{id}", response=Webhook)
def get_webhook(req: Request):
    """One endpoint."""
    return endpoints.owned(req.params["id"], req.caller)


@api.route("PATCH", "/webhooks/{id}", body=WebhookUpdate, response=Webhook)
def update_webhook(req: Request):
    """Change the URL, the events, the description, or turn it off and on."""
    w = endpoints.owned(req.params["id"], req.caller)
    changes = req.body.changes()
    if not changes:
        raise Invalid("invalid_body", "send at least one of url, events, description, enabled")
    return endpoints.update(w, changes)


@api.route("DELETE", "/webhooks/{id}", status=204)
def delete_webhook(req: Request):
    """Remove an endpoint (pending deliveries to it stop)."""
    w = endpoints.owned(req.params["id"], req.caller)
    endpoints.webhooks.delete(w.id)
    return None, 204


@api.route("POST", "/webhooks/{id}/rotate-secret", response=WebhookWithSecret)
def rotate_secret(req: Request):
    """A new signing secret, effective at once; answers it."""
    w = endpoints.rotate(endpoints.owned(req.params["id"], req.caller))
    return {"webhook": w, "secret": w.secret}


@api.route("POST", "/webhooks/{id}/test", status=202, response=WebhookTestSent)
def send_test(req: Request):
    """Send a signed `webhook.test` event to this endpoint now; follow it in its delivery log."""
    return {"deliveryId": endpoints.send_test(endpoints.owned(req.params["id"], req.caller))}, 202


@api.route("GET", "/webhooks/{id}/deliveries", query=PageQuery, response=page_of(Delivery))
def list_deliveries(req: Request):
    """The endpoint's delivery log, newest first: each delivery's status and attempts."""
    w = endpoints.owned(req.params["id"], req.caller)
    return deliveries.page({"webhookId": w.id}, (("createdAt", "DESCENDING"),), req.query.limit, req.query.cursor)


@api.route("GET", "/webhooks/{id}/deliveries/{deliveryId}", response=Delivery)
def get_delivery(req: Request):
    """One delivery, with every attempt (status, answer, error, duration)."""
    w = endpoints.owned(req.params["id"], req.caller)
    d = deliveries.get(req.params["deliveryId"])
    if d is None or d.webhookId != w.id:
        raise NotFound("not_found", f"delivery {req.params['deliveryId']!r} not found")
    return d
