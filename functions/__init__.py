"""Every Cloud Function of the project, in one table: its name (the entry point), its module here, its
routes' module in shared/api/ (HTTP functions), its trigger and how it runs (sizing, environment,
secrets, who may invoke it), plus the queues and scheduler jobs that call the functions.

deploy/manifest.py writes cloudbuild.yaml from this table; the dev server mounts each function at
/<name>; tests/test_layout.py keeps it in step with the files here and in shared/api/. Plain data: it
imports nothing but the standard library (deploy/undeploy.sh reads it with a plain python3), and no
function imports it (Cloud Functions loads each module by its path, not as part of this package).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath

URL = "https://${_REGION}-${PROJECT_ID}.cloudfunctions.net"  # a gen2 function's URL and its OIDC audience
SA = "@${PROJECT_ID}.iam.gserviceaccount.com"

# Service accounts (ids; created by the `identities` step). One runtime identity for the functions;
# the three callers (Cloud Scheduler, Cloud Tasks, Eventarc) each have their own. Each bot's VM runs as
# an account of its own, made per deployment by deployWorker (shared/deploy/identity.py), not here.
RUNTIME, SCHEDULER, TASKS, EVENTS = "oc-functions", "oc-scheduler", "oc-tasks", "oc-events"

DEPLOY = {
    "DEPLOY_WORKER_URL": f"{URL}/deployWorker",
    "DEPLOY_QUEUE": "deploy-jobs",
    "TASKS_LOCATION": "${_REGION}",
    "TASKS_INVOKER_SA": TASKS + SA,
    "DEPLOY_ALLOWED_PROJECTS": "${_DEPLOY_PROJECTS}",
    "DEPLOY_ALLOWED_REGIONS": "${_REGION}",  # the region whose Cloud NAT the vm-network step creates
    "PROVISIONING_TOPIC": "projects/${PROJECT_ID}/topics/provisioning-events",
    "FUNCTIONS_URL": URL,
    # two Compute operations plus their calls (2 x (200 + 2 x 30) s) end inside deployWorker's 540 s
    "DEPLOY_OPERATION_TIMEOUT_S": "200",
}
# Cloud Tasks queues: the workers know how many deliveries their queue makes (the last records a failure).
# deploy-jobs' retries (20 attempts, backoff up to 120 s: ~35 min) outlast a job's lease (~9 min).
QUEUES = {
    "deploy-jobs": {"max-attempts": 20, "min-backoff": "5s", "max-backoff": "120s", "max-concurrent-dispatches": 20},
    "cost-pulls": {"max-attempts": 5, "min-backoff": "10s", "max-backoff": "300s", "max-concurrent-dispatches": 100},
    # one task per attempt (the worker schedules the next itself, for 24 h); the queue's own retries only
    # cover a worker that did not answer (Firestore down)
    "webhook-deliveries": {"max-attempts": 10, "min-backoff": "10s", "max-backoff": "300s",
                           "max-concurrent-dispatches": 50},
    # Stripe's recorded webhook events: retried for ~1 h (then billingReconcile applies what is left)
    "stripe-events": {"max-attempts": 20, "min-backoff": "1s", "max-backoff": "300s", "max-concurrent-dispatches": 50},
    # re-embedding: every task is resumable and waits (503) while a run settles or a batch is leased, so
    # retries are many; 5 batches at once keep the embeddings provider's rate limit and Firestore calm
    "knowledge-reembed": {"max-attempts": 100, "min-backoff": "10s", "max-backoff": "120s",
                          "max-concurrent-dispatches": 5},
}
REEMBED = {
    "KNOWLEDGE_REEMBED_QUEUE": "knowledge-reembed",
    "KNOWLEDGE_REEMBED_WORKER_URL": f"{URL}/knowledgeReembedWorker",
    "TASKS_LOCATION": "${_REGION}",
    "TASKS_INVOKER_SA": TASKS + SA,
}
# The bot plugin (bot/): published under its checksum by the bot-plugin step; deployWorker puts both in
# each VM's metadata, and the startup script installs exactly those bytes.
BOT_PLUGIN = {
    "BOT_PLUGIN_URL": "gs://${_ARTIFACTS_BUCKET}/bot-plugin/${_BOT_PLUGIN_SHA256}.tgz",
    "BOT_PLUGIN_SHA256": "${_BOT_PLUGIN_SHA256}",
}
# functions that notify (shared/notifications): where their webhook deliveries are queued after commit
NOTIFY = {"WEBHOOKS_QUEUE": "webhook-deliveries", "WEBHOOKS_WORKER_URL": f"{URL}/webhookWorker",
          "TASKS_LOCATION": "${_REGION}", "TASKS_INVOKER_SA": TASKS + SA}
COST_PULLS = {
    "COSTS_QUEUE": "cost-pulls",
    "TASKS_LOCATION": "${_REGION}",
    "COSTS_WORKER_URL": f"{URL}/costPullWorker",
    "TASKS_INVOKER_SA": TASKS + SA,
    "COSTS_SCHEDULER_SA": SCHEDULER + SA,
}


@dataclass
class Fn:
    """One Cloud Function and how it runs. Sizing (see docs/DEPLOYING.md): user-facing APIs are
    I/O-bound, so one vCPU serves many requests at once; workers get long timeouts that end
    before their caller's deadline (Cloud Tasks dispatch deadline 600 s, scheduler attempt)."""
    name: str
    source: str
    env: dict = field(default_factory=dict)
    secrets: dict = field(default_factory=dict)  # env var -> Secret Manager secret
    private: bool = False  # only Google-signed callers with roles/run.invoker get in
    invokers: tuple = ()  # service accounts granted roles/run.invoker
    topic: str | None = None  # Pub/Sub trigger (through Eventarc), else HTTP
    memory: str = "512Mi"
    cpu: str = "1"
    timeout: int = 60
    concurrency: int = 40
    max_instances: int = 20
    needs: tuple = ()  # steps besides the foundation that must be done before it deploys

    @property
    def trigger(self) -> str:
        return "pubsub" if self.topic else "http"

    @property
    def module(self) -> str | None:
        """An HTTP function's routes: the shared.api module of its file's name, exporting `api`."""
        return None if self.topic else f"shared.api.{PurePosixPath(self.source).stem}"


FUNCTIONS = [
    # site content and users: cheap reads, the most traffic
    Fn("users", "functions/users.py"),
    Fn("cmsPages", "functions/cms_pages.py"),
    Fn("navLinks", "functions/nav_links.py"),
    Fn("pricingPlans", "functions/pricing_plans.py"),
    # costs: the read API, two scheduled pulls (their scheduler waits 300 s), the private worker
    # costs also lifts what a budget stopped or capped when the owner raises it (deploy jobs, OpenRouter key)
    Fn("costs", "functions/costs.py", env=DEPLOY, secrets={"OPENROUTER_MANAGEMENT_KEY": "openrouter-management-key"}),
    Fn("pullCosts", "functions/pull_costs.py", timeout=240, max_instances=2,
       env={**COST_PULLS, "COSTS_SCHEDULER_AUDIENCE": f"{URL}/pullCosts"}),
    Fn("pullOpenrouterActivity", "functions/pull_openrouter_activity.py", timeout=240, max_instances=2,
       env={**COST_PULLS, "COSTS_SCHEDULER_AUDIENCE": f"{URL}/pullOpenrouterActivity"}),
    Fn("costPullWorker", "functions/cost_pull_worker.py", private=True, invokers=(TASKS,),
       timeout=540, concurrency=4, max_instances=25,
       env={**DEPLOY, "TASKS_INVOKER_SA": TASKS + SA, "COSTS_WORKER_URL": f"{URL}/costPullWorker",
            "COSTS_BATCH_ATTEMPTS": str(QUEUES["cost-pulls"]["max-attempts"])},  # DEPLOY: budgets stop bots
       secrets={"OPENROUTER_MANAGEMENT_KEY": "openrouter-management-key", "OPENAI_ADMIN_KEY": "openai-admin-key"}),
    # billing (Stripe)
    Fn("billing", "functions/billing.py", env={"APP_URL": "${_APP_URL}"},
       secrets={"STRIPE_SECRET_KEY": "stripe-secret-key"}),
    # the webhook records and queues each event (no Stripe call: only its signing secret); the worker applies it
    Fn("stripeWebhook", "functions/stripe_webhook.py",
       env={"STRIPE_EVENTS_QUEUE": "stripe-events", "TASKS_LOCATION": "${_REGION}", "TASKS_INVOKER_SA": TASKS + SA,
            "STRIPE_EVENT_WORKER_URL": f"{URL}/stripeEventWorker"},
       secrets={"STRIPE_WEBHOOK_SECRET": "stripe-webhook-secret"}),
    # the worker applies them; a downgrade stops the bots beyond the plan's limit: it queues deploy jobs (DEPLOY);
    # it tells the customer (payment failed, canceled, trial ending: NOTIFY)
    Fn("stripeEventWorker", "functions/stripe_event_worker.py", private=True, invokers=(TASKS,), max_instances=10,
       env={**DEPLOY, **NOTIFY, "STRIPE_EVENT_WORKER_URL": f"{URL}/stripeEventWorker"},
       secrets={"STRIPE_SECRET_KEY": "stripe-secret-key"}),
    Fn("billingReconcile", "functions/billing_reconcile.py", timeout=540, concurrency=1, max_instances=2,
       env={**DEPLOY, **NOTIFY, "BILLING_SCHEDULER_SA": SCHEDULER + SA,
            "BILLING_RECONCILE_URL": f"{URL}/billingReconcile"},
       secrets={"STRIPE_SECRET_KEY": "stripe-secret-key"}),
    # knowledge (numpy vectors: more memory, fewer requests at once) and media
    Fn("knowledge", "functions/knowledge.py", memory="1Gi", concurrency=8, env=REEMBED,
       secrets={"OPENAI_API_KEY": "openai-api-key"}),
    Fn("knowledgeReembedWorker", "functions/knowledge_reembed_worker.py", private=True, invokers=(TASKS,),
       memory="1Gi", timeout=300, concurrency=2, max_instances=5, env=REEMBED,
       secrets={"OPENAI_API_KEY": "openai-api-key"}),
    # media: POST /from-url holds one file (MEDIA_FETCH_MAX_BYTES, 64 MiB) in memory while it moves it to
    # Cloud Storage: 1 GiB for 10 requests at once, and time for a 45 s download plus the upload
    Fn("media", "functions/media.py", memory="1Gi", concurrency=10, timeout=120,
       env={"MEDIA_BUCKET": "${_MEDIA_BUCKET}", "MEDIA_DRIVE_BACKUP": "${_MEDIA_DRIVE_BACKUP}",
            "FUNCTIONS_URL": URL}),
    # deployments: the API, the private Cloud Tasks worker, the VMs' progress reports (Pub/Sub)
    Fn("deployments", "functions/deployments.py", env=DEPLOY),
    Fn("deployWorker", "functions/deploy_worker.py", env={**DEPLOY, **BOT_PLUGIN, **NOTIFY}, private=True,
       invokers=(TASKS,), timeout=540, concurrency=10, max_instances=10, needs=("bot-plugin",)),
    # the VMs' progress and heartbeats (one per bot per HEALTH_HEARTBEAT_S: most cost no Firestore operation)
    Fn("provisioningEvents", "functions/provisioning_events.py", env={**DEPLOY, **NOTIFY}, private=True,
       invokers=(EVENTS,), topic="provisioning-events", max_instances=20),
    Fn("pluginConfigs", "functions/plugin_configs.py", env=DEPLOY),
    Fn("skillConfigs", "functions/skill_configs.py", env=DEPLOY),
    Fn("apiKeys", "functions/api_keys.py", env=DEPLOY),
    # backups: the owner's snapshots and restores; POST / is the scheduled cleanup (snapshot deletes wait)
    Fn("backups", "functions/backups.py", timeout=300, max_instances=10,
       env={**DEPLOY, "BACKUP_SCHEDULER_SA": SCHEDULER + SA, "BACKUP_CLEANUP_URL": f"{URL}/backups"}),
    # bot health (scheduled every minute: overdue bots only), notifications and webhooks, the audit log
    Fn("healthCheck", "functions/health_check.py", timeout=240, concurrency=1, max_instances=1,
       env={**DEPLOY, **NOTIFY, "HEALTH_SCHEDULER_SA": SCHEDULER + SA, "HEALTH_CHECK_URL": f"{URL}/healthCheck"}),
    Fn("notifications", "functions/notifications.py", env=NOTIFY),
    Fn("webhookWorker", "functions/webhook_worker.py", env=NOTIFY, private=True, invokers=(TASKS,),
       timeout=60, concurrency=20, max_instances=20),
    Fn("auditLog", "functions/audit_log.py"),
]

# Cloud Scheduler jobs: (job, target function, cron, attempt deadline). The attempt deadline
# outlasts the target's timeout, so the scheduler never retries a run that is still going.
SCHEDULES = [
    ("pullCosts-every-6h", "pullCosts", "0 */6 * * *", "300s"),
    ("pullOpenrouterActivity-every-6h", "pullOpenrouterActivity", "0 */6 * * *", "300s"),
    ("billing-reconcile", "billingReconcile", "17 */6 * * *", "600s"),
    ("health-check", "healthCheck", "* * * * *", "270s"),
    ("backups-cleanup", "backups", "41 * * * *", "360s"),
]
