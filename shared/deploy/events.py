"""provisioningEvents: what a VM's startup script reports over Pub/Sub.

Each event goes to the log of the deployment's newest job and may move the deployment to
`running` (ready) or `error` (failed). Pub/Sub delivers at least once, so each message id is
recorded in the internal `provisioningEventLog` collection in the same transaction and a
redelivery changes nothing. Malformed or unknown messages are logged and acknowledged:
raising would only make Pub/Sub redeliver them forever.

Reports are authenticated: every VM may publish to the topic, so the `deploymentId` inside a
message proves nothing by itself. A report counts only when its Pub/Sub attribute `signature`
is the hex HMAC-SHA256 of the message data (the exact bytes published) under the deployment's
report key, a random 256-bit key in the deployment's own secret `oc-<deploymentId>-openclaw-report-key`
that only that deployment's VM identity may read (shared/deploy/identity.py). A report must also be
fresh (its `time` within WINDOW of now) and newer than the last report accepted for the deployment
(`time` is the VM's per-deployment sequence, kept in `provisioningReporters/{deploymentId}`), so a
replayed or reordered old report changes nothing. Anything else is dropped with a warning and
changes nothing (not even the ledger).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import threading
import time as _time
from datetime import datetime, timedelta, timezone
from typing import Literal

from google.api_core import exceptions as gexc
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared import clock, db, faults, logs, repos
from shared.deploy import joblog, jobs

log = logs.get("deploy.events")
LEDGER = "provisioningEventLog"
REPORTERS = "provisioningReporters"  # per deployment: the `time` of the newest accepted report
REPORT_KEY = "openclaw-report-key"  # the deployment's secret holding its report key (hex)
WINDOW_MS = 10 * 60 * 1000  # a report older (or further in the future) than this is refused
KEY_CACHE_S = 300
KEEP = timedelta(days=7)  # ledger entries carry expireAt (a timestamp: TTL ignores numbers) for Firestore's TTL
# a VM's readiness counts only while the newest job is one that boots it
BOOTING_ACTIONS = ("deploy", "start", "reset", "update")


class Event(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)
    deploymentId: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")
    stage: Literal["booting", "installing", "configuring", "ready", "failed", "heartbeat"]
    message: str = Field("", max_length=500)
    gateway: Literal["ok", "down"] = "ok"  # heartbeats: whether the bot's gateway answers (shared/health)
    time: int = Field(ge=0)  # epoch ms on the VM; also the report's sequence number


class Rejected(Exception):
    """A report that does not prove it comes from its deployment's VM, or is not fresh."""


def parse(data: dict) -> tuple[str, Event, bytes, str]:
    """(message id, event, raw data, signature) from a CloudEvent's data; ValueError says what is wrong."""
    message = (data or {}).get("message")
    if not isinstance(message, dict):
        raise ValueError("no Pub/Sub message in the event")
    message_id = str(message.get("messageId") or message.get("message_id") or "")
    if not message_id:
        raise ValueError("message has no id")
    attributes = message.get("attributes") or {}
    signature = str(attributes.get("signature", "")) if isinstance(attributes, dict) else ""
    try:
        raw = base64.b64decode(message.get("data", ""), validate=True)
        return message_id, Event.model_validate(json.loads(raw)), raw, signature
    except (binascii.Error, ValueError, ValidationError) as exc:
        raise ValueError(f"message {message_id} is not a provisioning event: {str(exc)[:200]}") from None


_keys: dict[str, tuple[bytes | None, float]] = {}
_keys_lock = threading.Lock()
REFETCH_S = 30  # a signature that fails re-reads the key at most this often (junk cannot make it call per message)


def _report_key(deployment_id: str, fresh: bool = False) -> bytes | None:
    """The deployment's report key (cached a few minutes, absence too); None when it has none."""
    from shared.deploy import secrets

    with _keys_lock:
        hit = _keys.get(deployment_id)
    age = _time.monotonic() - hit[1] if hit else None
    ttl = KEY_CACHE_S if hit and hit[0] is not None else REFETCH_S  # absence is remembered briefly only
    if hit and age is not None and age < ttl and not (fresh and age >= REFETCH_S):
        return hit[0]
    try:
        key = bytes.fromhex(secrets.access(deployment_id, REPORT_KEY).strip())
    except (gexc.NotFound, ValueError):
        key = None
    with _keys_lock:
        if len(_keys) > 10_000:
            _keys.clear()
        _keys[deployment_id] = (key, _time.monotonic())
    return key


def sign(key_hex: str, raw: bytes) -> str:
    return hmac.new(bytes.fromhex(key_hex), raw, hashlib.sha256).hexdigest()


def authenticate(ev: Event, raw: bytes, signature: str) -> None:
    """Raises Rejected unless the report is signed with its deployment's key and fresh."""
    if not signature:
        raise Rejected("unsigned report")
    key = _report_key(ev.deploymentId)
    if key is None:
        raise Rejected("the deployment has no report key (unknown or deleted deployment)")
    good = lambda k: hmac.compare_digest(hmac.new(k, raw, hashlib.sha256).hexdigest(), signature.lower())  # noqa: E731
    if not good(key):
        key = _report_key(ev.deploymentId, fresh=True)  # the cached key may be stale
        if key is None or not good(key):
            raise Rejected("bad signature: not signed with this deployment's report key")
    if abs(clock.now_ms() - ev.time) > WINDOW_MS:
        raise Rejected(f"stale report: its time is more than {WINDOW_MS // 60000} minutes from now")


@db.transactional
def _apply(tx, message_id: str, ev: Event) -> str:
    ledger = db.client().collection(LEDGER).document(message_id)
    if ledger.get(transaction=tx).exists:
        return "duplicate"
    reporter = db.client().collection(REPORTERS).document(ev.deploymentId)
    seen = reporter.get(transaction=tx)
    if seen.exists and ev.time <= (seen.to_dict() or {}).get("lastTime", -1):
        return "replay"  # not newer than a report already accepted: changes nothing
    dep = repos.deployments.get(ev.deploymentId, tx)
    job = _newest_job(tx, ev.deploymentId) if dep else None
    boots = job is None or job.action in BOOTING_ACTIONS
    new_status = {"ready": "running", "failed": "error"}.get(ev.stage) if dep and boots else None
    if new_status and job is not None and job.action in ("deploy", "update"):
        _notify_deploy(tx, dep, job, ev)  # reads in the transaction: before its writes
    now = clock.now_ms()
    tx.create(ledger, {"deploymentId": ev.deploymentId, "stage": ev.stage, "receivedAt": now,
                       "expireAt": datetime.now(timezone.utc) + KEEP})
    if dep is None:
        return "unknown deployment"
    tx.set(reporter, {"deploymentId": ev.deploymentId, "lastTime": ev.time, "updatedAt": now})
    if job is not None:
        text = f"vm: {ev.stage}" + (f": {ev.message}" if ev.message else "")
        repos.deploy_jobs.update(job.id, {"log": joblog.append(job.log, text)}, tx)
    if new_status and new_status != dep.status:
        repos.deployments.update(dep.id, {"status": new_status}, tx)
        return f"deployment {new_status}"
    return "logged"


def _newest_job(tx, deployment_id: str):
    """The deployment's newest job, by documents only: a query in a transaction holds a lock on its
    whole range (the emulator: the collection), which with every deployment's creation of its job
    made a lock cycle that only Firestore's lock timeout broke (10 s)."""
    lock = jobs.lock_ref(deployment_id).get(transaction=tx)
    last = (lock.to_dict() or {}).get("lastJobId") if lock.exists else None
    if last is not None:
        return repos.deploy_jobs.get(last, tx)
    return repos.deploy_jobs.first(tx=tx, deploymentId=deployment_id)  # a lock from before lastJobId


def _notify_deploy(tx, dep, job, ev: Event) -> None:
    """The owner hears when the bot of a deploy (or update) is up, or failed to come up; once per job."""
    from shared.notifications import notify

    ok = ev.stage == "ready"
    what = "deployed" if job.action == "deploy" else "updated"
    notify(dep.userId, "deploy.completed" if ok else "deploy.failed",
           title=f"{dep.botName} is {what}" if ok else f"{dep.botName} failed to start",
           body="The bot is up and running." if ok else f"The VM reported: {ev.message or 'failed'}",
           data={"deploymentId": dep.id, "jobId": job.id, "action": job.action},
           dedupe_key=f"{job.id}/{ev.stage}", transaction=tx)


def _watch(deployment_id: str) -> None:
    """Expect heartbeats from a bot that just came up (best effort: its first heartbeat does it too)."""
    from shared.health import monitor

    try:
        monitor.arm(deployment_id)
    except Exception as exc:
        log.warning("health watch not armed", extra={"deploymentId": deployment_id, "error": repr(exc)[:300]})


def handle(data: dict) -> str:
    try:
        message_id, ev, raw, signature = parse(data)
    except ValueError as exc:
        log.warning("provisioning message dropped", extra={"reason": str(exc)})
        return "malformed"
    try:
        authenticate(ev, raw, signature)
    except Rejected as exc:
        log.warning("provisioning report rejected", extra={"deploymentId": ev.deploymentId, "stage": ev.stage,
                                                           "messageId": message_id, "reason": str(exc)})
        return "rejected"
    except (gexc.ServiceUnavailable, gexc.DeadlineExceeded, gexc.InternalServerError):
        raise  # Secret Manager hiccup: let Pub/Sub redeliver
    if ev.stage == "heartbeat":  # no ledger: its own sequence makes it idempotent, and most are not written
        from shared.health import monitor

        return monitor.heartbeat(ev.deploymentId, ev.time, ev.gateway, ev.message)
    try:
        outcome = _apply(message_id, ev)
    except Exception as exc:
        if faults.is_transient(exc):
            raise  # Firestore hiccup or timeout: let Pub/Sub redeliver (the ledger makes that safe)
        # anything else would fail the same way on every redelivery
        log.exception("provisioning event not applied", extra={"deploymentId": ev.deploymentId})
        return "error"
    if outcome == "deployment running":
        _watch(ev.deploymentId)
    level = log.warning if outcome in ("unknown deployment", "replay") else log.info
    level("provisioning event", extra={"deploymentId": ev.deploymentId, "stage": ev.stage, "outcome": outcome})
    return outcome
