"""`auditLog`: read the audit log (shared/audit.py). A user reads the entries about their own resources
(their own calls and any admin's calls on their resources); an admin reads everyone's, filtered."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from shared.api.inputs import PageQuery
from shared.audit import AuditEntry, entries
from shared.http import Api, Request, page_of

api = Api("auditLog", "Who changed what, when, and with which outcome")
UserId = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^/\s]+$")]
Function = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{1,64}$")]
ORDER = (("at", "DESCENDING"),)


class AuditMineQuery(PageQuery):
    since: int | None = Field(None, ge=0, le=2**53, description="epoch ms, inclusive")
    until: int | None = Field(None, ge=0, le=2**53, description="epoch ms, exclusive; not after `since`: an "
                              "empty range")


class AuditAdminQuery(AuditMineQuery):
    actorId: UserId | None = None
    actingAs: UserId | None = None
    function: Function | None = None
    outcome: Literal["success", "failure"] | None = None

    @model_validator(mode="after")
    def one_filter(self):
        if sum(v is not None for v in (self.actorId, self.actingAs, self.function, self.outcome)) > 1:
            raise ValueError("filter by one of actorId, actingAs, function, outcome at a time")
        return self


def _ranges(q: AuditMineQuery) -> tuple | None:
    """None: an empty range (`until` not after `since`), as Stripe answers its created ranges."""
    if q.since is not None and q.until is not None and q.since >= q.until:
        return None
    return tuple(r for r in (("at", ">=", q.since) if q.since is not None else None,
                             ("at", "<", q.until) if q.until is not None else None) if r)


@api.route("GET", "/me", query=AuditMineQuery, response=page_of(AuditEntry))
def mine(req: Request):
    """What happened to my resources (my calls, and admins' calls on them), newest first."""
    q, ranges = req.query, _ranges(req.query)
    if ranges is None:
        return {"items": [], "nextCursor": None}
    return entries.page({"actingAs": req.caller.id}, ORDER, q.limit, q.cursor, ranges)


@api.route("GET", "/", access="admin", query=AuditAdminQuery, response=page_of(AuditEntry))
def everyone(req: Request):
    """Admin: every entry, newest first, by one of actor, acting-as user, function or outcome, and time."""
    q = req.query
    equals = {k: v for k in ("actorId", "actingAs", "function", "outcome") if (v := getattr(q, k)) is not None}
    ranges = _ranges(q)
    if ranges is None:
        return {"items": [], "nextCursor": None}
    return entries.page(equals, ORDER, q.limit, q.cursor, ranges)
