"""Configuration of the backups domain (read once).

The snapshot schedule follows the owner's plan (`subscriptions.plan`; no plan: starter):
every BACKUP_<PLAN>_EVERY_H hours (24: daily at BACKUP_START_UTC), kept BACKUP_<PLAN>_KEEP_DAYS
days; the snapshot taken before a delete is kept as long. Under production rules `scheduler()`
(the cleanup route) needs BACKUP_SCHEDULER_SA and BACKUP_CLEANUP_URL (the function's URL: its token's audience).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from shared import config

PLANS = ("starter", "pro")
DEFAULTS = {"starter": (24, 7), "pro": (6, 30)}  # (hours between snapshots, days kept)
CYCLE_HOURS = (1, 2, 3, 4, 6, 8, 12, 24)  # Compute's hourly schedule divides the day; 24 = daily


@dataclass(frozen=True)
class Schedule:
    plan: str
    every_h: int
    keep_days: int

    @property
    def policy_name(self) -> str:
        """Named by what it does, so a changed schedule is a new policy (a policy cannot be edited)."""
        return f"oc-backup-{self.plan}-{self.every_h}h-{self.keep_days}d"


@dataclass(frozen=True)
class Settings:
    schedules: dict[str, Schedule]
    start_utc: str  # HH:00 the daily (or first hourly) snapshot starts
    storage_location: str  # multi-region or region the snapshots are stored in
    scheduler_sa: str | None
    scheduler_audience: str | None  # BACKUP_CLEANUP_URL
    list_max: int  # snapshots listed per bot

    def schedule(self, plan: str | None) -> Schedule:
        return self.schedules.get(plan or "starter", self.schedules["starter"])


def _schedule(plan: str) -> Schedule:
    every_h, keep = DEFAULTS[plan]
    every_h = int(config.env_choice(f"BACKUP_{plan.upper()}_EVERY_H", str(every_h), tuple(map(str, CYCLE_HOURS))))
    return Schedule(plan, every_h, config.env_int(f"BACKUP_{plan.upper()}_KEEP_DAYS", keep, lo=1, hi=3650))


@lru_cache(maxsize=1)
def get() -> Settings:
    return Settings(
        schedules={p: _schedule(p) for p in PLANS},
        start_utc=f"{config.env_int('BACKUP_START_HOUR_UTC', 3, lo=0, hi=23):02d}:00",
        storage_location=config.env("BACKUP_STORAGE_LOCATION", "us"),
        scheduler_sa=config.env("BACKUP_SCHEDULER_SA"),
        scheduler_audience=config.env("BACKUP_CLEANUP_URL"),
        list_max=config.env_int("BACKUP_LIST_MAX", 200, lo=1, hi=500),
    )


SCHEDULER = {"BACKUP_SCHEDULER_SA": config.service_account, "BACKUP_CLEANUP_URL": config.https_url}


def scheduler() -> Settings:
    config.require(SCHEDULER)
    return get()


def reset() -> None:
    get.cache_clear()
