"""Configuration of bot health (read once). Under production rules `scheduled()` (the healthCheck
function) requires HEALTH_SCHEDULER_SA and HEALTH_CHECK_URL (who may call it, the token's audience).

Timing: the VM reports every HEALTH_HEARTBEAT_S; a healthy heartbeat is written to Firestore at most
every HEALTH_WRITE_EVERY_S (the others cost nothing), and each write moves the deployment's
`healthDeadline` to write time + HEALTH_WRITE_EVERY_S + HEALTH_GRACE_S, so throttling never makes a
live bot look late; a bot that stops is found at most that long after its last write.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from shared import config
from shared.config import env, env_int


@dataclass(frozen=True)
class Settings:
    heartbeat_s: int
    write_every_s: int
    grace_s: int
    recovery_wait_s: int  # after an automatic restart: how long to wait for heartbeats before the next try
    max_restarts_per_hour: int
    batch: int  # overdue deployments handled per check run
    scheduler_sa: str | None
    scheduler_audience: str | None  # HEALTH_CHECK_URL

    @property
    def deadline_ms(self) -> int:
        """From a heartbeat write to the moment the bot counts as down."""
        return (self.write_every_s + self.grace_s) * 1000


@lru_cache(maxsize=1)
def get() -> Settings:
    heartbeat = env_int("HEALTH_HEARTBEAT_S", 60, lo=1, hi=3600)
    return Settings(
        heartbeat_s=heartbeat,
        write_every_s=env_int("HEALTH_WRITE_EVERY_S", 240, lo=0, hi=86400),
        grace_s=env_int("HEALTH_GRACE_S", max(150, 2 * heartbeat + 30), lo=1, hi=86400),
        recovery_wait_s=env_int("HEALTH_RECOVERY_WAIT_S", 600, lo=1, hi=86400),
        max_restarts_per_hour=env_int("HEALTH_MAX_RESTARTS_PER_HOUR", 3, lo=0, hi=60),
        batch=env_int("HEALTH_CHECK_BATCH", 500, lo=1, hi=5000),
        scheduler_sa=env("HEALTH_SCHEDULER_SA"),
        scheduler_audience=env("HEALTH_CHECK_URL"),
    )


SCHEDULED = {"HEALTH_SCHEDULER_SA": config.service_account, "HEALTH_CHECK_URL": config.https_url}


def scheduled() -> Settings:
    config.require(SCHEDULED)
    return get()


def reset() -> None:
    get.cache_clear()
