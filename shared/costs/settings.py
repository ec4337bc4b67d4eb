"""Configuration of the costs domain (read only by the cost functions).

`get()` reads everything with local defaults. Under production rules (APP_ENV production or
deploy-check) each function also needs its own variables, checked by its section:
`scheduled()` (pullCosts, pullOpenrouterActivity: COSTS_QUEUE, TASKS_LOCATION, COSTS_WORKER_URL,
TASKS_INVOKER_SA, COSTS_SCHEDULER_SA, COSTS_SCHEDULER_AUDIENCE) and `worker()` (costPullWorker:
TASKS_INVOKER_SA, COSTS_WORKER_URL, OPENROUTER_MANAGEMENT_KEY, OPENAI_ADMIN_KEY).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from shared import config
from shared.config import env, env_int


@dataclass(frozen=True)
class Settings:
    openrouter_base: str
    openrouter_key: str | None  # operator's OpenRouter management key
    openai_base: str
    openai_key: str | None  # operator's OpenAI admin key
    queue: str  # Cloud Tasks queue of the pull workers
    worker_url: str | None  # URL of the costPullWorker function (its tasks' OIDC audience)
    invoker_sa: str | None  # TASKS_INVOKER_SA: the account Cloud Tasks signs the worker's token for
    batch_size: int  # users per task
    concurrency: int  # provider calls in flight per task
    timeout_s: float  # per provider call
    attempts: int  # tries per call (429/5xx/timeouts retried)
    batch_attempts: int  # deliveries of a batch the queue makes (its --max-attempts, deploy/steps.sh)
    backoff_s: float  # first retry wait; doubles, with jitter
    backoff_max_s: float
    claim_lease_ms: int  # a claimed run not yet dispatched may be re-claimed after this
    scheduler_sa: str | None  # service account Cloud Scheduler signs its OIDC token with
    scheduler_audience: str | None  # this function's own URL (pullCosts and pullOpenrouterActivity differ)
    machine_type: str  # the bots' VM shape (deployments do not store it)
    disk_gb: int
    disk_type: str
    max_rows: int  # read cap of one cost query
    operator_projects: tuple[str, ...]  # DEPLOY_ALLOWED_PROJECTS: VMs elsewhere are the customer's to pay


@lru_cache(maxsize=1)
def get() -> Settings:
    return Settings(
        openrouter_base=env("OPENROUTER_BASE_URL", "https://openrouter.ai/api/v1").rstrip("/"),
        openrouter_key=env("OPENROUTER_MANAGEMENT_KEY"),
        openai_base=env("OPENAI_BASE_URL", "https://api.openai.com/v1").rstrip("/"),
        openai_key=env("OPENAI_ADMIN_KEY"),
        queue=env("COSTS_QUEUE", "cost-pulls"),
        worker_url=env("COSTS_WORKER_URL"),
        invoker_sa=env("TASKS_INVOKER_SA"),
        batch_size=env_int("COSTS_BATCH_SIZE", 200, lo=1, hi=1000),
        concurrency=env_int("COSTS_CONCURRENCY", 50, lo=1, hi=500),
        timeout_s=env_int("COSTS_TIMEOUT_MS", 10_000, lo=10, hi=120_000) / 1000,
        attempts=env_int("COSTS_ATTEMPTS", 4, lo=1, hi=10),
        batch_attempts=env_int("COSTS_BATCH_ATTEMPTS", 5, lo=1, hi=100),
        backoff_s=env_int("COSTS_BACKOFF_MS", 500, lo=0, hi=60_000) / 1000,
        backoff_max_s=env_int("COSTS_BACKOFF_MAX_MS", 8_000, lo=0, hi=120_000) / 1000,
        claim_lease_ms=env_int("COSTS_CLAIM_LEASE_MS", 10 * 60_000, lo=1),
        scheduler_sa=env("COSTS_SCHEDULER_SA"),
        scheduler_audience=env("COSTS_SCHEDULER_AUDIENCE"),
        machine_type=env("COSTS_MACHINE_TYPE", "e2-medium"),
        disk_gb=env_int("COSTS_DISK_GB", 20, lo=1, hi=65_536),
        disk_type=env("COSTS_DISK_TYPE", "pd-balanced"),
        max_rows=env_int("COSTS_MAX_ROWS", 20_000, lo=100, hi=1_000_000),
        operator_projects=config.env_list("DEPLOY_ALLOWED_PROJECTS"),
    )


# what each function needs in production, besides what get() reads with local defaults
SCHEDULED = {"COSTS_QUEUE": config.non_empty, "TASKS_LOCATION": config.region, "COSTS_WORKER_URL": config.https_url,
             "TASKS_INVOKER_SA": config.service_account, "COSTS_SCHEDULER_SA": config.service_account,
             "COSTS_SCHEDULER_AUDIENCE": config.https_url}
WORKER = {"TASKS_INVOKER_SA": config.service_account, "COSTS_WORKER_URL": config.https_url,
          "OPENROUTER_MANAGEMENT_KEY": config.non_empty, "OPENAI_ADMIN_KEY": config.non_empty}


def scheduled() -> Settings:
    """pullCosts and pullOpenrouterActivity: who may call them, and where their tasks go."""
    config.require(SCHEDULED)
    return get()


def worker() -> Settings:
    """costPullWorker: who may call it, and the providers' keys."""
    config.require(WORKER)
    return get()


def reset() -> None:
    get.cache_clear()
