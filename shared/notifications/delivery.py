"""Webhook deliveries: each attempt is one Cloud Tasks task to webhookWorker.

An attempt: claim it (a transaction: the delivery is pending, this attempt not made yet and no other
worker making it), POST the stored body to the URL through shared/outbound.py (public https only,
checked again at every attempt, after DNS resolution and at every redirect, before any connection),
signed afresh (shared/notifications/signing.py), then record it (status, the start of the answer,
duration). A 2xx delivers; anything else schedules the next attempt after a backoff as a new task with a
schedule time, until WEBHOOKS_RETRY_WINDOW_S (24 h) after the event, then the delivery fails. A URL the
guard refuses fails it at once (nothing was sent). Duplicated tasks are harmless: the claim lets one
make each attempt. A task that never came (the queue was down) is re-created by `sweep()` (the health
check, every minute) once the delivery's `sweepAt` has passed.
"""
from __future__ import annotations

import time

from shared import clock, db, logs, tasks
from shared.notifications import settings, signing
from shared.notifications.store import Attempt, deliveries, webhooks

log = logs.get("notifications.delivery")
USER_AGENT = "OpenClaw-Webhooks/1.0"
SWEEP_BATCH = 500
READ_MAX_BYTES = 256 * 1024  # a receiver's answer read at most (its start is kept in the log)


def enqueue(delivery_id: str, attempt: int, delay_s: float) -> None:
    s = settings.get()
    tasks.enqueue(s.queue, s.worker_url, {"deliveryId": delivery_id, "attempt": attempt},
                  name=tasks.task_id("webhookDelivery", delivery_id, str(attempt)), delay_s=delay_s)


@db.transactional
def _claim(tx, delivery_id: str, attempt: int) -> tuple[object | None, str | None]:
    d = deliveries.get(delivery_id, tx)
    now = clock.now_ms()
    if d is None:
        return None, "unknown delivery"
    if d.status != "pending":
        return None, f"delivery already {d.status}"
    if len(d.attempts) >= attempt:
        return None, f"attempt {attempt} already made"
    if d.claimedAttempt >= attempt and d.claimUntil > now:
        return None, f"attempt {attempt} is being made by another worker"
    s = settings.get()
    until = now + int(s.timeout_s * 1000) + 30_000
    deliveries.update(d.id, {"claimedAttempt": attempt, "claimUntil": until,
                             "sweepAt": until + s.sweep_after_s * 1000}, tx)
    return d, None


@db.transactional
def _record(tx, delivery_id: str, attempt: Attempt, outcome: str) -> tuple[str, float | None]:
    """outcome: delivered | retry | refused. Returns (the delivery's status, seconds to the next attempt)."""
    d = deliveries.get(delivery_id, tx)
    if d is None or d.status != "pending":
        return (d.status if d else "gone"), None
    s, now = settings.get(), clock.now_ms()
    attempts = [a.model_dump() for a in d.attempts] + [attempt.model_dump()]
    fields: dict = {"attempts": attempts, "claimUntil": 0}
    wait = None
    if outcome == "delivered":
        fields.update(status="delivered", completedAt=now, nextAttemptAt=None, sweepAt=None)
    else:
        wait = s.backoff_s[min(len(attempts) - 1, len(s.backoff_s) - 1)]
        nxt = now + int(wait * 1000)
        if outcome == "refused" or nxt > d.createdAt + s.retry_window_s * 1000:
            fields.update(status="failed", completedAt=now, nextAttemptAt=None, sweepAt=None)
            wait = None
        else:
            fields.update(nextAttemptAt=nxt, sweepAt=nxt + s.sweep_after_s * 1000)
    deliveries.update(d.id, fields, tx)
    return fields.get("status", "pending"), wait


def send(url: str, body: bytes, secret: str, headers: dict[str, str]) -> tuple[Attempt, str]:
    """One POST; (what happened, outcome)."""
    from shared import outbound

    s = settings.get()
    started = time.monotonic()
    signed = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
              signing.HEADER: signing.header([secret], body), **headers}
    at = clock.now_ms()
    try:
        resp = outbound.request("POST", url, body=body, headers=signed, max_bytes=READ_MAX_BYTES,
                                timeout_s=s.timeout_s, allow_http=True)
    except outbound.UnsafeUrl as exc:
        return Attempt(at=at, error=f"refused: {exc.reason}"), "refused"
    except Exception as exc:  # connection, TLS, timeout, size: try again later
        return Attempt(at=at, error=f"{type(exc).__name__}: {exc}"[:300],
                       durationMs=int((time.monotonic() - started) * 1000)), "retry"
    text = resp.body[: s.max_response_bytes].decode("utf-8", "replace")
    ok = 200 <= resp.status < 300
    return Attempt(at=at, status=resp.status, durationMs=int((time.monotonic() - started) * 1000),
                   response=text, error=None if ok else f"HTTP {resp.status}"), ("delivered" if ok else "retry")


def run(delivery_id: str, attempt: int) -> dict:
    """One attempt (the worker's task). Never asks the queue to retry: the next attempt is its own task."""
    d, skip = _claim(delivery_id, attempt)
    if skip:
        log.info("webhook attempt skipped", extra={"deliveryId": delivery_id, "reason": skip})
        return {"outcome": "skipped", "reason": skip}
    hook = webhooks.get(d.webhookId)
    if hook is None or not hook.enabled:
        result = Attempt(at=clock.now_ms(), error="the webhook was deleted or disabled"), "refused"
    else:
        result = send(hook.url, d.payload.encode(), hook.secret,
                      {"OpenClaw-Event": d.kind, "OpenClaw-Delivery": d.id, "OpenClaw-Attempt": str(attempt)})
    status, wait = _record(delivery_id, *result)
    if wait is not None:
        try:
            enqueue(delivery_id, attempt + 1, wait)
        except Exception as exc:  # sweepAt is set: the sweep creates the task
            log.warning("next webhook attempt not queued; the sweep will", extra={"deliveryId": delivery_id,
                                                                                "error": repr(exc)[:300]})
    log.info("webhook attempt", extra={"deliveryId": delivery_id, "attempt": attempt, "status": status,
                                       "httpStatus": result[0].status, "error": result[0].error})
    return {"outcome": status, "httpStatus": result[0].status, "error": result[0].error}


def sweep(now: int | None = None, limit: int = SWEEP_BATCH) -> int:
    """Queue the pending deliveries whose task never came (sweepAt passed). Reads only those."""
    now = clock.now_ms() if now is None else now
    s, queued = settings.get(), 0
    q = deliveries.query({"status": "pending"}, (("sweepAt", "ASCENDING"),), (("sweepAt", "<=", now),))
    for snap in q.limit(limit).stream():
        d = deliveries.of(snap)
        try:
            enqueue(d.id, len(d.attempts) + 1, max(0.0, ((d.nextAttemptAt or now) - now) / 1000))
        except Exception as exc:
            log.warning("sweep could not queue a webhook delivery", extra={"deliveryId": d.id, "error": repr(exc)})
            continue
        deliveries.update(d.id, {"sweepAt": max(now, d.nextAttemptAt or now) + s.sweep_after_s * 1000})
        queued += 1
    return queued
