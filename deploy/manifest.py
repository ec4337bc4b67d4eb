"""The deploy manifest, written once: `python -m deploy.manifest > cloudbuild.yaml`.

cloudbuild.yaml is what deploys (`make deploy` runs its steps, Cloud Build can too) and what
`make deploy-check` runs locally; this module only writes it, from the function table (functions/__init__.py:
each function's settings, secrets and sizing, declared once instead of twenty copies of a long command line).
tests/test_manifest.py fails when the committed cloudbuild.yaml differs from this output.
The shell behind each step is deploy/steps.sh.
"""
from __future__ import annotations

import sys

from functions import (  # noqa: F401  (re-exported: deploy/undeploy.sh and the tests read them here)
    BOT_PLUGIN,
    COST_PULLS,
    DEPLOY,
    EVENTS,
    FUNCTIONS,
    NOTIFY,
    QUEUES,
    REEMBED,
    RUNTIME,
    SA,
    SCHEDULER,
    SCHEDULES,
    TASKS,
    URL,
    Fn,
)

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
