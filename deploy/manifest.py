"""The deploy manifest, written once: `python -m deploy.manifest > cloudbuild.yaml`.

cloudbuild.yaml is what deploys (`make deploy` runs its steps, Cloud Build can too) and what
`make deploy-check` runs locally; this module only writes it, so each function's settings,
secrets and sizing are declared in one table instead of twenty copies of a long command line.
tests/test_manifest.py fails when the committed cloudbuild.yaml differs from this output.
The shell behind each step is deploy/steps.sh.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field

URL = "https://${_REGION}-${PROJECT_ID}.cloudfunctions.net"  # a gen2 function's URL and its OIDC audience
SA = "@${PROJECT_ID}.iam.gserviceaccount.com"

# Service accounts (ids; created by the `identities` step). One runtime identity for the functions;
# the three callers (Cloud Scheduler, Cloud Tasks, Eventarc) each have their own. Each bot's VM runs as
# an account of its own, made per deployment by deployWorker (shared/deploy/identity.py), not here.
RUNTIME, SCHEDULER, TASKS, EVENTS = "oc-functions", "oc-scheduler", "oc-tasks", "oc-events"

SUBSTITUTIONS = {
    "_REGION": "us-central1",
    "_DEPLOY_PROJECTS": "",  # projects the bots' VMs go into (comma list); empty: this project
    "_FIRESTORE_LOCATION": "",  # empty: the region (fixed once the database exists)
    "_MEDIA_BUCKET": "",  # empty: <project>-media
    "_CORS_ORIGINS": "https://app.example.com",
    "_APP_URL": "https://app.example.com",
    "_MEDIA_DRIVE_BACKUP": "off",
    "_ARTIFACTS_BUCKET": "",  # empty: <project>-artifacts (the bot plugin the VMs install)
    "_ADMIN_EMAILS": "",  # comma list: verified e-mails that are admins (the first admins); `|`-free
    "_SOURCE_HASH": "",  # set by `make deploy`: unchanged functions are not redeployed
    "_BOT_PLUGIN_SHA256": "",  # set by `make deploy`: sha256 of `npm pack` of bot/ (deploy/run.py)
    "_AUDIT_RETENTION_DAYS": "365",  # audit log entries expire after this (TTL policy on auditLog.expireAt)
}

CORE = {"GOOGLE_CLOUD_PROJECT": "${PROJECT_ID}", "APP_ENV": "production", "CORS_ORIGINS": "${_CORS_ORIGINS}",
        "ADMIN_EMAILS": "${_ADMIN_EMAILS}",
        "AUDIT_RETENTION_DAYS": "${_AUDIT_RETENTION_DAYS}"}  # every router writes the audit log (shared/audit.py)
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

IMAGE = "gcr.io/google.com/cloudsdktool/cloud-sdk:slim"
STEP_ENV = ["PROJECT_ID=${PROJECT_ID}", "REGION=${_REGION}", "DEPLOY_PROJECTS=${_DEPLOY_PROJECTS}",
            "FIRESTORE_LOCATION=${_FIRESTORE_LOCATION}", "MEDIA_BUCKET=${_MEDIA_BUCKET}",
            "CORS_ORIGINS=${_CORS_ORIGINS}", "SOURCE_HASH=${_SOURCE_HASH}",
            "ARTIFACTS_BUCKET=${_ARTIFACTS_BUCKET}", "BOT_PLUGIN_SHA256=${_BOT_PLUGIN_SHA256}"]


def fn_args(f: Fn) -> list[str]:
    """The `gcloud functions deploy` arguments of one function (after its name)."""
    # FUNCTION_TIMEOUT_S: the function's own deadline, so its requests can end inside it (shared/faults.py)
    env = {**CORE, "FUNCTION_TIMEOUT_S": str(f.timeout), **f.env}
    args = ["--gen2", "--runtime=python312", "--region=${_REGION}", "--source=.", f"--entry-point={f.name}",
            f"--set-build-env-vars=GOOGLE_FUNCTION_SOURCE={f.source}",
            f"--service-account={RUNTIME}{SA}",
            f"--memory={f.memory}", f"--cpu={f.cpu}", f"--timeout={f.timeout}s",
            f"--concurrency={f.concurrency}", f"--max-instances={f.max_instances}", "--min-instances=0"]
    if f.topic:
        args += [f"--trigger-topic={f.topic}", f"--trigger-service-account={EVENTS}{SA}", "--retry"]
    else:
        args.append("--trigger-http")
    args.append("--no-allow-unauthenticated" if f.private else "--allow-unauthenticated")
    # ^|^ makes | the list separator: values may contain commas (CORS origins, project lists)
    args.append("--set-env-vars=^|^" + "|".join(f"{k}={v}" for k, v in env.items()))
    if f.secrets:
        args.append("--set-secrets=" + ",".join(f"{k}={v}:latest" for k, v in f.secrets.items()))
    else:
        args.append("--clear-secrets")
    return args


def step(id_: str, args: list[str], wait: list[str], image: str = IMAGE, entrypoint: str = "bash") -> dict:
    return {"id": id_, "name": image, "entrypoint": entrypoint, "args": args, "env": STEP_ENV, "waitFor": wait}


def build() -> dict:
    foundation = ["identities", "firestore", "secrets", "media-bucket", "topic", *(f"queue-{q}" for q in QUEUES)]
    steps = [
        step("apis", ["deploy/steps.sh", "apis"], ["-"]),
        step("identities", ["deploy/steps.sh", "identities"], ["apis"]),
        step("firestore", ["deploy/steps.sh", "firestore"], ["apis"]),
        step("secrets", ["deploy/steps.sh", "secrets"], ["identities"]),
        step("media-bucket", ["deploy/steps.sh", "media_bucket"], ["identities"]),
        step("vm-network", ["deploy/steps.sh", "vm_network"], ["identities"]),
        # the bot plugin: packed where npm is (a node image), then checked, uploaded and shared with the bots
        step("bot-plugin-pack", ["deploy/steps.sh", "bot_plugin_pack"], ["-"], "node:20"),
        step("bot-plugin", ["deploy/steps.sh", "bot_plugin"], ["identities", "bot-plugin-pack"]),
        step("topic", ["deploy/steps.sh", "topic"], ["identities"]),
        *(step(f"queue-{q}", ["deploy/steps.sh", "queue", q, *(f"--{k}={v}" for k, v in flags.items())], ["apis"])
          for q, flags in QUEUES.items()),
        step("indexes-and-rules", ["--yes", "firebase-tools@15.34.2", "deploy", "--only",
                                   "firestore:indexes,firestore:rules", "--project=${PROJECT_ID}",
                                   "--non-interactive", "--force"], ["firestore"], "node:20", "npx"),
    ]
    for f in FUNCTIONS:
        steps.append(step(f"fn-{f.name}", ["deploy/steps.sh", "function", f.name, *fn_args(f)],
                          [*foundation, *f.needs]))
    for f in FUNCTIONS:
        for who in f.invokers:
            steps.append(step(f"invoker-{f.name}", ["deploy/steps.sh", "invoker", f.name, who + SA], [f"fn-{f.name}"]))
    for job, target, cron, deadline in SCHEDULES:
        steps.append(step(f"schedule-{job}", ["deploy/steps.sh", "schedule", job, f"{URL}/{target}", cron, deadline,
                                              SCHEDULER + SA], [f"fn-{target}"]))
    steps.append(step("summary", ["deploy/steps.sh", "summary"], [s["id"] for s in steps]))
    return {"substitutions": SUBSTITUTIONS, "options": {"logging": "CLOUD_LOGGING_ONLY", "dynamicSubstitutions": True},
            "timeout": "3600s", "steps": steps}


HEADER = """\
# GENERATED by `python -m deploy.manifest > cloudbuild.yaml` (deploy/manifest.py): edit that, not this.
# Creates or updates everything the backend needs in one Google Cloud project, idempotently:
# APIs, service accounts and their IAM, Firestore, secrets, the media bucket, Cloud NAT for the bots'
# VMs, the bot plugin, queues, topic, every function, invoker bindings, scheduler jobs, Firestore
# indexes and rules.
# Run it with `make deploy PROJECT=<id> REGION=<region>` (docs/DEPLOYING.md); `make deploy-check` runs
# it against a local control plane and the emulators.
"""


def render() -> str:
    import yaml  # here: undeploy.sh reads FUNCTIONS with a plain python3

    class Dumper(yaml.SafeDumper):
        def ignore_aliases(self, data):  # every step spelled out, no &anchors
            return True

    return HEADER + yaml.dump(build(), Dumper=Dumper, sort_keys=False, width=10_000, default_flow_style=False)


if __name__ == "__main__":
    sys.stdout.write(render())
