"""Cloud Tasks: enqueue an HTTP task for one of our functions.

Locally CLOUD_TASKS_EMULATOR_HOST points the real client at the stand-in over
an insecure gRPC channel. In production each task carries an OIDC token for
the target URL, signed for TASKS_INVOKER_SA.
"""
from __future__ import annotations

import hashlib
import json
from functools import lru_cache

from google.api_core import exceptions as gexc

from shared import config, faults

CALL_TIMEOUT_S = 10.0


def emulator_client(host: str):
    """A CloudTasksClient on an insecure channel to the local stand-in at host:port."""
    import grpc
    from google.cloud import tasks_v2
    from google.cloud.tasks_v2.services.cloud_tasks.transports import (
        CloudTasksGrpcTransport,
    )

    return tasks_v2.CloudTasksClient(transport=CloudTasksGrpcTransport(channel=grpc.insecure_channel(host)))


@lru_cache(maxsize=1)
def client():
    from google.cloud import tasks_v2

    host = config.env("CLOUD_TASKS_EMULATOR_HOST")
    return emulator_client(host) if host else tasks_v2.CloudTasksClient()


def queue_path(queue: str) -> str:
    cfg = config.get()
    location = config.env("TASKS_LOCATION", "us-central1")
    return f"projects/{cfg.project}/locations/{location}/queues/{queue}"


def task_id(*parts: str) -> str:
    """A task name derived by hashing, so the same work always gets the same name (Cloud Tasks
    de-duplicates names; hashing also spreads them, which the service recommends)."""
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:32]


def enqueue(queue: str, url: str | None, payload: dict, name: str | None = None, delay_s: float = 0) -> str | None:
    """Create the task (dispatched `delay_s` from now); returns its name, or None when a task of that
    name already exists."""
    from google.cloud import tasks_v2

    request = tasks_v2.HttpRequest(
        http_method=tasks_v2.HttpMethod.POST, url=url,
        headers={"Content-Type": "application/json"}, body=json.dumps(payload).encode(),
    )
    invoker = config.env("TASKS_INVOKER_SA")
    if invoker:
        request.oidc_token = tasks_v2.OidcToken(service_account_email=invoker, audience=url)
    task = tasks_v2.Task(http_request=request)
    if delay_s > 0:
        from datetime import datetime, timedelta, timezone

        task.schedule_time = datetime.now(timezone.utc) + timedelta(seconds=delay_s)
    parent = queue_path(queue)
    if name:
        task.name = f"{parent}/tasks/{name}"
    try:
        # a named task is idempotent (a repeat is AlreadyExists), so it may be retried
        return client().create_task(parent=parent, task=task,
                                    timeout=faults.timeout(CALL_TIMEOUT_S, "Cloud Tasks"),
                                    retry=faults.retry(CALL_TIMEOUT_S) if name else None).name
    except gexc.AlreadyExists:
        return None
