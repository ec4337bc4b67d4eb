"""Deploy jobs under faults: Compute failing mid-way, erroring operations, hangs, duplicate task
deliveries, concurrent clicks, a deployment deleted mid-job, the queue down. Each ends with no
duplicate VM, no job left running, and a log that says what happened."""
from __future__ import annotations

import threading
import time

import httpx
from deploy_support import QUEUE, pending_job, reset_settings
from test_deployments_api import NEW, create

ZONE = "acme-bots/us-central1-a"


def vm_count(denv, dep) -> int:
    return sum(1 for k in denv.compute.state()["instances"] if k == f"{ZONE}/{dep['vmName']}")


def assert_unlocked(dep_id):
    from shared.deploy.jobs import lock_ref

    snap = lock_ref(dep_id).get()
    assert not snap.exists or snap.get("jobId") is None


def test_insert_fails_after_taking_effect_retry_makes_no_second_vm(api, callers, denv):
    before = denv.compute.state()["inserts"]
    denv.compute.fault("instances.insert", "after", status=503, message="backend gone mid-call")
    dep, job = create(api, callers["owner"])
    done = denv.wait_job(job["_id"])
    assert done.status == "completed", done.log
    assert "attempt 1 failed: create VM: Compute Engine unavailable (503 backend gone mid-call); will retry" in done.log
    assert "attempt 2: taking the job over" in done.log
    assert denv.compute.state()["inserts"] == before + 1 and vm_count(denv, dep) == 1
    assert denv.compute.calls()["instances.insert"] >= 2  # called again, answered with the first operation
    assert_unlocked(dep["_id"])


def test_operation_error_fails_job_and_marks_deployment_error(api, callers, denv):
    from shared import repos

    denv.compute.fault("instances.insert", "op_error", message="The zone does not have enough resources")
    dep, job = create(api, callers["owner"])
    done = denv.wait_job(job["_id"])
    assert done.status == "failed" and done.completedAt
    assert "create VM failed: ZONE_RESOURCE_POOL_EXHAUSTED: The zone does not have enough resources" in done.log
    assert repos.deployments.get(dep["_id"]).status == "error" and vm_count(denv, dep) == 0
    assert_unlocked(dep["_id"])
    r = api("POST", f"/deployments/{dep['_id']}/actions", callers["owner"], json={"action": "deploy"})
    assert r.status_code == 202  # the user can try again
    assert denv.wait_job(r.json["job"]["_id"]).status == "completed"


def test_hung_call_times_out_and_is_retried(api, callers, denv):
    denv.compute.fault("instances.insert", "hang", delay=3.0)  # the worker's call timeout is 2 s
    denv.compute.fault("zoneOperations.wait", "slow", delay=0.3)
    dep, job = create(api, callers["owner"])
    done = denv.wait_job(job["_id"])
    assert done.status == "completed", done.log
    assert "no answer from Compute Engine within 2s; will retry" in done.log
    assert vm_count(denv, dep) == 1


def test_persistent_outage_fails_after_max_attempts(api, callers, denv):
    from shared import repos

    denv.compute.fault("instances.insert", "error", status=503, times=10)
    dep, job = create(api, callers["owner"])
    done = denv.wait_job(job["_id"])
    assert done.status == "failed", done.log
    assert done.log.count("will retry") == 2 and "failed: create VM: Compute Engine unavailable (503" in done.log
    assert repos.deployments.get(dep["_id"]).status == "error"
    assert_unlocked(dep["_id"])


def test_task_delivered_twice(api, callers, denv):
    from shared import repos, tasks
    from shared.deploy import settings

    inserts = denv.compute.calls().get("instances.insert", 0)
    denv.compute.fault("instances.insert", "slow", delay=1.0)
    dep, job = create(api, callers["owner"])
    denv.wait_job(job["_id"], done=("running",))
    # two more deliveries while the first runs: both step aside
    headers = {"X-CloudTasks-QueueName": QUEUE, "X-CloudTasks-TaskName": "dup", "Content-Type": "application/json"}
    outcomes = []

    def deliver():
        r = httpx.post(f"{denv.base_url}/deployWorker", json={"jobId": job["_id"]}, headers=headers, timeout=30)
        outcomes.append((r.status_code, r.json()["error"]["code"], r.json()["error"]["details"]["outcome"]))
    threads = [threading.Thread(target=deliver) for _ in range(2)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert outcomes == [(503, "retry_later", "another delivery is running this job")] * 2  # come back later
    done = denv.wait_job(job["_id"])
    assert done.status == "completed"
    # the same task again after it finished (the stand-in does not de-duplicate names): a no-op
    tasks.enqueue(QUEUE, settings.get().worker_url, {"jobId": job["_id"]}, name=tasks.task_id("deployJob", job["_id"]))
    r = httpx.post(f"{denv.base_url}/deployWorker", json={"jobId": job["_id"]}, headers=headers)
    assert r.json()["outcome"] == "job already completed"
    time.sleep(0.5)
    def worker_lines(log):  # the VM's own events keep arriving over Pub/Sub; the worker added nothing
        return [line for line in log.splitlines() if " vm: " not in line]
    assert worker_lines(repos.deploy_jobs.get(job["_id"]).log) == worker_lines(done.log)
    assert vm_count(denv, dep) == 1
    assert denv.compute.calls()["instances.insert"] == inserts + 1  # only the first delivery inserted


def test_two_users_click_at_once_one_job(api, callers, denv):
    from shared import repos
    from shared.deploy import jobs

    dep, job = create(api, callers["owner"])
    denv.wait_job(job["_id"])
    url = f"{denv.base_url}/deployments/{dep['_id']}/actions"
    for action in ("reset", "stop", "start", "reset"):
        if action == "start":
            jobs.lock_ref(dep["_id"]).delete()  # as for a deployment imported without a lock document
        results, barrier = [], threading.Barrier(2)
        denv.compute.fault(f"instances.{action}", "slow", delay=1.0)  # the first job is still running

        def click(caller, barrier=barrier, results=results, action=action):
            barrier.wait()
            results.append(httpx.post(url, json={"action": action}, timeout=30,
                                      headers={"Authorization": f"Bearer {caller.token}"}))
        threads = [threading.Thread(target=click, args=(callers[n],)) for n in ("owner", "admin")]
        [t.start() for t in threads]
        [t.join() for t in threads]
        codes = sorted(r.status_code for r in results)
        assert codes == [202, 409], [r.text for r in results]
        accepted = next(r for r in results if r.status_code == 202).json()["job"]
        refused = next(r for r in results if r.status_code == 409).json()["error"]
        assert refused["code"] == "job_active" and refused["details"]["job"]["_id"] == accepted["_id"]
        assert denv.wait_job(accepted["_id"]).status == "completed"
    jobs = repos.deploy_jobs.all({"deploymentId": dep["_id"]})
    assert len(jobs) == 5 and all(j.status == "completed" for j in jobs)


def test_deployment_deleted_while_job_runs(api, callers, denv):
    from shared import repos

    denv.compute.fault("instances.insert", "slow", delay=1.0)
    dep, job = create(api, callers["owner"])
    denv.wait_job(job["_id"], done=("running",))
    r = api("POST", f"/deployments/{dep['_id']}/actions", callers["owner"], json={"action": "delete"})
    assert r.status_code == 409  # one job at a time, delete included
    repos.deployments.delete(dep["_id"])  # removed by other means (e.g. account deletion)
    done = denv.wait_job(job["_id"])
    assert done.status == "failed"
    assert "the deployment was deleted while the job ran; the VM it created was deleted again" in done.log
    assert vm_count(denv, dep) == 0
    assert_unlocked(dep["_id"])


def test_queue_unavailable_fails_job_at_once(api, callers, denv):
    from shared import repos

    reset_settings(DEPLOY_QUEUE="no-such-queue")
    r = api("POST", "/deployments", callers["owner"], json=NEW)
    assert r.status_code == 503 and r.json["error"]["code"] == "queue_unavailable"
    dep = repos.deployments.all({"userId": callers["owner"].user_id}, (("createdAt", "DESCENDING"),))[0]
    job = repos.deploy_jobs.first(deploymentId=dep.id)
    assert job.status == "failed" and "could not queue the job" in job.log and dep.status == "error"
    assert_unlocked(dep.id)


def test_stale_jobs_are_given_up_not_left_active(api, callers, denv):
    from shared import repos
    from shared.deploy import jobs

    dep, job = create(api, callers["owner"])
    denv.wait_job(job["_id"])
    # a job whose task was never created (crash between the transaction and the enqueue)
    lost = jobs._action_job(dep["_id"], "stop", callers["owner"].user_id)
    r = api("POST", f"/deployments/{dep['_id']}/actions", callers["owner"], json={"action": "stop"})
    assert r.status_code == 409
    jobs.lock_ref(dep["_id"]).update({"requestedAt": 1})
    r = api("POST", f"/deployments/{dep['_id']}/actions", callers["owner"], json={"action": "stop"})
    assert r.status_code == 202
    old = repos.deploy_jobs.get(lost.id)
    assert old.status == "failed" and "no worker picked this job up" in old.log
    assert denv.wait_job(r.json["job"]["_id"]).status == "completed"
    # a running job whose worker died: its lease runs out
    lost = jobs._action_job(dep["_id"], "start", callers["owner"].user_id)
    repos.deploy_jobs.update(lost.id, {"status": "running"})
    jobs.lock_ref(dep["_id"]).update({"leaseUntil": 5})
    r = api("POST", f"/deployments/{dep['_id']}/actions", callers["owner"], json={"action": "start"})
    assert r.status_code == 202
    assert "lease ran out" in repos.deploy_jobs.get(lost.id).log
    assert denv.wait_job(r.json["job"]["_id"]).status == "completed"


def test_worker_accepts_only_cloud_tasks(api, callers, denv, monkeypatch):
    from devtools.server import json_app, serving
    from devtools.standins.google_tokens import GoogleKey, strip_signature

    dep, job = create(api, callers["owner"])
    denv.wait_job(job["_id"])
    body = {"jobId": job["_id"]}
    assert api("POST", "/deployWorker", json=body).status_code == 403
    assert api("POST", "/deployWorker", json=body, headers={"X-CloudTasks-QueueName": "other",
                                                             "X-CloudTasks-TaskName": "t"}).status_code == 403
    headers = {"X-CloudTasks-QueueName": QUEUE, "X-CloudTasks-TaskName": "t"}
    assert api("POST", "/deployWorker", json={"jobId": "../x"}, headers=headers).status_code == 422
    # under production rules (deploy-check: production's checks, local endpoints) the task's OIDC token
    # for the worker's own URL and the invoker account is required
    invoker = "invoker@demo-openclaw.iam.gserviceaccount.com"
    url = "https://us-central1-demo-openclaw.cloudfunctions.net/deployWorker"
    key = GoogleKey.generate()
    with serving(json_app(key.jwks())) as certs:
        try:
            for name, value in {"APP_ENV": "deploy-check", "TASKS_INVOKER_SA": invoker, "DEPLOY_WORKER_URL": url,
                                "DEPLOY_ALLOWED_PROJECTS": "acme-bots", "DEPLOY_ALLOWED_REGIONS": "us-central1",
                                "GOOGLE_CERTS_URL": certs}.items():
                monkeypatch.setenv(name, value)
            reset_settings()

            def call(token: str | None):
                auth = {"Authorization": f"Bearer {token}"} if token else {}
                return api("POST", "/deployWorker", json=body, headers={**headers, **auth})
            assert call(None).status_code == 401
            r = call("not-a-jwt")
            assert r.status_code == 401 and "invalid OIDC token" in r.json["error"]["message"]
            token = key.token(audience=url, email=invoker)
            for accepted in (strip_signature(token), token):  # as Google's front passes it; or still signed
                r = call(accepted)
                assert r.status_code == 200 and r.json["jobId"] == job["_id"], r.json
            assert call(strip_signature(key.token(audience=url, email="x@demo-openclaw.iam.gserviceaccount.com"))
                        ).status_code == 403
            assert call(strip_signature(key.token(audience=f"{denv.base_url}/deployWorker", email=invoker))
                        ).status_code == 401
            assert call(GoogleKey.generate().token(audience=url, email=invoker)).status_code == 401  # forged
        finally:
            monkeypatch.undo()
            reset_settings()


def test_deploy_again_adopts_the_existing_vm(api, callers, denv):
    dep, job = create(api, callers["owner"])
    denv.wait_job(job["_id"])
    inserts = denv.compute.state()["inserts"]
    r = api("POST", f"/deployments/{dep['_id']}/actions", callers["owner"], json={"action": "deploy"})
    done = denv.wait_job(r.json["job"]["_id"])
    assert done.status == "completed" and "already exists (RUNNING); not creating another" in done.log
    assert denv.compute.state()["inserts"] == inserts and vm_count(denv, dep) == 1


def test_job_document_deleted_mid_run_ends_the_task_cleanly(api, callers, denv):
    """A job removed by hand while its worker runs: the worker answers 200 (no 500 retried by
    the queue), and the deployment still takes the next action."""
    from shared import repos

    dep, job = pending_job(callers["owner"].user_id, "gonejob0000000000001", "oc-gone-job-gonejob0000000000001")
    denv.compute.fault("instances.insert", "slow", delay=1.0)
    headers = {"X-CloudTasks-QueueName": QUEUE, "X-CloudTasks-TaskName": "gone", "Content-Type": "application/json"}
    answers = []
    worker = threading.Thread(target=lambda: answers.append(
        httpx.post(f"{denv.base_url}/deployWorker", json={"jobId": job.id}, headers=headers, timeout=30)))
    worker.start()
    denv.wait_job(job.id, done=("running",))
    repos.deploy_jobs.delete(job.id)
    worker.join()
    assert answers[0].status_code == 200 and answers[0].json() == {"jobId": job.id, "outcome": "completed"}
    r = api("POST", f"/deployments/{dep.id}/actions", callers["owner"], json={"action": "stop"})
    assert r.status_code == 202, r.json
    assert denv.wait_job(r.json["job"]["_id"]).status == "completed"
