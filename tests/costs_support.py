"""Fixtures of the costs tests: the provider stand-in, the Cloud Tasks stand-in, and the
function app served on a real 127.0.0.1 port so tasks reach the worker over HTTP."""
from __future__ import annotations

import os
import time

import httpx
import pytest

QUEUE = "cost-pulls"


class Providers:
    def __init__(self, url: str):
        self.url = url

    def reset(self) -> None:
        httpx.post(f"{self.url}/_control/reset").raise_for_status()

    def set(self, **state) -> None:
        httpx.put(f"{self.url}/_control/state", json=state).raise_for_status()

    def stats(self) -> dict:
        return httpx.get(f"{self.url}/_control/stats").json()


@pytest.fixture(scope="session")
def costs_env(stack, live_url):
    """Starts the stand-ins once; points the costs settings at them with short timeouts."""
    from shared import config
    from shared.costs import settings

    url = stack.providers()
    stack.tasks([QUEUE], max_retries=3)
    stack.apply_env()
    os.environ.update({
        "COSTS_WORKER_URL": f"{live_url}/costPullWorker", "COSTS_QUEUE": QUEUE,
        "COSTS_BATCH_SIZE": "3", "COSTS_CONCURRENCY": "8", "COSTS_TIMEOUT_MS": "300",
        "COSTS_ATTEMPTS": "3", "COSTS_BACKOFF_MS": "10", "COSTS_BACKOFF_MAX_MS": "50",
        "COSTS_BATCH_ATTEMPTS": "4",  # the stand-in queue delivers a task 1 + max_retries times
    })
    config.reset()
    settings.reset()
    from shared import tasks

    tasks.client.cache_clear()
    yield Providers(url)


@pytest.fixture
def providers(costs_env, clean_firestore):
    costs_env.reset()
    return costs_env


def wait_run(run_id: str, timeout: float = 30) -> dict:
    from shared.costs import runs
    from shared.costs.ledger import runs as runs_repo

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        report = runs.report(runs_repo.require(run_id))
        if report["finished"]:
            return report
        time.sleep(0.1)
    raise AssertionError(f"run {run_id} not finished after {timeout}s: {report}")
