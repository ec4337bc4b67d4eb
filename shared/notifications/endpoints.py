"""A user's outgoing webhook endpoints: registration (public https only, checked by shared/outbound.py
before anything is stored), secrets, and a test event."""
from __future__ import annotations

import secrets as _random

from shared import clock, db
from shared.errors import Conflict, Invalid, NotFound
from shared.notifications import dispatch, new_deliveries, settings
from shared.notifications.store import Notification, Webhook, webhooks


def new_secret() -> str:
    return "whsec_" + _random.token_urlsafe(32)


def check_url(url: str) -> str:
    """422 unless `url` is https and every address its host resolves to is public (no request is made)."""
    from shared import outbound

    try:
        outbound.check_url(url, allow_http=True)  # http only on the local stack (OUTBOUND_ALLOW_LOOPBACK)
    except outbound.UnsafeUrl as exc:
        raise Invalid("unsafe_url", f"webhook URL refused: {exc.reason}") from None
    return url


def owned(webhook_id: str, caller) -> Webhook:
    w = webhooks.get(webhook_id)
    if w is None or not caller.can_access(w.userId):
        raise NotFound("not_found", f"webhook {webhook_id!r} not found")
    return w


@db.transactional
def _create(tx, w: Webhook) -> None:
    if len(webhooks.all({"userId": w.userId}, cap=200, tx=tx)) >= settings.get().max_webhooks:
        raise Conflict("too_many_webhooks", f"at most {settings.get().max_webhooks} webhooks per user")
    webhooks.create(w, tx)


def create(user_id: str, url: str, events: list[str], description: str) -> Webhook:
    now = clock.now_ms()
    w = Webhook(_id=webhooks.new_id(), userId=user_id, url=check_url(url), events=sorted(set(events)),
                description=description, secret=new_secret(), createdAt=now, updatedAt=now)
    _create(w)
    return w


def update(w: Webhook, changes: dict) -> Webhook:
    if "url" in changes:
        check_url(changes["url"])
    if "events" in changes:
        changes["events"] = sorted(set(changes["events"]))
    changes["updatedAt"] = clock.now_ms()
    return webhooks.patch(w, changes)


def rotate(w: Webhook) -> Webhook:
    """A new secret at once (deliveries already queued are signed with it when they are sent)."""
    return update(w, {"secret": new_secret()})


@db.transactional
def _test(tx, w: Webhook) -> str:
    now = clock.now_ms()
    n = Notification(_id="ntest_" + _random.token_hex(10), userId=w.userId, kind="webhook.test",
                     title="Test event", body="A test event sent from the dashboard.",
                     data={"webhookId": w.id}, createdAt=now)
    (delivery_id,) = new_deliveries(tx, n, [w])
    return delivery_id


def send_test(w: Webhook) -> str:
    """One signed test delivery to this endpoint (not added to the notification list)."""
    if not w.enabled:
        raise Conflict("webhook_disabled", "enable the webhook first")
    delivery_id = _test(w)
    dispatch([delivery_id])
    return delivery_id
