"""Who may start a pull: Cloud Scheduler (its OIDC token, in production) or an admin.

Cloud Scheduler's HTTP target sends `X-CloudScheduler-ScheduleTime` and, with an
OIDC token configured, `Authorization: Bearer <Google-signed ID token>` for the
scheduler service account. Everything else goes through the normal user
authentication and must be an admin. Locally (APP_ENV=local, where no Google
tokens exist) a scheduler call is the header without an Authorization header.
"""
from __future__ import annotations

import base64
import json
from datetime import datetime, timezone

import flask

from shared import auth, config
from shared.costs import settings
from shared.errors import ApiError

GOOGLE_ISSUERS = ("https://accounts.google.com", "accounts.google.com")


def parse_time(value: str) -> int:
    try:
        dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, "invalid_schedule_time", "schedule time must be RFC 3339") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp() * 1000)


def _issuer(token: str) -> str | None:
    try:
        body = token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))).get("iss")
    except (ValueError, IndexError, AttributeError):
        return None


def _verify_scheduler_token(token: str) -> None:
    from google.auth.transport import requests as greq
    from google.oauth2 import id_token

    cfg = settings.get()
    if not cfg.scheduler_sa or not cfg.scheduler_audience:
        raise ApiError(403, "forbidden", "scheduler calls are not configured (COSTS_SCHEDULER_SA/AUDIENCE)")
    try:
        claims = id_token.verify_token(token, greq.Request(), audience=cfg.scheduler_audience,
                                       certs_url=cfg.scheduler_certs_url)
    except ValueError as exc:
        raise ApiError(401, "unauthenticated", f"invalid scheduler token: {exc}") from None
    if claims.get("iss") not in GOOGLE_ISSUERS:
        raise ApiError(401, "unauthenticated", "scheduler token from another issuer")
    if claims.get("email") != cfg.scheduler_sa or not claims.get("email_verified"):
        raise ApiError(403, "forbidden", "token is not the scheduler's service account")


def caller(request: flask.Request) -> tuple[str, str | None, int | None]:
    """(trigger, admin user id, schedule time from the scheduler header)."""
    header = request.headers.get("X-CloudScheduler-ScheduleTime")
    authz = request.headers.get("Authorization", "")
    token = authz.partition(" ")[2].strip()
    if header is not None:
        if not authz and config.get().local:
            return "scheduler", None, parse_time(header)
        if token and _issuer(token) in GOOGLE_ISSUERS:
            _verify_scheduler_token(token)
            return "scheduler", None, parse_time(header)
    admin = auth.authenticate(request, "admin", allow_suspended=False)
    return "admin", admin.id, None
