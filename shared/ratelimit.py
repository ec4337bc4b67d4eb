"""Per-caller rate limits, shared by every instance of every function.

A fixed one-minute window per (caller, rate class): the counter document
`rateLimits/{sha(caller)}_{class}_{minute}` is incremented by one write whose commit answers the new
count (a server-side Increment transform: no read, no transaction, so callers never contend with
each other and one caller's requests never retry). Over the class's limit the request is refused
as RateLimited (429 with Retry-After, the seconds to the next window) before its body is read. At a window's
edge a caller may get up to twice the limit in a minute: the price of one write per request instead
of a read-modify-write transaction. Counters carry `expireAt` (a TTL policy removes them).

Callers: a user (by id) or a bot credential (by deployment); machine and anonymous callers are not
limited here (Cloud Tasks and Scheduler pace themselves, public routes are cheap reads).
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from shared import config
from shared.errors import RateLimited

COLLECTION = "rateLimits"  # internal
WINDOW_S = 60


def scope(caller: Any) -> str | None:
    """Whom a request counts against: a bot credential, a user, or nobody (machines, anonymous)."""
    if getattr(caller, "deployment_id", ""):
        return f"bot:{caller.deployment_id}"
    user = getattr(caller, "user", None)
    return f"user:{user.id}" if user is not None else None


@dataclass(frozen=True)
class Quota:
    """The caller's window of a rate class (shared/http.py answers it as X-RateLimit-* headers)."""
    limit: int
    remaining: int
    reset: int  # epoch seconds when the next window starts
    rate: str


def check(caller: Any, rate: str) -> Quota | None:
    """Count this request; RateLimited over the limit. Returns the caller's window (None: not limited)."""
    who = scope(caller)
    limit = config.get().rate_limits.get(rate, 0)
    if who is None or limit <= 0:
        return None
    from google.cloud import firestore

    from shared import db

    now = time.time()
    window = int(now // WINDOW_S)
    reset = (window + 1) * WINDOW_S
    doc_id = f"{hashlib.sha256(who.encode()).hexdigest()[:32]}_{rate}_{window}"
    result = db.client().collection(COLLECTION).document(doc_id).set({
        "count": firestore.Increment(1),
        "expireAt": datetime.fromtimestamp(reset, timezone.utc) + timedelta(minutes=1),
    }, merge=True)
    count = result.transform_results[0].integer_value
    quota = Quota(limit, max(0, limit - count), reset, rate)
    if count > limit:
        wait = max(1, int(reset - now + 0.999))
        raise RateLimited("rate_limited", f"more than {limit} requests per minute ({rate}); retry in {wait} s",
                          retry_after=wait, quota=quota)
    return quota
