"""Deploy jobs with a timeout injected into each call of every stand-in a deploy touches (Secret
Manager and Compute Engine): the job completes once the fault clears, or fails with the reason
once its attempts are spent; it is never left running. The worker's call timeout is 2 s and a
job has 3 attempts (tests/deploy_support.py)."""
from __future__ import annotations

import pytest
from test_deploy_faults import assert_unlocked, vm_count
from test_deployments_api import create

# every stand-in call a first deploy makes, in order
DEPLOY_CALLS = [
    ("secrets", "secrets.access"),  # is there a bot credential already?
    ("secrets", "secrets.create"),
    ("secrets", "secrets.addVersion"),
    ("compute", "instances.insert"),
    ("compute", "zoneOperations.wait"),
    ("compute", "instances.get"),
]


@pytest.mark.parametrize("standin,op", DEPLOY_CALLS, ids=[op for _, op in DEPLOY_CALLS])
def test_a_timeout_anywhere_in_a_deploy_is_retried_until_it_completes(api, callers, denv, standin, op):
    getattr(denv, standin).fault(op, "hang", delay=3.0)  # past the 2 s call timeout, once
    dep, job = create(api, callers["owner"])
    done = denv.wait_job(job["_id"])
    assert done.status == "completed", done.log
    assert "will retry" in done.log or getattr(denv, standin).calls()[op] >= 2, done.log  # retried (queue or call)
    assert "internal error" not in done.log
    assert vm_count(denv, dep) == 1
    assert_unlocked(dep["_id"])


def test_secret_manager_hanging_for_good_fails_the_job_with_the_reason(api, callers, denv):
    from shared import repos

    denv.secrets.fault("secrets.access", "hang", delay=3.0, times=50)
    dep, job = create(api, callers["owner"])
    done = denv.wait_job(job["_id"], timeout=90)
    assert done.status == "failed", done.log
    assert done.log.count("will retry") == 2, done.log
    assert "(attempts spent)" in done.log and "Read timed out" in done.log  # the reason, and what was asked:
    assert f"secrets/oc-{dep['_id']}-" in done.log and ":access]" in done.log  # the secret's access call
    assert "internal error" not in done.log
    assert repos.deployments.get(dep["_id"]).status == "error" and vm_count(denv, dep) == 0
    assert_unlocked(dep["_id"])
    denv.secrets.clear()
    r = api("POST", f"/deployments/{dep['_id']}/actions", callers["owner"], json={"action": "deploy"})
    assert r.status_code == 202  # the owner can try again, and it works now
    assert denv.wait_job(r.json["job"]["_id"]).status == "completed"


def test_secret_manager_error_answers_are_transient_too(api, callers, denv):
    denv.secrets.fault("secrets.addVersion", "error", status=503)
    dep, job = create(api, callers["owner"])
    done = denv.wait_job(job["_id"])
    assert done.status == "completed", done.log
    assert "will retry" in done.log


def test_delete_with_secret_manager_hanging_is_retried(api, callers, denv):
    dep, job = create(api, callers["owner"])
    assert denv.wait_job(job["_id"]).status == "completed"
    denv.secrets.fault("secrets.delete", "hang", delay=3.0)
    r = api("POST", f"/deployments/{dep['_id']}/actions", callers["owner"], json={"action": "delete"})
    assert r.status_code == 202, r.json
    done = denv.wait_job(r.json["job"]["_id"])
    assert done.status == "completed", done.log
    assert vm_count(denv, dep) == 0


def test_classification_is_one_rule():
    """The errors the issue names, as each client library raises them, are transient; a 4xx is not."""
    import httpx
    import requests
    import stripe
    from google.api_core import exceptions as gexc

    from shared import errors, faults

    transient = [requests.exceptions.ReadTimeout("read timed out"), requests.exceptions.ConnectionError("refused"),
                 httpx.ReadTimeout("t"), httpx.ConnectError("c"), gexc.ServiceUnavailable("x"),
                 gexc.DeadlineExceeded("x"), gexc.TooManyRequests("x"), gexc.RetryError("gave up", None),
                 stripe.APIConnectionError("down"), stripe.RateLimitError("slow"), TimeoutError(),
                 ConnectionResetError(), faults.BudgetExhausted("Firestore"), errors.Unavailable("x", "y"),
                 errors.UpstreamFailed("x", "y"), errors.Contention("contention", "a transaction lost to others")]
    permanent = [gexc.NotFound("x"), gexc.PermissionDenied("x"), gexc.InvalidArgument("x"),
                 stripe.InvalidRequestError("bad", "param"), ValueError("x"), KeyError("x"), errors.NotFound("x", "y"),
                 errors.Conflict("plan_limit", "y"), errors.Invalid("x", "y"), errors.RateLimited("x", "y")]
    for exc in transient:
        assert faults.is_transient(exc), exc
    for exc in permanent:
        assert not faults.is_transient(exc), exc
    try:  # a library wrapping a timeout in its own error: the cause decides
        try:
            raise requests.exceptions.ReadTimeout("inner")
        except requests.exceptions.ReadTimeout as inner:
            raise RuntimeError("wrapped") from inner
    except RuntimeError as outer:
        assert faults.is_transient(outer)


def test_firestore_paused_during_a_worker_delivery_is_503_then_the_job_runs(api, callers, denv, stack, monkeypatch):
    """The worker's own Firestore calls (claiming the job) bounded by its deadline: the delivery
    answers 503 (the queue comes back) inside it, and the next delivery runs the job."""
    import time

    import httpx
    from deploy_support import QUEUE, pending_job
    from test_faults_firestore import firestore_paused

    from shared import config, repos

    dep, job = pending_job(callers["owner"].user_id, "pausedfs000000000001", "oc-paused-fs-pausedfs000000000001")
    monkeypatch.setenv("FUNCTION_TIMEOUT_S", "4")
    config.reset()
    headers = {"X-CloudTasks-QueueName": QUEUE, "X-CloudTasks-TaskName": "paused", "Content-Type": "application/json"}
    try:
        with firestore_paused(stack):
            started = time.monotonic()
            r = httpx.post(f"{denv.base_url}/deployWorker", json={"jobId": job.id}, headers=headers, timeout=30)
            took = time.monotonic() - started
        assert r.status_code == 503 and r.headers["Retry-After"] and took < 4, (r.status_code, took, r.text[:300])
        # the next deliveries, once Firestore answers again. If the paused delivery's claim was committed
        # after all (the emulator applies it on resume), its lease stands: deliveries answer 503 (busy)
        # until it expires, then one takes the job over, as Cloud Tasks' retries would
        from shared.deploy import settings as deploy_settings

        until = time.monotonic() + deploy_settings.get().lease_ms / 1000 + 20
        while time.monotonic() < until:
            r = httpx.post(f"{denv.base_url}/deployWorker", json={"jobId": job.id}, headers=headers, timeout=30)
            if r.status_code == 200:
                break
            time.sleep(0.5)
        assert r.status_code == 200 and r.json()["outcome"] == "completed", r.text
    finally:
        monkeypatch.undo()
        config.reset()
    assert repos.deploy_jobs.get(job.id).status == "completed"
    assert_unlocked(dep.id)
