"""Deploy jobs: one `deployJobs` document per action, at most one pending/running per deployment.

The per-deployment lock lives in the internal `deploymentLocks` collection (document id =
deployment id): {jobId, action, requestedAt, attempt, leaseUntil}. Taking it, and creating the
job, happen in one transaction, so two clicks at once make one job and one 409. The Cloud Tasks
task is created after the transaction, named by hashing the job id (so enqueueing twice is one
task); if that fails the job is failed at once rather than left pending.
"""
from __future__ import annotations

import secrets as pysecrets
from collections.abc import Callable
from typing import cast

from google.api_core import exceptions as gexc
from google.cloud import firestore

from shared import clock, db, logs, repos, tasks
from shared.deploy import joblog, settings
from shared.errors import Conflict, NotFound, Unavailable
from shared.models import DeployJob, Deployment, JobAction

log = logs.get("deploy.jobs")
LOCKS = "deploymentLocks"
ACTIVE = ("pending", "running")
_MAX_MS = 10**13 - 1


def lock_ref(deployment_id: str) -> firestore.DocumentReference:
    return db.client().collection(LOCKS).document(deployment_id)


FREE = {"jobId": None, "leaseUntil": 0}  # a freed lock stays as a document: transactions conflict on
# an existing document reliably, while two that both saw it absent could both write it


def new_job_id(now: int) -> str:
    """Ids sort newest first (Firestore orders by id), so "latest job" is the first by id."""
    return f"{_MAX_MS - now:013d}{pysecrets.token_hex(4)}"


def stale_reason(job: DeployJob, lock: dict, now: int) -> str | None:
    """Why an active job can be given up on: never picked up, or its worker stopped answering."""
    s = settings.get()
    if job.status == "pending" and now - lock.get("requestedAt", now) > s.stale_pending_ms:
        return f"no worker picked this job up within {s.stale_pending_ms // 1000}s; marked failed"
    if job.status == "running" and 0 < lock.get("leaseUntil", 0) < now:
        return "the worker stopped answering (its lease ran out); marked failed"
    if job.status == "running" and lock.get("leaseUntil", 0) == 0 and \
            now - lock.get("releasedAt", now) > s.stale_pending_ms:
        return "the retry of this job never came; marked failed"
    return None


def _open_job(tx, dep: Deployment, action: str, requested_by: str, is_new: bool) -> DeployJob:
    """Reads the lock (409 when a job is active), then writes the new job and the lock."""
    now = clock.now_ms()
    ref = lock_ref(dep.id)
    snap = ref.get(transaction=tx) if not is_new else None
    lock = (snap.to_dict() if snap is not None and snap.exists else None) or {}
    current = repos.deploy_jobs.get(lock["jobId"], tx) if lock.get("jobId") else None
    if current is not None and current.status in ACTIVE:
        reason = stale_reason(current, lock, now)
        if reason is None:
            raise Conflict("job_active", f"deployment already has a {current.status} {current.action} job",
                           {"job": current.to_api()})
        repos.deploy_jobs.update(current.id, {"status": "failed", "completedAt": now,
                                              "log": joblog.append(current.log, reason)}, tx)
    by = "" if requested_by == dep.userId else f" (by {requested_by})"
    job = DeployJob(_id=new_job_id(now), userId=dep.userId, deploymentId=dep.id, action=cast(JobAction, action),
                    status="pending",
                    log=joblog.line(f"{action} requested{by}; queued"))
    repos.deploy_jobs.create(job, tx)
    # lastJobId outlives the job (FREE keeps it): the VM's reports find the newest job without a query
    fields = {"jobId": job.id, "lastJobId": job.id, "action": action, "requestedAt": now, "attempt": 0,
              "leaseUntil": 0}
    if snap is not None and snap.exists:
        tx.set(ref, fields)
    else:
        tx.create(ref, fields)  # fails at commit if a concurrent request created it first
    return job


# A guard (shared/plan_limits.py) checks a plan limit inside the transaction: guard(tx, dep) does its
# reads (raising to refuse) and returns its writes, applied after the job's (a transaction reads first).
Guard = Callable[[object, Deployment], Callable | None]


@db.transactional
def _create_with_job(tx, dep: Deployment, requested_by: str, guard: Guard | None = None) -> DeployJob:
    writes = guard(tx, dep) if guard else None
    repos.deployments.create(dep, tx)
    job = _open_job(tx, dep, "deploy", requested_by, is_new=True)
    if writes:
        writes(tx)
    return job


@db.transactional
def _action_job(tx, deployment_id: str, action: str, requested_by: str, guard: Guard | None = None) -> DeployJob:
    dep = repos.deployments.get(deployment_id, tx)
    if dep is None:
        raise NotFound("not_found", f"deployment {deployment_id!r} not found")
    writes = guard(tx, dep) if guard else None
    job = _open_job(tx, dep, action, requested_by, is_new=False)
    if writes:
        writes(tx)
    return job


@db.transactional
def fail_unqueued(tx, job_id: str, reason: str) -> None:
    """The task could not be created: fail the job and free the deployment."""
    job = repos.deploy_jobs.get(job_id, tx)
    snap = lock_ref(job.deploymentId).get(transaction=tx) if job else None
    dep = repos.deployments.get(job.deploymentId, tx) if job else None
    if job is None or job.status not in ACTIVE:
        return
    now = clock.now_ms()
    repos.deploy_jobs.update(job_id, {"status": "failed", "completedAt": now,
                                      "log": joblog.append(job.log, reason)}, tx)
    if snap is not None and snap.exists and snap.get("jobId") == job_id:
        tx.update(snap.reference, FREE)
    if dep is not None and job.action == "deploy" and dep.status == "provisioning":
        repos.deployments.update(dep.id, {"status": "error"}, tx)


def enqueue(job: DeployJob) -> None:
    s = settings.get()
    try:
        tasks.enqueue(s.queue, s.worker_url, {"jobId": job.id}, name=tasks.task_id("deployJob", job.id))
    except Exception as exc:  # any failure to queue must not leave the job pending
        log.error("could not queue deploy job", extra={"jobId": job.id, "error": repr(exc)})
        fail_unqueued(job.id, f"could not queue the job: {type(exc).__name__}; nothing was done")
        raise Unavailable("queue_unavailable", "the job queue is unavailable; try again") from None


def create_deployment(dep: Deployment, requested_by: str, guard: Guard | None = None) -> DeployJob:
    job = _create_with_job(dep, requested_by, guard)
    enqueue(job)
    log.info("deployment created", extra={"deploymentId": dep.id, "jobId": job.id})
    return job


def request_action(deployment_id: str, action: str, requested_by: str, guard: Guard | None = None) -> DeployJob:
    try:
        job = _action_job(deployment_id, action, requested_by, guard)
    except gexc.Conflict:  # lost the race to create the lock: the rerun sees the winner's job (409)
        job = _action_job(deployment_id, action, requested_by, guard)
    enqueue(job)
    log.info("deploy action queued", extra={"deploymentId": deployment_id, "jobId": job.id, "action": action})
    return job
