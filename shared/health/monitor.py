"""Bot health: heartbeats, the overdue check, automatic recovery with a crash-loop guard, uptime.

One internal document per deployment, `deploymentHealth/{deploymentId}` (SCHEMA.md's deployment
status has no `degraded`, so health is kept beside it, not in it):
- `healthDeadline` (ms, indexed) is when the bot counts as down unless a heartbeat comes; null when
  nothing is expected (stopped, recovery off or given up). The check queries only
  `healthDeadline <= now`, so its reads follow the deployments that changed, not all of them.
- A heartbeat (signed like every VM report, shared/deploy/events.py) is written only when something
  changes or HEALTH_WRITE_EVERY_S has passed since the last write; in between it costs no Firestore
  operation (this instance remembers its last write and the VM's sequence).
- States: ok, degraded (no heartbeat, or the gateway reports down), recovering (an automatic restart
  is running; the next deadline is HEALTH_RECOVERY_WAIT_S later), gave_up (HEALTH_MAX_RESTARTS_PER_HOUR
  restarts in the last hour did not help), paused (the deployment is not running), unknown.
- Automatic recovery is a `reset` deploy job like any other (one active job per deployment: if one is
  active, the check waits for it). The owner may turn it off per deployment.
- Uptime: `outages` ([{from, to}], the last 30 days) against the time watched (`monitoredSince`).
"""
from __future__ import annotations

import threading
from datetime import datetime, timezone
from typing import Any, Literal

from google.cloud import firestore

from shared import clock, db, logs, repos
from shared.db import Repo
from shared.errors import Conflict
from shared.health import settings
from shared.models import Doc

log = logs.get("health")
HOUR_MS, DAY_MS = 3_600_000, 86_400_000
KEEP_OUTAGES_MS = 30 * DAY_MS
MAX_OUTAGES = 200
REQUESTED_BY = "health-check"
State = Literal["unknown", "ok", "degraded", "recovering", "gave_up", "paused"]
DOWN = ("degraded", "recovering", "gave_up")


class Health(Doc):
    collection = "deploymentHealth"
    userId: str
    state: State = "unknown"
    healthDeadline: int | None = None
    lastHeartbeatAt: int | None = None
    lastWriteAt: int = 0
    lastSeq: int = 0  # the VM's heartbeat sequence (its `time`): older or repeated ones are replays
    gateway: str = ""  # what the last heartbeat said of the bot's gateway: ok | down
    detail: str = ""
    monitoredSince: int | None = None
    downSince: int | None = None
    outages: list[dict[str, Any]] = []  # {"from": ms, "to": ms | None}
    restarts: list[int] = []  # automatic restarts, the last hour
    lastRestartJobId: str | None = None
    autoRecovery: bool = True
    reason: str = ""
    updatedAt: int = 0


health = Repo(Health)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _close_outage(h: Health, now: int) -> list[dict]:
    out = [o for o in h.outages if (o.get("to") or now) > now - KEEP_OUTAGES_MS][-MAX_OUTAGES:]
    if out and out[-1].get("to") is None:
        out[-1] = {**out[-1], "to": now}
    return out


def _notify(tx, dep, kind: str, title: str, body: str, key: str, **data) -> None:
    from shared.notifications import notify

    notify(dep.userId, kind, title=title, body=body, data={"deploymentId": dep.id, "botName": dep.botName, **data},
           dedupe_key=f"{dep.id}/{key}", transaction=tx)


# heartbeats ------------------------------------------------------------------------------------------
_seen: dict[str, tuple[int, int]] = {}  # deploymentId -> (last write by this instance, last sequence)
_seen_lock = threading.Lock()


def heartbeat(deployment_id: str, seq: int, gateway: str, detail: str) -> str:
    """A verified heartbeat (shared/deploy/events.py checked its signature and freshness)."""
    now, s = clock.now_ms(), settings.get()
    with _seen_lock:
        hit = _seen.get(deployment_id)
        if hit and gateway == "ok" and now - hit[0] < s.write_every_s * 1000:
            if seq <= hit[1]:
                return "replay"
            _seen[deployment_id] = (hit[0], seq)
            return "heartbeat (not written: written recently)"
    outcome, wrote = _record(deployment_id, seq, gateway, detail[:300], now)
    with _seen_lock:
        if len(_seen) > 50_000:
            _seen.clear()
        if wrote and gateway == "ok":
            _seen[deployment_id] = (now, seq)
        else:
            _seen.pop(deployment_id, None)
    return outcome


@db.transactional
def _record(tx, deployment_id: str, seq: int, gateway: str, detail: str, now: int) -> tuple[str, bool]:
    s = settings.get()
    h = health.get(deployment_id, tx)
    if h is not None and seq <= h.lastSeq:
        return "replay", False
    dep = repos.deployments.get(deployment_id, tx)
    if dep is None:
        return "unknown deployment", False
    h = h or Health(_id=dep.id, userId=dep.userId, monitoredSince=now)
    fields: dict[str, Any] = {"lastHeartbeatAt": now, "lastSeq": seq, "gateway": gateway, "detail": detail,
                              "lastWriteAt": now, "updatedAt": now}
    if gateway != "ok":
        # the VM lives but its bot does not answer: no new deadline; the check acts on it at once
        if h.gateway == gateway and now - h.lastWriteAt < s.write_every_s * 1000:
            return "heartbeat (gateway down, already known)", False
        if h.state in ("ok", "unknown", "paused"):
            fields["healthDeadline"] = now
        outcome = "gateway down"
    else:
        fields.update(state="ok", healthDeadline=now + s.deadline_ms, reason="")
        outcome = "heartbeat"
        if h.state in DOWN:
            fields.update(outages=_close_outage(h, now), downSince=None)
            _notify(tx, dep, "bot.recovered", f"{dep.botName} is back",
                    f"{dep.botName} is answering again (down since {_iso(h.downSince or now)}).",
                    f"recovered/{h.downSince}", downSince=h.downSince)
            outcome = "recovered"
    if h.monitoredSince is None:
        fields["monitoredSince"] = now
    health.set(h.model_copy(update=fields), tx)
    return outcome, True


def arm(deployment_id: str) -> None:
    """The bot reported ready (its deployment is running): expect heartbeats from now on."""
    _arm(deployment_id, clock.now_ms())


@db.transactional
def _arm(tx, deployment_id: str, now: int) -> None:
    s = settings.get()
    h = health.get(deployment_id, tx)
    dep = repos.deployments.get(deployment_id, tx)
    if dep is None or (h is not None and h.state not in ("unknown", "paused")):
        return
    first = now + (2 * s.heartbeat_s + s.grace_s) * 1000  # the first beat comes a period after ready
    h = h or Health(_id=dep.id, userId=dep.userId, monitoredSince=now)
    health.set(h.model_copy(update={"state": "ok", "healthDeadline": first, "updatedAt": now,
                                    "monitoredSince": h.monitoredSince or now}), tx)


# the check ----------------------------------------------------------------------------------------------
def overdue(now: int, limit: int):
    q = health.query({}, (("healthDeadline", "ASCENDING"),), (("healthDeadline", "<=", now),))
    return [snap.id for snap in q.select([]).limit(limit).stream()]


def check(now: int | None = None) -> dict:
    """Every deployment whose deadline passed: degrade, restart, give up, or pause. Reads only those."""
    now = clock.now_ms() if now is None else now
    counts: dict[str, int] = {}
    for dep_id in overdue(now, settings.get().batch):
        try:
            outcome = _handle(dep_id, now)
        except Exception:  # one deployment must not stop the others; the next run sees it again
            log.exception("health check failed for a deployment", extra={"deploymentId": dep_id})
            outcome = "error"
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


def _handle(dep_id: str, now: int) -> str:
    verdict = _transition(dep_id, now)
    if verdict != "restart":
        return verdict
    from shared.deploy import jobs

    try:
        job = jobs.request_action(dep_id, "reset", REQUESTED_BY)
    except Conflict as exc:
        if exc.code == "job_active":  # the owner (or an earlier restart) is already acting: wait for it
            return "waiting for the active job"
        raise
    health.update(dep_id, {"restarts": firestore.ArrayUnion([now]), "lastRestartJobId": job.id})
    log.warning("bot restarted automatically", extra={"deploymentId": dep_id, "jobId": job.id})
    return "restart"


@db.transactional
def _transition(tx, dep_id: str, now: int) -> str:
    s = settings.get()
    h = health.get(dep_id, tx)
    if h is None or h.healthDeadline is None or h.healthDeadline > now:
        return "not overdue"  # a heartbeat came meanwhile
    dep = repos.deployments.get(dep_id, tx)
    if dep is None:
        health.delete(dep_id, tx)
        return "deployment gone"
    fields: dict[str, Any] = {"updatedAt": now}
    if dep.status != "running":  # stopped, provisioning, error: not ours to restart; watch again when it runs
        fields.update(state="paused", healthDeadline=None, downSince=None, outages=_close_outage(h, now))
        health.update(dep_id, fields, tx)
        return "paused"
    if h.state not in DOWN:
        since = min(now, max(h.lastHeartbeatAt or 0, h.healthDeadline - s.grace_s * 1000))
        reason = (f"the bot's gateway reported down: {h.detail}" if h.gateway == "down"
                  else f"no heartbeat since {_iso(h.lastHeartbeatAt or since)}")
        outages = [o for o in h.outages if (o.get("to") or now) > now - KEEP_OUTAGES_MS][-MAX_OUTAGES + 1:]
        fields.update(state="degraded", downSince=since, reason=reason, outages=[*outages, {"from": since, "to": None}])
        h = h.model_copy(update=fields)
        plan = "restarting it automatically" if h.autoRecovery else "automatic recovery is off: restart it yourself"
        _notify(tx, dep, "bot.down", f"{dep.botName} is down", f"{reason}; {plan}.", f"down/{since}", reason=reason)
    if not h.autoRecovery:
        fields.update(healthDeadline=None)
        health.update(dep_id, fields, tx)
        return "degraded (recovery off)"
    recent = [r for r in h.restarts if r > now - HOUR_MS]
    if len(recent) >= s.max_restarts_per_hour:
        reason = (f"automatic recovery gave up: {len(recent)} restart(s) in the last hour did not bring the bot "
                  f"back ({h.reason or 'no heartbeat'})")
        fields.update(state="gave_up", healthDeadline=None, reason=reason, restarts=recent)
        _notify(tx, dep, "bot.recovery_gave_up", f"{dep.botName} needs you",
                f"{reason}. Check its logs and configuration, then restart or redeploy it.",
                f"gave_up/{h.downSince}", reason=reason)
        health.update(dep_id, fields, tx)
        return "gave up"
    fields.update(state="recovering", healthDeadline=now + s.recovery_wait_s * 1000, restarts=recent)
    health.update(dep_id, fields, tx)
    return "restart"


# what the owner sees and sets -------------------------------------------------------------------------
def uptime(h: Health | None, now: int, window_ms: int) -> float | None:
    """Share of the watched time in the last `window_ms` without an outage (None: not watched yet)."""
    if h is None or h.monitoredSince is None:
        return None
    start = max(now - window_ms, h.monitoredSince)
    if now <= start:
        return None
    down = sum(max(0, min(o.get("to") or now, now) - max(o["from"], start)) for o in h.outages)
    return round(max(0.0, 1 - down / (now - start)), 6)


def view(dep_id: str, h: Health | None = None) -> dict:
    h = h if h is not None else health.get(dep_id)
    now = clock.now_ms()
    base = h or Health(_id=dep_id, userId="")
    return {
        "deploymentId": dep_id, "state": base.state, "lastHeartbeatAt": base.lastHeartbeatAt,
        "healthDeadline": base.healthDeadline, "gateway": base.gateway or None, "detail": base.detail or None,
        "reason": base.reason or None, "downSince": base.downSince, "autoRecovery": base.autoRecovery,
        "restartsLastHour": len([r for r in base.restarts if r > now - HOUR_MS]),
        "maxRestartsPerHour": settings.get().max_restarts_per_hour, "lastRestartJobId": base.lastRestartJobId,
        "monitoredSince": base.monitoredSince,
        "uptime": {"last24h": uptime(h, now, DAY_MS), "last30d": uptime(h, now, 30 * DAY_MS)},
    }


@db.transactional
def set_auto_recovery(tx, dep_id: str, user_id: str, on: bool) -> Health:
    """Turning it back on clears the crash-loop count and lets the next check try again at once."""
    now = clock.now_ms()
    h = health.get(dep_id, tx) or Health(_id=dep_id, userId=user_id)
    fields: dict[str, Any] = {"autoRecovery": on, "updatedAt": now}
    if on and not h.autoRecovery or on and h.state == "gave_up":
        fields["restarts"] = []
        if h.state in DOWN:
            fields.update(state="degraded", healthDeadline=now)
    h = h.model_copy(update=fields)
    health.set(h, tx)
    return h
