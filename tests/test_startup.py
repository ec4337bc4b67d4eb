"""Production settings are checked when a function starts (shared/startup.py): each function,
loaded as Cloud Functions loads it (functions-framework, a fresh process), starts with its
complete production environment, and refuses to start (exit status 1, one stderr line naming the
variable) when any variable it needs is missing or malformed. No emulator and no network.

One process per function: the module is loaded again in it for each broken environment."""
import json
import os
import subprocess
import sys

import pytest

from devtools.stack import ROOT
from functions import FUNCTIONS

PROJECT = "my-proj"
URL = f"https://us-central1-{PROJECT}.cloudfunctions.net"
SA = f"@{PROJECT}.iam.gserviceaccount.com"
# every variable production requires, a valid value, and a malformed one (None: any value will do)
VALUES = {
    "GOOGLE_CLOUD_PROJECT": (PROJECT, None),
    "DEPLOY_WORKER_URL": (f"{URL}/deployWorker", "http://127.0.0.1:8080/deployWorker"),
    "TASKS_INVOKER_SA": ("tasks-invoker" + SA, "tasks-invoker@example.com"),
    "DEPLOY_ALLOWED_PROJECTS": ("acme-bots,acme-bots-2", "Acme_Bots"),
    "DEPLOY_ALLOWED_REGIONS": ("us-central1,europe-west1", "us-central1-a"),
    "PROVISIONING_TOPIC": (f"projects/{PROJECT}/topics/provisioning-events", "provisioning-events"),
    "FUNCTIONS_URL": (URL, "us-central1-my-proj.cloudfunctions.net"),
    "BOT_PLUGIN_URL": (f"gs://{PROJECT}-artifacts/bot-plugin/{'ab' * 32}.tgz", "https://example.com/plugin.tgz"),
    "BOT_PLUGIN_SHA256": ("ab" * 32, "AB" * 32),
    "COSTS_QUEUE": ("cost-pulls", None),
    "TASKS_LOCATION": ("us-central1", "central"),
    "COSTS_WORKER_URL": (f"{URL}/costPullWorker", "http://127.0.0.1/costPullWorker"),
    "COSTS_SCHEDULER_SA": ("scheduler" + SA, "scheduler@gmail.com"),
    "COSTS_SCHEDULER_AUDIENCE": (f"{URL}/pullCosts", "pullCosts"),
    "OPENROUTER_MANAGEMENT_KEY": ("sk-or-v1-mgmt", None),
    "OPENAI_ADMIN_KEY": ("sk-admin-key", None),
    "STRIPE_SECRET_KEY": ("sk_live_key", "pk_live_key"),
    "APP_URL": ("https://app.example.com", "http://localhost:3000"),
    "STRIPE_WEBHOOK_SECRET": ("whsec_secret", "sk_live_key"),
    "BILLING_SCHEDULER_SA": ("scheduler" + SA, "scheduler"),
    "BILLING_RECONCILE_URL": (f"{URL}/billingReconcile", "http://x/billingReconcile"),
    "STRIPE_EVENTS_QUEUE": ("stripe-events", None),
    "STRIPE_EVENT_WORKER_URL": (f"{URL}/stripeEventWorker", "http://127.0.0.1/stripeEventWorker"),
    "OPENAI_API_KEY": ("sk-proj-key", None),
    "MEDIA_BUCKET": (f"{PROJECT}-media", None),
    "WEBHOOKS_WORKER_URL": (f"{URL}/webhookWorker", "http://127.0.0.1/webhookWorker"),
    "HEALTH_SCHEDULER_SA": ("scheduler" + SA, "scheduler@example.com"),
    "HEALTH_CHECK_URL": (f"{URL}/healthCheck", "healthCheck"),
    "BACKUP_SCHEDULER_SA": ("scheduler" + SA, "scheduler"),
    "BACKUP_CLEANUP_URL": (f"{URL}/backups", "http://x/backups"),
    "KNOWLEDGE_REEMBED_WORKER_URL": (f"{URL}/knowledgeReembedWorker", "http://x/knowledgeReembedWorker"),
}
DEPLOY = ("DEPLOY_WORKER_URL", "TASKS_INVOKER_SA", "DEPLOY_ALLOWED_PROJECTS",
          "DEPLOY_ALLOWED_REGIONS", "PROVISIONING_TOPIC")
SCHEDULED = ("COSTS_QUEUE", "TASKS_LOCATION", "COSTS_WORKER_URL", "TASKS_INVOKER_SA", "COSTS_SCHEDULER_SA",
             "COSTS_SCHEDULER_AUDIENCE")
# what each function needs in production besides GOOGLE_CLOUD_PROJECT (the deploy manifest's list)
NEEDS = {
    "users": (), "cmsPages": (), "navLinks": (), "pricingPlans": (), "costs": DEPLOY,
    "pullCosts": SCHEDULED, "pullOpenrouterActivity": SCHEDULED,
    "costPullWorker": ("TASKS_INVOKER_SA", "COSTS_WORKER_URL", "OPENROUTER_MANAGEMENT_KEY", "OPENAI_ADMIN_KEY",
                       *DEPLOY[:1], *DEPLOY[2:]),
    "billing": ("STRIPE_SECRET_KEY", "APP_URL"),
    # a downgrade stops the bots beyond the plan's limit (the worker applies events): deploy jobs
    # (shared/plan_limits.py)
    "stripeWebhook": ("STRIPE_WEBHOOK_SECRET", "STRIPE_EVENTS_QUEUE", "TASKS_LOCATION", "STRIPE_EVENT_WORKER_URL",
                      "TASKS_INVOKER_SA"),
    "stripeEventWorker": ("STRIPE_SECRET_KEY", "TASKS_INVOKER_SA", "STRIPE_EVENT_WORKER_URL", *DEPLOY),
    "billingReconcile": ("STRIPE_SECRET_KEY", "BILLING_SCHEDULER_SA", "BILLING_RECONCILE_URL", *DEPLOY),
    "knowledge": ("OPENAI_API_KEY", "KNOWLEDGE_REEMBED_WORKER_URL", "TASKS_INVOKER_SA"),
    "knowledgeReembedWorker": ("OPENAI_API_KEY", "KNOWLEDGE_REEMBED_WORKER_URL", "TASKS_INVOKER_SA"),
    "media": ("MEDIA_BUCKET", "FUNCTIONS_URL"),
    "deployments": DEPLOY, "deployWorker": (*DEPLOY, "FUNCTIONS_URL", "BOT_PLUGIN_URL", "BOT_PLUGIN_SHA256"),
    "provisioningEvents": DEPLOY,
    "pluginConfigs": DEPLOY, "skillConfigs": DEPLOY, "apiKeys": DEPLOY,
    "healthCheck": (*DEPLOY, "HEALTH_SCHEDULER_SA", "HEALTH_CHECK_URL", "WEBHOOKS_WORKER_URL"),
    "notifications": (), "webhookWorker": ("WEBHOOKS_WORKER_URL", "TASKS_INVOKER_SA"), "auditLog": (),
    "backups": (*DEPLOY, "BACKUP_SCHEDULER_SA", "BACKUP_CLEANUP_URL"),
}

# In the function's process: load it with each environment; print what each load did.
PROBE = """
import contextlib, io, json, os, sys
import functions_framework

target, source, cases = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
base = dict(os.environ)
results = []
for label, env in cases:
    os.environ.clear()
    os.environ.update({k: v for k, v in {**base, **env}.items() if v is not None})
    err = io.StringIO()
    code = 0
    with contextlib.redirect_stderr(err):
        try:
            functions_framework.create_app(target=target, source=source)
        except SystemExit as exc:
            code = exc.code
    results.append([label, code, err.getvalue()])
print(json.dumps(results))
"""


def cases(name: str) -> list:
    full = {n: VALUES[n][0] for n in ("GOOGLE_CLOUD_PROJECT", *NEEDS[name])}
    out = [("complete", {**full, "APP_ENV": "production"}),
           ("deploy-check with emulators", {**full, "APP_ENV": "deploy-check",
                                            "FIRESTORE_EMULATOR_HOST": "127.0.0.1:8081"}),
           ("local, nothing set", {**{n: None for n in full}, "APP_ENV": "local"}),
           ("emulator in production", {**full, "APP_ENV": "production", "FIRESTORE_EMULATOR_HOST": "127.0.0.1:8081"})]
    if name == "media":  # fetching from URLs: loopback targets are for the local stack only
        for app_env in ("production", "deploy-check"):
            out.append((f"{app_env}: local-only OUTBOUND_ALLOW_LOOPBACK",
                        {**full, "APP_ENV": app_env, "OUTBOUND_ALLOW_LOOPBACK": "on"}))
    for var in full:
        out.append((f"missing {var}", {**full, "APP_ENV": "production", var: None}))
        out.append((f"blank {var}", {**full, "APP_ENV": "deploy-check", var: "  "}))
        bad = VALUES[var][1]
        if bad is not None:
            out.append((f"malformed {var}", {**full, "APP_ENV": "production", var: bad}))
    return out


@pytest.mark.parametrize("name,src", [(f.name, f.source) for f in FUNCTIONS])
def test_function_starts_only_with_its_production_settings(name, src):
    # a clean environment: none of the variables the test session or the shell may have set
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR", "SYSTEMROOT")}
    out = subprocess.run([sys.executable, "-c", PROBE, name, str(ROOT / src), json.dumps(cases(name))],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    results = {label: (code, err) for label, code, err in json.loads(out.stdout.strip().splitlines()[-1])}
    for label in ("complete", "deploy-check with emulators", "local, nothing set"):
        assert results.pop(label) == (0, ""), label
    code, err = results.pop("emulator in production")
    assert code == 1 and "FIRESTORE_EMULATOR_HOST" in err
    for label, (code, err) in results.items():
        var = label.split()[-1]
        lines = err.splitlines()
        assert code == 1 and len(lines) == 1, f"{name}, {label}: exit {code}, stderr {err!r}"
        assert lines[0].startswith("startup refused: ") and var in lines[0], f"{name}, {label}: {lines[0]}"
        assert "_key" not in lines[0] and "whsec_secret" not in lines[0], f"{name}: a secret in {lines[0]}"


def test_every_function_is_listed():
    assert set(NEEDS) == {f.name for f in FUNCTIONS}


def test_a_refused_start_exits_the_process():
    """As functions-framework loads it (SystemExit is not caught): status 1, one line on stderr."""
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR", "SYSTEMROOT")}
    env.update({n: VALUES[n][0] for n in ("GOOGLE_CLOUD_PROJECT", *NEEDS["deployWorker"])}, APP_ENV="production")
    del env["DEPLOY_ALLOWED_PROJECTS"]
    probe = ("import functions_framework; functions_framework.create_app(target='deployWorker', "
             "source='functions/deploy_worker.py'); print('started')")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    assert (out.returncode, out.stdout) == (1, "")
    assert out.stderr == "startup refused: missing environment variable DEPLOY_ALLOWED_PROJECTS\n"
