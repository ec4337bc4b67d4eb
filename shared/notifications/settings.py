"""Configuration of notifications and outgoing webhooks (read once, lazily).

Every function that notifies (billing, deploy jobs, the VMs' reports, the health check) enqueues the
webhook deliveries of a notification after its transaction commits; the queue, the worker's URL and
the account Cloud Tasks signs for are read here. Under production rules `worker()` requires
WEBHOOKS_WORKER_URL (https) and TASKS_INVOKER_SA; a function that only notifies does not refuse to
start without them: its deliveries wait for the health check's sweep (shared/notifications/delivery.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from shared import config
from shared.config import env, env_int


@dataclass(frozen=True)
class Settings:
    queue: str  # Cloud Tasks queue of the deliveries
    worker_url: str | None  # the webhookWorker function (its tasks' OIDC audience)
    invoker_sa: str | None  # TASKS_INVOKER_SA
    retry_window_s: int  # a delivery is retried for this long after the event (24 h)
    backoff_s: tuple[float, ...]  # waits between attempts (the last one repeats)
    timeout_s: float  # one delivery's HTTP call
    max_response_bytes: int  # what is read of the receiver's answer (kept in the delivery log, cut)
    tolerance_s: int  # documented replay tolerance receivers should apply to the signature's t=
    max_webhooks: int  # per user
    sweep_after_s: int  # a delivery not handed to the queue after this is enqueued by the sweep
    keep_days: int  # notifications and delivery logs expire (TTL policy on expireAt)


def _backoff(raw: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in config.items(raw))
    except ValueError:
        raise config.ConfigError(f"WEBHOOKS_BACKOFF_S must be comma-separated seconds, got {raw!r}") from None
    if not values or any(v < 0 or v > 86400 for v in values):
        raise config.ConfigError(f"WEBHOOKS_BACKOFF_S must be seconds in [0, 86400], got {raw!r}")
    return values


@lru_cache(maxsize=1)
def get() -> Settings:
    project = config.get().project
    return Settings(
        queue=env("WEBHOOKS_QUEUE", "webhook-deliveries"),
        worker_url=env("WEBHOOKS_WORKER_URL", f"https://us-central1-{project}.cloudfunctions.net/webhookWorker"),
        invoker_sa=env("TASKS_INVOKER_SA"),
        retry_window_s=env_int("WEBHOOKS_RETRY_WINDOW_S", 86400, lo=1, hi=7 * 86400),
        # like Stripe's: quick retries first, then hourly-ish until the window closes
        backoff_s=_backoff(env("WEBHOOKS_BACKOFF_S", "30,60,300,900,1800,3600,7200,10800")),
        timeout_s=env_int("WEBHOOKS_TIMEOUT_MS", 10_000, lo=100, hi=30_000) / 1000,
        max_response_bytes=env_int("WEBHOOKS_MAX_RESPONSE_BYTES", 4096, lo=0, hi=65536),
        tolerance_s=env_int("WEBHOOKS_TOLERANCE_S", 300, lo=1, hi=3600),
        max_webhooks=env_int("WEBHOOKS_MAX_PER_USER", 10, lo=1, hi=100),
        sweep_after_s=env_int("WEBHOOKS_SWEEP_AFTER_S", 120, lo=1, hi=3600),
        keep_days=env_int("NOTIFICATIONS_KEEP_DAYS", 90, lo=1, hi=3650),
    )


WORKER = {"WEBHOOKS_WORKER_URL": config.https_url, "TASKS_INVOKER_SA": config.service_account}


def worker() -> Settings:
    """webhookWorker and the health check (which enqueues what notify could not): where tasks go."""
    config.require(WORKER)
    return get()


def reset() -> None:
    get.cache_clear()
