"""Starting a pull run: claim it once per (kind, schedule time), then fan out one
Cloud Tasks task per batch of users to the worker (shared/costs/worker.py).

Cloud Scheduler delivers at least once, so the claim is a transaction on
costRuns/{runId}. While one delivery fans out, others get 409 (the scheduler
retries). A fan-out that fails releases its claim; one that died silently is
taken over after the lease. Workers skip batches already done, so a second
fan-out never counts twice.
"""
from __future__ import annotations

import contextvars
import hashlib
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import cast

from google.api_core import exceptions as gexc

from shared import clock, logs, repos, tasks
from shared.config import ConfigError
from shared.costs import settings
from shared.costs.ledger import CostRun, Kind, Trigger, batches, runs
from shared.db import transactional
from shared.errors import Conflict
from shared.queries import ASC

log = logs.get("costs.runs")


def run_id(kind: str, schedule_ms: int) -> str:
    return hashlib.sha256(f"{kind}/{schedule_ms}".encode()).hexdigest()[:32]


def claim(kind: Kind, schedule_ms: int, trigger: str, requested_by: str | None) -> tuple[CostRun, bool]:
    """(run, True) when this call owns the fan-out; (existing run, False) otherwise."""
    rid = run_id(kind, schedule_ms)
    lease = settings.get().claim_lease_ms

    def fresh(now: int, created: int) -> CostRun:
        return CostRun(_id=rid, kind=kind, scheduleTime=schedule_ms, trigger=cast(Trigger, trigger),
                       requestedBy=requested_by,
                       status="claimed", claimedUntil=now + lease, createdAt=created)

    # The first delivery: create() is the atomic check. (A transaction reading an absent document
    # makes concurrent deliveries wait on each other until they time out.)
    now = clock.now_ms()
    try:
        return runs.create(fresh(now, now)), True
    except gexc.AlreadyExists:
        pass

    @transactional
    def _take_over(tx):
        now = clock.now_ms()
        run = runs.get(rid, tx)
        if run is not None and (run.status == "dispatched" or run.claimedUntil > now):
            return run, False
        run = runs.set(fresh(now, run.createdAt if run else now), tx)
        return run, True

    return _take_over()


FIELDS = ["userId", "status", "createdAt", "gcpProject"]  # what the GCP estimate needs of a deployment


def users_with_deployments() -> Iterator[tuple[str, list[dict]]]:
    """Every user with a deployment, with what the GCP estimate needs of each deployment, in userId
    order as the query streams (a user's deployments are adjacent)."""
    q = repos.deployments.query({}, (("userId", ASC),)).select(FIELDS)
    current: str | None = None
    deps: list[dict] = []
    for snap in q.stream():
        d = snap.to_dict() or {}
        if d["userId"] != current:
            if current is not None:
                yield current, deps
            current, deps = d["userId"], []
        deps.append({"id": snap.id, "status": d["status"], "createdAt": d["createdAt"],
                     "gcpProject": d.get("gcpProject", "")})
    if current is not None:
        yield current, deps


def start(kind: Kind, schedule_ms: int, trigger: str, requested_by: str | None = None) -> tuple[dict, bool]:
    cfg = settings.get()
    if not cfg.worker_url:
        raise ConfigError("COSTS_WORKER_URL is not set: the pull has nowhere to send its tasks")
    run, owned = claim(kind, schedule_ms, trigger, requested_by)
    if not owned:
        if run.status == "claimed":  # another delivery is fanning out: 409 makes the scheduler retry later
            raise Conflict("run_in_progress", "this run is being dispatched", report(run))
        return report(run), False
    try:
        return _dispatch(run, kind, schedule_ms, cfg), True
    except Exception:
        runs.update(run.id, {"claimedUntil": 0})  # release: the retry of this delivery takes over at once
        raise


def _dispatch(run: CostRun, kind: Kind, schedule_ms: int, cfg) -> dict:
    """Each batch's task is created as soon as its users are read (the first tasks run while the
    rest are read); batches are runs of COSTS_BATCH_SIZE users in userId order, so a re-dispatch
    names the same tasks for the same users."""

    def send(index: int, chunk: list[dict]) -> None:
        payload = {"runId": run.id, "kind": kind, "batch": index, "scheduleTime": schedule_ms, "users": chunk}
        tasks.enqueue(cfg.queue, cfg.worker_url, payload, name=tasks.task_id(run.id, str(index)))

    users, chunk = 0, []
    futures: list[Future] = []
    with ThreadPoolExecutor(max_workers=8) as pool:  # each in a copy of this context: the request's budget
        for uid, deps in users_with_deployments():
            chunk.append({"userId": uid, "deployments": deps})
            users += 1
            if len(chunk) == cfg.batch_size:
                futures.append(pool.submit(contextvars.copy_context().run, send, len(futures), chunk))
                chunk = []
        if chunk:
            futures.append(pool.submit(contextvars.copy_context().run, send, len(futures), chunk))
        for f in futures:
            f.result()  # re-raises the first enqueue error
    runs.update(run.id, {"status": "dispatched", "users": users, "batches": len(futures),
                         "dispatchedAt": clock.now_ms()})
    log.info("cost run dispatched", extra={"runId": run.id, "kind": kind, "users": users, "batches": len(futures)})
    return report(runs.require(run.id))


def report(run: CostRun) -> dict:
    """The run and the sum of its finished batches: ok / failed / skipped counts."""
    done = batches.all({"runId": run.id}, cap=10_000)
    totals = {k: sum(getattr(b, k) for b in done) for k in ("ok", "failed", "skipped", "writes", "providerCalls")}
    failures = [f for b in sorted(done, key=lambda b: b.batch) for f in b.failures][:50]
    finished = run.status == "dispatched" and len(done) >= run.batches
    return {**run.to_api(), "runId": run.id, "batchesDone": len(done), "finished": finished, **totals,
            "failures": failures}
