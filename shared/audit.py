"""The audit log: every state-changing call, and every admin call on another user's resources.
(A POST that only reads, like a knowledge search, is declared `reads=True` on its route: not a change.)

Recorded once, by the router (shared/http.py `Api.__call__`), never by handlers: one `auditLog`
document per audited request, written after the handler (so failures are recorded too, which a write
inside the handler's transaction could not do): who (`actorId`, `actorRole`), acting as whom
(`actingAs`: the owner of what was touched, from `Caller.can_access` or a `userId` in the path or
query; else the actor), what (`action` = method + route template, `summary`), on which resource
(`function`, `path`, `resourceId`), when (`at`), `requestId`, and the outcome (`status`, `outcome`,
the error `code`). Machine callers (Cloud Tasks, Cloud Scheduler, Stripe, the bots' VMs) are not
audited here: their effects are in job logs, delivery logs and the Stripe ledger. Calls refused
before a caller was known (401) are not either (anyone could fill the log).

Cost: one document write per audited call, nothing on reads. Entries expire AUDIT_RETENTION_DAYS
after they were written (a Firestore TTL policy on `expireAt`, firestore.indexes.json).
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

from shared import clock, config, logs
from shared.db import Repo
from shared.models import Doc

log = logs.get("audit")
MUTATING = ("POST", "PUT", "PATCH", "DELETE")
_MAX_MS = 10**13 - 1


class AuditEntry(Doc):
    collection = "auditLog"
    at: int
    actorId: str
    actorRole: str  # user | admin | bot
    actingAs: str
    onBehalf: bool  # an admin acting on another user's resources
    function: str
    method: str
    action: str  # "POST /deployments/{id}/actions"
    summary: str = ""
    path: str
    resourceId: str | None = None
    requestId: str
    status: int
    outcome: str  # success | failure
    code: str | None = None  # the error code of a failure
    expireAt: datetime | None = None  # when Firestore's TTL removes the entry (sent: readers see the retention)

    def to_api(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, mode="json")


entries = Repo(AuditEntry)


@lru_cache(maxsize=1)
def retention_days() -> int:
    return config.env_int("AUDIT_RETENTION_DAYS", 365, lo=1, hi=3650)


def reset() -> None:
    retention_days.cache_clear()


def _actor(caller: Any) -> tuple[str, str, set[str]] | None:
    """(actor id, role, users acted for) of a signed-in caller; None for machines and anonymous calls."""
    if isinstance(caller, tuple) and caller[:1] == ("admin",) and caller[1]:  # a scheduled job run by an admin
        return caller[1], "admin", set()
    user = getattr(caller, "user", None)
    if user is None:
        return None
    role = "bot" if getattr(caller, "deployment_id", "") else ("admin" if caller.is_admin else "user")
    return user.id, role, set(getattr(caller, "acted_for", ()) or ())


def _error_code(resp) -> str | None:
    if resp.status_code < 400:
        return None
    try:
        return json.loads(resp.get_data())["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


def record(api_name: str, route, request, params: dict, caller: Any, resp, request_id: str) -> None:
    """Write the entry of one request if it is audited (never raises: the answer is already decided)."""
    try:
        status, code = resp.status_code, _error_code(resp)
        who = _actor(caller)
        if who is None:
            return
        actor, role, others = who
        named = params.get("userId") or request.args.get("userId")
        if named and named != actor and named != "all":
            others.add(named)
        others.discard(actor)
        changes = request.method in MUTATING and not route.reads
        if not changes and not (role == "admin" and others):
            return
        now = clock.now_ms()
        entry = AuditEntry(
            _id=f"{_MAX_MS - now:013d}{request_id[-12:]}",  # ids sort newest first
            at=now, actorId=actor, actorRole=role, actingAs=sorted(others)[0] if others else actor,
            onBehalf=bool(others), function=api_name, method=request.method,
            action=f"{request.method} /{api_name}{route.path.rstrip('/')}", summary=route.summary[:200],
            path=request.path[:500], resourceId=next(iter(params.values()), None), requestId=request_id,
            status=status, outcome="success" if status < 400 else "failure", code=code,
            expireAt=datetime.now(timezone.utc) + timedelta(days=retention_days()))
        entries.set(entry)
    except Exception as exc:  # a lost audit line must not turn an answered request into an error
        log.error("audit entry not written", extra={"error": repr(exc)[:300], "requestId": request_id})
