"""Fixtures of the deployments tests: the Cloud Tasks and Pub/Sub stand-ins, the local Compute
Engine and Secret Manager servers, and the one-port app served on a real port (the queue and
the push subscription deliver to it over HTTP, as in production)."""
from __future__ import annotations

import os
import threading
import time

import httpx
import pytest
from werkzeug.serving import make_server

from devtools.stack import PROJECT_ID, free_port

QUEUE = "deploy-jobs"
TOPIC = "provisioning-events"
IAM_QUOTA = 100  # service accounts per project, as on Google by default


class Standin:
    """Drives a local REST stand-in: faults, state, call counts."""

    def __init__(self, url: str):
        self.url = url

    def fault(self, match: str, mode: str, **kw) -> None:
        httpx.post(f"{self.url}/_faults", json={"match": match, "mode": mode, **kw}).raise_for_status()

    def clear(self) -> None:
        httpx.delete(f"{self.url}/_faults").raise_for_status()

    def state(self) -> dict:
        return httpx.get(f"{self.url}/_state").json()

    def calls(self) -> dict:
        return httpx.get(f"{self.url}/_calls").json()


class DeployEnv:
    def __init__(self, stack, base_url: str):
        self.stack = stack
        self.base_url = base_url
        self.compute = Standin(stack.env["COMPUTE_API_ENDPOINT"])
        self.secrets = Standin(stack.env["SECRET_MANAGER_API_ENDPOINT"])
        self.iam = Standin(stack.env["IAM_API_ENDPOINT"])

    def vm_token(self, dep: dict) -> str:
        """An access token of the service account VM `dep` runs as (its metadata server's answer)."""
        r = httpx.get(f"{self.compute.url}/_metadata/{dep['gcpProject']}/{dep['zone']}/{dep['vmName']}/token")
        r.raise_for_status()
        return r.json()["access_token"]

    def read_as_vm(self, dep: dict, secret_id: str):
        """What VM `dep` gets reading secret `secret_id` with its own identity: the value, or the
        HTTP status of the refusal (the call `gcloud secrets versions access` makes)."""
        import base64

        r = httpx.get(f"{self.secrets.url}/v1/projects/{PROJECT_ID}/secrets/{secret_id}/versions/latest:access",
                      headers={"Authorization": f"Bearer {self.vm_token(dep)}"})
        if r.status_code != 200:
            return r.status_code
        return base64.b64decode(r.json()["payload"]["data"]).decode()

    def wait_job(self, job_id: str, timeout: float = 60, done=("completed", "failed")):
        """A bound on a hang, not a speed test: on a loaded 2-core CI machine a deploy job took > 20 s."""
        from shared import repos

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = repos.deploy_jobs.get(job_id)
            if job is not None and job.status in done:
                return job
            time.sleep(0.05)
        raise AssertionError(f"job {job_id} not {done} after {timeout}s: {repos.deploy_jobs.get(job_id)}")

    def wait_for(self, predicate, timeout: float = 30, what: str = "condition"):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"{what} not met after {timeout}s")


def _settings_env(base_url: str) -> dict[str, str]:
    return {
        "DEPLOY_WORKER_URL": f"{base_url}/deployWorker",
        "FUNCTIONS_URL": base_url,
        "DEPLOY_QUEUE": QUEUE,
        "PROVISIONING_TOPIC": f"projects/{PROJECT_ID}/topics/{TOPIC}",
        "DEPLOY_CALL_TIMEOUT_S": "2",
        "DEPLOY_OPERATION_TIMEOUT_S": "5",
        "DEPLOY_MAX_ATTEMPTS": "3",
    }


def pending_job(owner: str, dep_id: str, vm_name: str):
    """A deployment with a deploy job pending and holding its lock, written directly (as if queued and
    not yet delivered): for tests that deliver the task themselves. Returns (deployment, job)."""
    from shared import clock, repos
    from shared.deploy import jobs
    from shared.models import DeployJob, Deployment

    now = clock.now_ms()
    dep = Deployment(_id=dep_id, userId=owner, gcpProject="acme-bots", zone="us-central1-a", vmName=vm_name,
                     status="provisioning", botName="B", primaryModel="m", createdAt=now)
    job = DeployJob(_id=jobs.new_job_id(now), userId=owner, deploymentId=dep.id, action="deploy", status="pending")
    repos.deployments.set(dep)
    repos.deploy_jobs.set(job)
    jobs.lock_ref(dep.id).set({"jobId": job.id, "action": "deploy", "requestedAt": now, "attempt": 0,
                               "leaseUntil": 0})
    return dep, job


def reset_settings(**overrides: str) -> None:
    from shared import config
    from shared.deploy import settings

    os.environ.update(overrides)
    config.reset()
    settings.reset()


@pytest.fixture(scope="session")
def deploy_env(stack):
    stack.pubsub()
    stack.tasks([QUEUE], max_retries=3)
    stack.secrets()
    stack.iam(quota=IAM_QUOTA)
    stack.compute(op_latency=0.05, guest_events=True)
    stack.apply_env()
    from devtools.server import build_app

    port = free_port()
    server = make_server("127.0.0.1", port, build_app(), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{port}"
    env = _settings_env(base)
    reset_settings(**env)
    from google.cloud import pubsub_v1

    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    topic = publisher.topic_path(PROJECT_ID, TOPIC)
    publisher.create_topic(name=topic)
    subscriber.create_subscription(name=subscriber.subscription_path(PROJECT_ID, "provisioning-push"), topic=topic,
                                   push_config={"push_endpoint": f"{base}/provisioningEvents"})
    yield DeployEnv(stack, base)
    server.shutdown()
    for key in env:
        os.environ.pop(key, None)


@pytest.fixture
def denv(deploy_env, callers):
    """Per test: no faults left over, the owner subscribed (trialing)."""
    from shared import clock, repos
    from shared.models import Subscription

    deploy_env.compute.clear()
    deploy_env.secrets.clear()
    now = clock.now_ms()
    repos.subscriptions.set(Subscription(_id="sub-owner", userId=callers["owner"].user_id, status="trialing",
                                         trialEnd=now + 86400_000, createdAt=now, updatedAt=now))
    yield deploy_env
    reset_settings(**_settings_env(deploy_env.base_url))
