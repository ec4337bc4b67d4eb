"""A deploy job's state changes, each one Firestore transaction over the job, the deployment's
lock (shared/deploy/jobs.py) and the deployment: claim (pending/released -> running with a
lease), log lines, release (back to the queue), finish (completed/failed, lock freed,
deployment status or removal)."""
from __future__ import annotations

from dataclasses import dataclass

from shared import clock, db, repos
from shared.deploy import joblog, settings
from shared.deploy.jobs import ACTIVE, FREE, lock_ref
from shared.models import DeployJob


@dataclass
class Claim:
    job: DeployJob | None
    attempt: int = 0
    skip: str | None = None
    busy: bool = False  # another delivery holds the job: ask the queue to come back (takes over if it died)


@dataclass(frozen=True)
class Decision:
    """What a delivery does with a job, from the job's status and the deployment's lock alone."""
    attempt: int = 0  # run it, as this attempt (0: do not run it)
    skip: str | None = None  # why it is not run
    busy: bool = False  # another delivery holds a live lease: the queue should come back
    fail: str | None = None  # the job is failed now, with this log line
    free_lock: bool = False  # and the deployment's lock is freed


def decide(job_id: str, status: str, lock: dict, now: int, max_attempts: int) -> Decision:
    """Only an active job that is still the lock's may run; a live lease means another delivery
    runs it; a lease that expired (its delivery died) is taken over, up to `max_attempts`."""
    if status not in ACTIVE:
        return Decision(skip=f"job already {status}")
    if lock.get("jobId") != job_id:
        return Decision(skip="not the active job", fail="this job is no longer the deployment's active job; nothing done")
    if status == "running" and lock.get("leaseUntil", 0) > now:
        return Decision(skip="another delivery is running this job", busy=True)
    attempt = lock.get("attempt", 0) + 1
    if attempt > max_attempts:
        return Decision(skip="attempts exhausted", fail=f"gave up after {max_attempts} interrupted attempts",
                        free_lock=True)
    return Decision(attempt=attempt)


@db.transactional
def claim(tx, job_id: str) -> Claim:
    job = repos.deploy_jobs.get(job_id, tx)
    if job is None:
        return Claim(None, skip="unknown job")
    snap = lock_ref(job.deploymentId).get(transaction=tx)
    lock = snap.to_dict() if snap.exists else {}
    now, s = clock.now_ms(), settings.get()
    d = decide(job.id, job.status, lock, now, s.max_attempts)
    if d.fail:
        repos.deploy_jobs.update(job.id, {"status": "failed", "completedAt": now,
                                          "log": joblog.append(job.log, d.fail)}, tx)
    if d.free_lock:
        tx.update(snap.reference, FREE)
    if d.skip:
        return Claim(job, skip=d.skip, busy=d.busy)
    attempt = d.attempt
    note = "worker started" if attempt == 1 else f"attempt {attempt}: taking the job over"
    fields = {"status": "running", "log": joblog.append(job.log, note)}
    if job.startedAt is None:
        fields["startedAt"] = now
    repos.deploy_jobs.update(job.id, fields, tx)
    tx.update(snap.reference, {"attempt": attempt, "leaseUntil": now + s.lease_ms})
    return Claim(job.model_copy(update=fields), attempt)


@db.transactional
def append(tx, job_id: str, text: str) -> None:
    job = repos.deploy_jobs.get(job_id, tx)
    if job is not None:
        repos.deploy_jobs.update(job_id, {"log": joblog.append(job.log, text)}, tx)


@db.transactional
def release(tx, job_id: str, text: str) -> None:
    """Hand the job back to the queue: still running, lease dropped so the retry may take it."""
    job = repos.deploy_jobs.get(job_id, tx)
    if job is None:  # its document was deleted meanwhile: nothing left to hand back
        return
    snap = lock_ref(job.deploymentId).get(transaction=tx)
    repos.deploy_jobs.update(job_id, {"log": joblog.append(job.log, text)}, tx)
    if snap.exists and snap.get("jobId") == job_id:
        tx.update(snap.reference, {"leaseUntil": 0, "releasedAt": clock.now_ms()})


@db.transactional
def finish(tx, job_id: str, status: str, texts: list[str], dep_status: str | None, remove: bool) -> None:
    job = repos.deploy_jobs.get(job_id, tx)
    if job is None:  # its document was deleted meanwhile (by hand): no verdict to record
        return
    snap = lock_ref(job.deploymentId).get(transaction=tx)
    dep = repos.deployments.get(job.deploymentId, tx)
    children = []
    if remove and dep is not None:
        for repo in (repos.plugin_configs, repos.skill_configs, repos.api_keys):
            children += [(repo, c.id) for c in repo.all({"deploymentId": dep.id}, cap=200, tx=tx)]
    if status == "failed" and job.status == "running" and dep is not None and job.action in ("deploy", "update"):
        _notify_failed(tx, dep, job, texts)  # reads in the transaction: before its writes
    now = clock.now_ms()
    if job.status != "running":  # given up on meanwhile (stale): keep that verdict, record what happened
        repos.deploy_jobs.update(job_id, {"log": joblog.append(job.log, *texts, f"(worker ended: {status})")}, tx)
        return
    repos.deploy_jobs.update(job_id, {"status": status, "completedAt": now,
                                      "log": joblog.append(job.log, *texts)}, tx)
    if snap.exists and dep is None:
        tx.delete(snap.reference)
        return
    if dep is None:
        return
    if snap.exists and snap.get("jobId") == job_id:
        tx.delete(snap.reference) if remove else tx.update(snap.reference, FREE)
    if remove:
        for repo, doc_id in children:
            repo.delete(doc_id, tx)
        repos.deployments.delete(dep.id, tx)
    elif dep_status == "provisioning" and dep.status in ("running", "error"):
        return  # the VM already reported ready (or failed) over Pub/Sub while the job was finishing
    elif dep_status and dep_status != dep.status:
        repos.deployments.update(dep.id, {"status": dep_status}, tx)


def _notify_failed(tx, dep, job: DeployJob, texts: list[str]) -> None:
    """The owner hears of a failed deploy or update (once per job: the VM's own failure report uses the same key)."""
    from shared.notifications import notify

    notify(dep.userId, "deploy.failed", title=f"{dep.botName}: {job.action} failed",
           body=(texts[-1] if texts else "the job failed")[:500],
           data={"deploymentId": dep.id, "jobId": job.id, "action": job.action},
           dedupe_key=f"{job.id}/failed", transaction=tx)
