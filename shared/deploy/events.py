"""provisioningEvents: what a VM's startup script reports over Pub/Sub.

Each event goes to the log of the deployment's newest job and may move the deployment to
`running` (ready) or `error` (failed). Pub/Sub delivers at least once, so each message id is
recorded in the internal `provisioningEventLog` collection in the same transaction and a
redelivery changes nothing. Malformed or unknown messages are logged and acknowledged:
raising would only make Pub/Sub redeliver them forever.
"""
from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime, timedelta, timezone
from typing import Literal

from google.api_core import exceptions as gexc
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared import clock, db, logs, repos
from shared.deploy import joblog
from shared import faults  # noqa: E402  (the shared transient/permanent rule, issue 20)

log = logs.get("deploy.events")
LEDGER = "provisioningEventLog"
KEEP = timedelta(days=7)  # ledger entries carry expireAt (a timestamp: TTL ignores numbers) for Firestore's TTL
# a VM's readiness counts only while the newest job is one that boots it
BOOTING_ACTIONS = ("deploy", "start", "reset", "update")


class Event(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)
    deploymentId: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")
    stage: Literal["booting", "installing", "configuring", "ready", "failed"]
    message: str = Field("", max_length=500)
    time: int | None = None


def parse(data: dict) -> tuple[str, Event]:
    """(message id, event) from a CloudEvent's data; ValueError says what is wrong."""
    message = (data or {}).get("message")
    if not isinstance(message, dict):
        raise ValueError("no Pub/Sub message in the event")
    message_id = str(message.get("messageId") or message.get("message_id") or "")
    if not message_id:
        raise ValueError("message has no id")
    try:
        payload = json.loads(base64.b64decode(message.get("data", ""), validate=True))
        return message_id, Event.model_validate(payload)
    except (binascii.Error, ValueError, ValidationError) as exc:
        raise ValueError(f"message {message_id} is not a provisioning event: {str(exc)[:200]}") from None


@db.transactional
def _apply(tx, message_id: str, ev: Event) -> str:
    ledger = db.client().collection(LEDGER).document(message_id)
    if ledger.get(transaction=tx).exists:
        return "duplicate"
    dep = repos.deployments.get(ev.deploymentId, tx)
    job = repos.deploy_jobs.first(tx=tx, deploymentId=ev.deploymentId) if dep else None  # newest: ids sort so
    now = clock.now_ms()
    tx.create(ledger, {"deploymentId": ev.deploymentId, "stage": ev.stage, "receivedAt": now,
                       "expireAt": datetime.now(timezone.utc) + KEEP})
    if dep is None:
        return "unknown deployment"
    if job is not None:
        text = f"vm: {ev.stage}" + (f": {ev.message}" if ev.message else "")
        repos.deploy_jobs.update(job.id, {"log": joblog.append(job.log, text)}, tx)
    boots = job is None or job.action in BOOTING_ACTIONS
    new_status = {"ready": "running", "failed": "error"}.get(ev.stage) if boots else None
    if new_status and new_status != dep.status:
        repos.deployments.update(dep.id, {"status": new_status}, tx)
        return f"deployment {new_status}"
    return "logged"


def handle(data: dict) -> str:
    try:
        message_id, ev = parse(data)
    except ValueError as exc:
        log.warning("provisioning message dropped", extra={"reason": str(exc)})
        return "malformed"
    try:
        outcome = _apply(message_id, ev)
    except Exception as exc:
        if faults.is_transient(exc):
            raise  # Firestore hiccup or timeout: let Pub/Sub redeliver (the ledger makes that safe)
        # anything else would fail the same way on every redelivery
        log.exception("provisioning event not applied", extra={"deploymentId": ev.deploymentId})
        return "error"
    level = log.warning if outcome == "unknown deployment" else log.info
    level("provisioning event", extra={"deploymentId": ev.deploymentId, "stage": ev.stage, "outcome": outcome})
    return outcome
