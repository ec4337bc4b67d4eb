"""Who may start a pull: Cloud Scheduler (its OIDC token, in production) or an admin.

Cloud Scheduler's HTTP target sends `X-CloudScheduler-ScheduleTime` and, with an
OIDC token configured, `Authorization: Bearer <Google-signed ID token>` for the
scheduler service account. Everything else goes through the normal user
authentication and must be an admin. Locally (APP_ENV=local, where no Google
tokens exist) a scheduler call is the header without an Authorization header.
"""
from __future__ import annotations

from datetime import datetime, timezone

import flask

from shared import auth, config, google_oidc
from shared.costs import settings
from shared.errors import ApiError


def parse_time(value: str) -> int:
    try:
        dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, "invalid_schedule_time", "schedule time must be RFC 3339") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp() * 1000)


def _verify_scheduler_token(token: str) -> None:
    cfg = settings.get()
    google_oidc.verify(token, audience=cfg.scheduler_audience, service_account=cfg.scheduler_sa,
                       what="scheduler")


def caller(request: flask.Request) -> tuple[str, str | None, int | None]:
    """(trigger, admin user id, schedule time from the scheduler header)."""
    header = request.headers.get("X-CloudScheduler-ScheduleTime")
    authz = request.headers.get("Authorization", "")
    token = authz.partition(" ")[2].strip()
    if header is not None:
        if not authz and config.get().local:
            return "scheduler", None, parse_time(header)
        if token and google_oidc.is_google_token(token):
            _verify_scheduler_token(token)
            return "scheduler", None, parse_time(header)
    admin = auth.authenticate(request, "admin", allow_suspended=False)
    return "admin", admin.id, None
