"""Notifications: what a customer is told, in their list and on their outgoing webhooks.

`notify(user_id, kind, title=, body=, data=, dedupe_key=, transaction=)` writes the user's
notification entry and one `webhookDeliveries` document per enabled webhook of theirs that wants
`kind`, in one transaction (the caller's, when given: then everything commits or nothing does). With a
dedupe key the entry's id is derived from (user, kind, key), so calling again, even concurrently or
after a retried transaction, changes nothing and delivers nothing twice. In a caller's transaction it
reads too, so it must come before that transaction's writes. The deliveries are handed to
Cloud Tasks (webhookWorker) after the commit; if that cannot happen (the queue is down, or the
transaction was not run by shared.db.transactional) the health check's sweep enqueues them.
"""
from __future__ import annotations

import hashlib
import json
import secrets as _random
from datetime import datetime, timedelta, timezone
from typing import Any

from shared import clock, db, logs
from shared.notifications.store import KINDS, Delivery, Notification, Webhook, deliveries, notifications, webhooks

log = logs.get("notifications")
__all__ = ["notify", "KINDS"]
MAX_TEXT = 2000


def notification_id(user_id: str, kind: str, dedupe_key: str | None) -> str:
    if dedupe_key is None:
        return "n" + _random.token_hex(12)
    return "n" + hashlib.sha256(f"{user_id}/{kind}/{dedupe_key}".encode()).hexdigest()[:32]


def delivery_id(notification_id_: str, webhook_id: str) -> str:
    return "d" + hashlib.sha256(f"{notification_id_}/{webhook_id}".encode()).hexdigest()[:32]


def _expire(now: int) -> datetime:
    from shared.notifications import settings

    return datetime.fromtimestamp(now / 1000, timezone.utc) + timedelta(days=settings.get().keep_days)


def payload(n: Notification) -> str:
    """The body every webhook gets for `n` (receivers de-duplicate on `id`)."""
    return json.dumps({"id": n.id, "type": n.kind, "created": n.createdAt // 1000,
                       "data": {"title": n.title, "body": n.body, **({"details": n.data} if n.data else {})}},
                      separators=(",", ":"), sort_keys=True, default=str)


def new_deliveries(tx, n: Notification, hooks: list[Webhook]) -> list[str]:
    from shared.notifications import settings

    sweep = n.createdAt + settings.get().sweep_after_s * 1000
    body, ids = payload(n), []
    for w in hooks:
        d = Delivery(_id=delivery_id(n.id, w.id), userId=n.userId, webhookId=w.id, notificationId=n.id,
                     kind=n.kind, url=w.url, payload=body, createdAt=n.createdAt, nextAttemptAt=n.createdAt,
                     sweepAt=sweep, expireAt=_expire(n.createdAt))
        deliveries.set(d, tx)
        ids.append(d.id)
    return ids


def write(tx, user_id: str, kind: str, title: str, body: str, data: dict | None,
          dedupe_key: str | None) -> list[str]:
    """The entry and its deliveries, in `tx` (reads first). Returns the new deliveries' ids."""
    if kind not in KINDS:
        raise ValueError(f"unknown notification kind {kind!r}")
    nid = notification_id(user_id, kind, dedupe_key)
    ref = notifications.ref(nid)
    if dedupe_key is not None and ref.get(transaction=tx).exists:
        return []
    hooks = [w for w in webhooks.all({"userId": user_id}, cap=100, tx=tx)
             if w.enabled and (kind in w.events or "*" in w.events)]
    now = clock.now_ms()
    n = Notification(_id=nid, userId=user_id, kind=kind, title=title[:200], body=body[:MAX_TEXT],
                     data=data or {}, createdAt=now, expireAt=_expire(now))
    tx.set(ref, n.to_store())
    return new_deliveries(tx, n, hooks)


def dispatch(delivery_ids: list[str]) -> None:
    """Hand deliveries to the queue now (never raises: what fails is left to the sweep)."""
    if not delivery_ids:
        return
    from shared.notifications import delivery

    for did in delivery_ids:
        try:
            delivery.enqueue(did, attempt=1, delay_s=0)
        except Exception as exc:  # the sweep (health check) enqueues it later
            log.warning("webhook delivery not queued; the sweep will", extra={"deliveryId": did,
                                                                            "error": repr(exc)[:300]})


@db.transactional
def _write_own(tx, *args) -> list[str]:
    return write(tx, *args)


def notify(user_id: str, kind: str, *, title: str, body: str, data: dict[str, Any] | None = None,
           dedupe_key: str | None = None, transaction=None) -> None:
    """Tell user `user_id` about `kind` (one of KINDS): a notification entry and a signed delivery to
    each of their webhooks that wants it. Idempotent with `dedupe_key`. With `transaction`, it reads
    (the dedupe entry, the user's webhooks) and writes in it, so call it BEFORE the transaction's own
    writes (Firestore refuses a read after a write: ReadAfterWriteError); the deliveries are queued
    after it commits."""
    if transaction is not None:
        ids = write(transaction, user_id, kind, title, body, data, dedupe_key)
        if ids and not db.after_commit(transaction, lambda: dispatch(ids)):
            log.info("notification deliveries left to the sweep (foreign transaction)", extra={"kind": kind})
        return
    dispatch(_write_own(user_id, kind, title, body, data, dedupe_key))
