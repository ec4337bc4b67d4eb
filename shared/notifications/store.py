"""The notifications domain's internal collections (beside SCHEMA.md's 14) and their repositories.

- `notifications`: one entry per event a user cares about; `readAt` null = unread. A notify call with a
  dedupe key gets the id sha256(userId/kind/key), so repeating it is one entry.
- `webhooks`: a user's outgoing webhook endpoints: URL (public https), the kinds it wants, its signing secret.
- `webhookDeliveries`: one per (notification, webhook): status, attempts and the log of each attempt.
Entries carry `expireAt` (a timestamp, for the TTL policies in firestore.indexes.json).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

from shared.db import Repo
from shared.models import Doc

# what a customer can be told about; webhooks subscribe to these (or "*")
KINDS = (
    "deploy.completed", "deploy.failed",
    "bot.down", "bot.recovered", "bot.recovery_gave_up",
    "billing.trial_ending", "billing.payment_failed", "billing.subscription_canceled",
    "spend.threshold", "spend.cap_reached",
    "webhook.test",
)
DeliveryStatus = Literal["pending", "delivered", "failed"]


class Notification(Doc):
    collection = "notifications"
    userId: str
    kind: str
    title: str
    body: str
    data: dict[str, Any] = {}
    createdAt: int
    readAt: int | None = None
    expireAt: datetime | None = None  # answered too: the response schema names every field


class Webhook(Doc):
    collection = "webhooks"
    userId: str
    url: str
    events: list[str]
    description: str = ""
    enabled: bool = True
    secret: str  # whsec_...: signs every delivery; shown on creation and rotation only
    createdAt: int
    updatedAt: int

    def to_api(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, mode="json", exclude={"secret"})


class Attempt(BaseModel):
    at: int
    status: int | None = None  # the receiver's HTTP status; None: no answer (refused, timeout)
    error: str | None = None
    durationMs: int = 0
    response: str = ""  # the start of the receiver's answer


class Delivery(Doc):
    collection = "webhookDeliveries"
    userId: str
    webhookId: str
    notificationId: str
    kind: str
    url: str
    payload: str  # the JSON body, fixed when the event happened (each attempt signs it afresh)
    status: DeliveryStatus = "pending"
    attempts: list[Attempt] = []
    nextAttemptAt: int | None = None
    sweepAt: int | None = None  # not yet handed to the queue: the health check's sweep enqueues it then
    claimedAttempt: int = 0  # the attempt a worker is making now, until claimUntil
    claimUntil: int = 0
    createdAt: int
    completedAt: int | None = None
    expireAt: datetime | None = None

    def to_api(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, mode="json",
                               exclude={"expireAt", "sweepAt", "claimedAttempt", "claimUntil"})


notifications = Repo(Notification)
webhooks = Repo(Webhook)
deliveries = Repo(Delivery)
