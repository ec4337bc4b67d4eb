"""Compute Engine through google-cloud-compute (REST transport): instance calls with a
`requestId` (so a repeated call is not acted on twice), waiting on zone operations, and
errors sorted into transient (retry the task) and permanent (fail the job)."""
from __future__ import annotations

import re
import time
from functools import lru_cache

from google.api_core import exceptions as gexc

from shared import faults
from shared.deploy import settings


class ComputeError(Exception):
    def __init__(self, message: str, transient: bool, status: int | None = None):
        super().__init__(message)
        self.transient = transient
        self.status = status


def _client_kwargs() -> dict:
    from google.api_core.client_options import ClientOptions

    endpoint = settings.get().compute_endpoint
    if not endpoint:
        return {"transport": "rest"}
    from google.auth.credentials import AnonymousCredentials

    return {"transport": "rest", "credentials": AnonymousCredentials(),
            "client_options": ClientOptions(api_endpoint=endpoint)}


@lru_cache(maxsize=1)
def instances():
    from google.cloud import compute_v1

    return compute_v1.InstancesClient(**_client_kwargs())


@lru_cache(maxsize=1)
def operations():
    from google.cloud import compute_v1

    return compute_v1.ZoneOperationsClient(**_client_kwargs())


_URL_PREFIX = re.compile(r"^[A-Z]+ https?://\S+: ")  # the REST transport prefixes messages with the request


def _reason(exc: gexc.GoogleAPICallError) -> str:
    return _URL_PREFIX.sub("", exc.message or str(exc))


_TRANSIENT = (gexc.ServiceUnavailable, gexc.InternalServerError, gexc.TooManyRequests, gexc.GatewayTimeout,
              gexc.DeadlineExceeded, gexc.BadGateway)


def call(what: str, fn, **kwargs):
    """Run one client call with our timeout and no hidden retries; errors become ComputeError."""
    import requests

    try:
        timeout = faults.timeout(settings.get().call_timeout_s, what)
        return fn(**kwargs, timeout=timeout, retry=None)
    except faults.BudgetExhausted as exc:
        raise ComputeError(f"{what}: {exc}", True) from None
    except _TRANSIENT as exc:
        raise ComputeError(f"{what}: Compute Engine unavailable ({exc.code} {_reason(exc)})", True, exc.code) from None
    except gexc.GoogleAPICallError as exc:
        raise ComputeError(f"{what}: {_reason(exc)}", False, exc.code) from None
    except requests.exceptions.Timeout:
        raise ComputeError(f"{what}: no answer from Compute Engine within "
                           f"{timeout:g}s", True) from None
    except requests.exceptions.RequestException as exc:
        raise ComputeError(f"{what}: could not reach Compute Engine ({type(exc).__name__})", True) from None


def wait(what: str, op, project: str, zone: str):
    """Wait for a zone operation to finish; an operation error is permanent, running out of time transient
    (the same requestId finds the same operation on the next attempt)."""
    deadline = time.monotonic() + settings.get().op_timeout_s
    while op.status.name != "DONE":
        if time.monotonic() >= deadline:
            raise ComputeError(f"{what}: operation {op.name} not done after {settings.get().op_timeout_s}s", True)
        op = call(f"{what} (waiting)", operations().wait, project=project, zone=zone, operation=op.name)
    if op.error and op.error.errors:
        reasons = "; ".join(f"{e.code}: {e.message}" for e in op.error.errors)
        raise ComputeError(f"{what} failed: {reasons}", False, op.http_error_status_code or None)
    return op


def get_instance(project: str, zone: str, name: str):
    """The instance, or None when it does not exist."""
    try:
        return call("get VM", instances().get, project=project, zone=zone, instance=name)
    except ComputeError as exc:
        if exc.status == 404:
            return None
        raise
