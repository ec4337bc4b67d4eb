"""`healthCheck`: Cloud Scheduler every minute (or an admin on demand). Finds the bots whose heartbeats
stopped and acts (shared/health/monitor.py: degrade, restart, give up), and queues webhook deliveries
whose task never came (shared/notifications/delivery.py). Both read only what is overdue.

Callers (shared/google_identity.py): Cloud Scheduler's OIDC token for HEALTH_SCHEDULER_SA with audience
HEALTH_CHECK_URL, or an admin's user token."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from shared import clock
from shared.health import monitor, settings
from shared.http import Api, Request, scheduler_caller
from shared.notifications import delivery

api = Api("healthCheck", "Bot health check and webhook sweep (Cloud Scheduler, every minute)")


class CheckReport(BaseModel):
    model_config = ConfigDict(extra="allow")
    deployments: dict[str, int]
    deliveriesQueued: int
    at: int


@api.route("POST", "/", access="scheduler", machine=scheduler_caller(settings.get), response=CheckReport)
def run(req: Request):
    """Check the overdue deployments and sweep stalled webhook deliveries; answers what was done."""
    now = clock.now_ms()
    return {"deployments": monitor.check(now), "deliveriesQueued": delivery.sweep(now), "at": now}
