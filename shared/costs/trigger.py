"""The schedule time of a pull started by Cloud Scheduler: its `X-CloudScheduler-ScheduleTime`
header names the run (the same time again is the same run). Who the caller is, scheduler or
admin, is decided by shared/google_identity.scheduler_or_admin.
"""
from __future__ import annotations

from datetime import datetime, timezone

import flask

from shared.errors import Malformed

HEADER = "X-CloudScheduler-ScheduleTime"


def parse_time(value: str) -> int:
    try:
        dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise Malformed("invalid_schedule_time", "schedule time must be RFC 3339") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp() * 1000)


def schedule_time(request: flask.Request) -> int:
    """The scheduler's schedule time in epoch ms (400 without the header: Cloud Scheduler sends it)."""
    value = request.headers.get(HEADER)
    if value is None:
        raise Malformed("invalid_schedule_time", f"the scheduler's {HEADER} header is missing")
    return parse_time(value)
