"""Configuration of the deployments domain (read once; only functions of this domain read it).

Under production rules (APP_ENV production or deploy-check, see shared/config.py) `get()` requires
DEPLOY_WORKER_URL (https), TASKS_INVOKER_SA (a service account),
DEPLOY_ALLOWED_PROJECTS (project ids: an empty list would accept any project) and
PROVISIONING_TOPIC; `worker()` also FUNCTIONS_URL (where the bots reach knowledge and media) and
BOT_PLUGIN_URL + BOT_PLUGIN_SHA256 (the bot plugin every VM installs, `make deploy` publishes it).
Locally they keep their defaults (DEPLOY_WORKER_URL is required everywhere).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from shared import config


@dataclass(frozen=True)
class Settings:
    queue: str
    worker_url: str
    compute_endpoint: str | None  # a local Compute server; None = the real API
    secrets_endpoint: str | None  # a local Secret Manager; None = the real API
    secrets_project: str
    events_topic: str  # full topic name the VMs publish their progress to
    machine_type: str
    image: str
    iam_endpoint: str | None  # a local IAM admin API; None = the real API (bots' service accounts)
    call_timeout_s: int
    op_timeout_s: int
    max_attempts: int
    stale_pending_ms: int
    log_max_chars: int
    allowed_projects: tuple[str, ...]  # empty: any project (local only)
    allowed_regions: tuple[str, ...]  # where the bots' VMs have Cloud NAT (no external IP); empty: any (local only)
    invoker_sa: str | None  # the account Cloud Tasks signs the worker's OIDC token for
    status_ttl_s: int
    logs_max_chars: int
    functions_url: str  # where the bot reaches the knowledge and media functions
    deployer_account: str  # the functions' runtime account: what a customer grants in their own project
    dashboard_ttl_s: int  # how long one dashboard access (IAP grant, gateway token) lasts
    bot_plugin_url: str | None  # gs://<bucket>/<object>: the bot plugin (npm pack of bot/) the VMs install
    bot_plugin_sha256: str | None  # its checksum: the VM refuses anything else

    @property
    def lease_ms(self) -> int:
        """How long one delivery may hold a job: its longest run (two operations) plus margin."""
        return (2 * (self.op_timeout_s + 2 * self.call_timeout_s) + 60) * 1000


gs_object = config.matching(r"gs://[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]/[^\s]+", "a Cloud Storage object (gs://bucket/object)")
sha256_hex = config.matching(r"[0-9a-f]{64}", "a SHA-256 (64 hex digits)")


@lru_cache(maxsize=1)
def get() -> Settings:
    project = config.get().project
    allowed = config.setting("DEPLOY_ALLOWED_PROJECTS", config.project_ids, "")
    regions = config.setting("DEPLOY_ALLOWED_REGIONS", config.regions, "")
    return Settings(
        queue=config.env("DEPLOY_QUEUE", "deploy-jobs"),
        worker_url=config.setting("DEPLOY_WORKER_URL", config.https_url, required_locally=True),
        compute_endpoint=config.env("COMPUTE_API_ENDPOINT"),
        secrets_endpoint=config.env("SECRET_MANAGER_API_ENDPOINT"),
        secrets_project=config.env("SECRETS_PROJECT", project),
        events_topic=config.setting("PROVISIONING_TOPIC", config.pubsub_topic,
                                    f"projects/{project}/topics/provisioning-events"),
        machine_type=config.env("DEPLOY_MACHINE_TYPE", "e2-small"),
        image=config.env("DEPLOY_IMAGE", "projects/debian-cloud/global/images/family/debian-12"),
        iam_endpoint=config.env("IAM_API_ENDPOINT"),
        call_timeout_s=config.env_int("DEPLOY_CALL_TIMEOUT_S", 30, hi=120),
        # below the queue's dispatch deadline (10 min for HTTP targets), so a delivery ends before it
        op_timeout_s=config.env_int("DEPLOY_OPERATION_TIMEOUT_S", 240, hi=480),
        max_attempts=config.env_int("DEPLOY_MAX_ATTEMPTS", 5, hi=100),
        stale_pending_ms=config.env_int("DEPLOY_STALE_PENDING_S", 900, hi=86400) * 1000,
        log_max_chars=config.env_int("DEPLOY_LOG_MAX_CHARS", 16000, lo=1000, hi=500_000),
        allowed_projects=config.items(allowed),
        allowed_regions=config.items(regions),
        invoker_sa=config.setting("TASKS_INVOKER_SA", config.service_account),
        status_ttl_s=config.env_int("DEPLOY_STATUS_TTL_S", 5, hi=300),
        logs_max_chars=config.env_int("DEPLOY_SERIAL_MAX_CHARS", 64_000, lo=1000, hi=1_000_000),
        functions_url=(config.env("FUNCTIONS_URL", f"https://us-central1-{project}.cloudfunctions.net")
                       or "").rstrip("/"),
        # the runtime account deploy/steps.sh makes (oc-functions in this project); customers grant it roles
        deployer_account=config.env("DEPLOYER_ACCOUNT", f"oc-functions@{project}.iam.gserviceaccount.com"),
        dashboard_ttl_s=config.env_int("DASHBOARD_ACCESS_TTL_S", 3600, lo=60, hi=12 * 3600),
        bot_plugin_url=config.env("BOT_PLUGIN_URL"),
        bot_plugin_sha256=config.env("BOT_PLUGIN_SHA256"),
    )


def worker() -> Settings:
    """The settings of deployWorker: also FUNCTIONS_URL, which production must set (the bots' VMs
    are told where the knowledge and media functions are), and the bot plugin they install."""
    settings = get()
    config.require({"FUNCTIONS_URL": config.https_url, "BOT_PLUGIN_URL": gs_object,
                    "BOT_PLUGIN_SHA256": sha256_hex})
    return settings


def reset() -> None:
    get.cache_clear()
