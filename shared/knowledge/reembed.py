"""Re-embedding every chunk when the embedding model or dimension changes (admin job, Cloud Tasks).

    admin POST /knowledge/reembed  -> knowledgeModel/current: target = the configured (model, dimensions)
                                      in the slot search does not read; reembedRuns/{runId}; task "users" page 0
    task users page n  -> one task per user of the page (users by createdAt), the page counted once
                          (reembedPages/{run}_{n}), the task of page n+1; the last page marks pagesDone
    task user (round, cursor) -> KNOWLEDGE_REEMBED_BATCH chunks after `cursor` (by id): the ones whose
                          target slot does not hold the target version are embedded and written; next task;
                          after the last batch: every chunk holds it (two counts)? switch the user
                          (knowledgeSpaces/{userId}, one write), else another round from the start
    the last user switched -> knowledgeModel/current: active = target, target = none; run completed

- Once: a second start while a run is going answers that run; after it, nothing differs from the
  configuration, so there is nothing to do. Each user's position is `reembedProgress/{run}_{user}`
  {round, cursor}: a batch records its new position, then queues the task of that position; a task
  whose position is behind is a duplicate and does nothing (but queues the recorded position's task
  again if its queueing failed), one ahead waits (503).
- Resumable: a batch takes a lease on the user's progress; a delivery that dies mid-batch is retried
  by the queue after the lease, reads the same batch again and embeds only the chunks not yet written
  (their version tag), so nothing is embedded twice and nothing is skipped.
- Never mixed: search reads one slot with its own model (shared/knowledge/space.py); a user is switched
  only when all their chunks hold the target version; ingest writes both versions meanwhile. The run
  switches nobody during its first KNOWLEDGE_REEMBED_SETTLE_S (an ingest started before the run
  writes the old version only, and ends within the functions' 60 s timeout).
"""
from __future__ import annotations

import contextvars
import secrets as pysecrets
from concurrent.futures import ThreadPoolExecutor

from google.api_core import exceptions as gexc
from google.cloud import firestore

from shared import clock, config, db, embeddings, logs, repos, tasks
from shared.errors import NotFound
from shared.knowledge import settings, store, vectors
from shared.knowledge.space import LEGACY, Space, holds, installation, model_ref, other_slot, space_ref

log = logs.get("knowledge.reembed")
RUNS, PROGRESS, PAGES = "reembedRuns", "reembedProgress", "reembedPages"
USERS_PAGE = 100


class Retry(Exception):
    """Come back later (the queue redelivers): settling, another delivery holds the batch, or a
    predecessor has not recorded its batch yet."""


def _col(name: str):
    return db.client().collection(name)


def run_ref(run_id: str):
    return _col(RUNS).document(run_id)


def _progress_ref(run_id: str, user_id: str):
    return _col(PROGRESS).document(f"{run_id}_{user_id}")


def _enqueue(payload: dict, *name_parts: str, at_ms: int | None = None) -> None:
    s = settings.reembed()
    delay_s = max(0.0, (at_ms - clock.now_ms()) / 1000) if at_ms is not None else 0
    tasks.enqueue(s.queue, s.worker_url, payload, name=tasks.task_id("reembed", *name_parts), delay_s=delay_s)


# starting and reporting
def report(run_id: str | None) -> dict:
    active, target, _ = installation()
    run = run_ref(run_id).get().to_dict() if run_id else None
    return {"active": active.to_store(), "target": target.to_store() if target else None,
            "run": {**run, "runId": run_id} if run else None}


def start(requested_by: str) -> tuple[dict, bool]:
    """Start re-embedding into the configured version; (report, True) when this call started it."""
    cfg, s = embeddings.settings(), settings.reembed()
    active, target, run_id = installation()
    if target is None and (active.model, active.dimensions) == (cfg.model, cfg.dimensions):
        return report(run_id), False  # nothing differs from the configuration: nothing to do
    if not s.worker_url:
        raise config.ConfigError("KNOWLEDGE_REEMBED_WORKER_URL is not set: the run has nowhere to send its tasks")
    ref = model_ref()
    try:  # an existing document: concurrent starts then conflict instead of both creating it
        ref.create({"active": LEGACY.to_store(), "target": None, "runId": None})
    except gexc.AlreadyExists:
        pass

    @db.transactional
    def claim(tx):
        data = ref.get(transaction=tx).to_dict() or {}
        active, target = Space.load(data.get("active")) or LEGACY, Space.load(data.get("target"))
        if target is not None:
            return data["runId"], False  # a run is going: that one
        if (active.model, active.dimensions) == (cfg.model, cfg.dimensions):
            return data.get("runId"), False  # nothing differs from the configuration
        now = clock.now_ms()
        run_id = f"{now:013d}{pysecrets.token_hex(4)}"
        target = Space(cfg.model, cfg.dimensions, other_slot(active.slot))
        tx.update(ref, {"target": target.to_store(), "runId": run_id, "updatedAt": now})
        tx.create(run_ref(run_id), {
            "status": "running", "from": active.to_store(), "to": target.to_store(), "requestedBy": requested_by,
            "startedAt": now, "settleUntil": now + s.settle_ms, "finishedAt": None, "usersTotal": 0,
            "usersDone": 0, "chunksEmbedded": 0, "chunksSkipped": 0, "pagesDone": False, "dispatched": False})
        return run_id, True

    run_id, started = claim()
    run = run_ref(run_id).get().to_dict() if run_id else None
    if run and run["status"] == "running" and not run["dispatched"]:  # first start, or one whose enqueue failed
        # dispatched when the run has settled (Cloud Tasks' schedule time): no task waits in a retry loop
        _enqueue({"runId": run_id, "kind": "users", "page": 0, "cursor": None}, run_id, "users", "0",
                 at_ms=run["settleUntil"])
        run_ref(run_id).update({"dispatched": True})
        log.info("re-embedding started", extra={"runId": run_id, "to": run["to"]})
    return report(run_id), started


# the worker's two kinds of task
def _running(run_id: str) -> dict | None:
    run = run_ref(run_id).get().to_dict()
    return run if run and run["status"] == "running" else None


def users_page(run_id: str, page: int, cursor: str | None) -> dict:
    run = _running(run_id)
    if run is None:
        return {"skipped": "run not running"}
    found = repos.users.page({}, (("createdAt", "DESCENDING"),), USERS_PAGE, cursor)

    def send(user_id: str) -> None:
        _enqueue({"runId": run_id, "kind": "user", "userId": user_id, "round": 0, "cursor": None},
                 run_id, user_id, "0", "")

    with ThreadPoolExecutor(max_workers=8) as pool:  # each in a copy of this context: the request's budget
        for f in [pool.submit(contextvars.copy_context().run, send, u.id) for u in found.items]:
            f.result()
    batch = db.client().batch()  # the page is counted once: the marker's create fails on a repeat
    batch.create(_col(PAGES).document(f"{run_id}_{page}"), {"users": len(found.items), "at": clock.now_ms()})
    batch.update(run_ref(run_id), {"usersTotal": firestore.Increment(len(found.items))})
    try:
        batch.commit()
    except gexc.AlreadyExists:
        pass
    if found.cursor:
        _enqueue({"runId": run_id, "kind": "users", "page": page + 1, "cursor": found.cursor},
                 run_id, "users", str(page + 1))
    else:
        run_ref(run_id).update({"pagesDone": True})
        _maybe_finish(run_id)
    return {"users": len(found.items), "more": bool(found.cursor)}


def _position(round_: int, cursor: str | None) -> tuple[int, str]:
    return round_, cursor or ""


def user_batch(run_id: str, user_id: str, round_: int, cursor: str | None) -> dict:
    s = settings.reembed()
    run = _running(run_id)
    if run is None:
        return {"skipped": "run not running"}
    if clock.now_ms() < run["settleUntil"]:
        raise Retry("the run is settling: ingests begun before it are still finishing")
    target = Space.load(run["to"])
    pref = _progress_ref(run_id, user_id)
    if not pref.get().exists:
        try:
            pref.create({"round": 0, "cursor": None, "status": "running", "leaseUntil": 0, "embedded": 0})
        except gexc.AlreadyExists:
            pass
    mine = _position(round_, cursor)

    @db.transactional
    def claim(tx):
        prog = pref.get(transaction=tx).to_dict()
        if prog["status"] == "done":
            return "done", prog
        at = _position(prog["round"], prog["cursor"])
        if mine < at:
            return "duplicate", prog
        if mine > at:
            raise Retry("the previous batch of this user is not recorded yet")
        now = clock.now_ms()
        if prog["leaseUntil"] > now:
            raise Retry("another delivery is re-embedding this batch")
        tx.update(pref, {"leaseUntil": now + s.lease_ms})
        return None, prog

    skip, prog = claim()
    if skip == "done":
        _maybe_finish(run_id)  # the delivery that switched the user may have died before this
        return {"skipped": skip}
    if skip == "duplicate":
        if not prog.get("nextQueued", True) and prog["leaseUntil"] <= clock.now_ms():
            _queue_position(pref, run_id, user_id, prog["round"], prog["cursor"])  # its enqueue may have failed
        return {"skipped": skip}
    q = repos.knowledge.query({"userId": user_id}).order_by("__name__")
    if cursor:
        q = q.start_after({"__name__": repos.knowledge.col.document(cursor)})
    snaps = list(q.select(["text", target.tag]).limit(s.batch).stream())
    todo = [x for x in snaps if not holds(x.to_dict() or {}, target)]
    written = 0
    if todo:
        embedder = embeddings.for_version(target.model, target.dimensions)
        vecs = vectors.normalise(embedder.embed([x.get("text") for x in todo]))
        written = store.set_vectors([x.id for x in todo], target.slot, target.key, vecs)
    counts = {"chunksEmbedded": firestore.Increment(written),
              "chunksSkipped": firestore.Increment(len(snaps) - len(todo))}
    if len(snaps) == s.batch:  # more after this batch: record the position, then queue its task
        nxt = snaps[-1].id
        if _advance(pref, mine, {"cursor": nxt, "leaseUntil": 0, "nextQueued": False,
                                 "embedded": firestore.Increment(written)}, run_id, counts):
            _queue_position(pref, run_id, user_id, round_, nxt)
        return {"embedded": written, "more": True}
    if _all_hold(user_id, target):
        switched = _switch(pref, mine, user_id, target, run_id, counts, written)
        _maybe_finish(run_id)
        return {"embedded": written, "more": False, "switched": switched}
    # chunks without the target version remain (written meanwhile by an older ingest): once more
    if _advance(pref, mine, {"round": round_ + 1, "cursor": None, "leaseUntil": 0, "nextQueued": False,
                             "embedded": firestore.Increment(written)}, run_id, counts):
        _queue_position(pref, run_id, user_id, round_ + 1, None)
    return {"embedded": written, "more": True, "round": round_ + 1}


def _queue_position(pref, run_id: str, user_id: str, round_: int, cursor: str | None) -> None:
    """The task of the user's recorded position (named by it: Cloud Tasks keeps one), then note it queued."""
    _enqueue({"runId": run_id, "kind": "user", "userId": user_id, "round": round_, "cursor": cursor},
             run_id, user_id, str(round_), cursor or "")
    pref.update({"nextQueued": True})


def _count(query) -> int:
    return int(query.count().get()[0][0].value)


def _all_hold(user_id: str, target: Space) -> bool:
    total = _count(repos.knowledge.query({"userId": user_id}))
    holding = _count(repos.knowledge.query({"userId": user_id, target.tag: target.key}))
    return total == holding


def _advance(pref, mine: tuple, fields: dict, run_id: str, counts: dict) -> bool:
    @db.transactional
    def advance(tx):
        prog = pref.get(transaction=tx).to_dict()
        if prog["status"] == "done" or _position(prog["round"], prog["cursor"]) != mine:
            return False  # recorded by another delivery meanwhile
        tx.update(pref, fields)
        tx.update(run_ref(run_id), counts)
        return True
    return advance()


def _switch(pref, mine: tuple, user_id: str, target: Space, run_id: str, counts: dict, written: int) -> bool:
    """The user's search moves to the target version: one document, with the progress and the count."""
    @db.transactional
    def switch(tx):
        prog = pref.get(transaction=tx).to_dict()
        if prog["status"] == "done" or _position(prog["round"], prog["cursor"]) != mine:
            return False
        tx.set(space_ref(user_id), {**target.to_store(), "runId": run_id, "switchedAt": clock.now_ms()})
        tx.update(pref, {"status": "done", "leaseUntil": 0, "embedded": firestore.Increment(written)})
        tx.update(run_ref(run_id), {**counts, "usersDone": firestore.Increment(1)})
        return True
    return switch()


def _maybe_finish(run_id: str) -> None:
    @db.transactional
    def finish(tx):
        run = run_ref(run_id).get(transaction=tx).to_dict()
        model = model_ref().get(transaction=tx).to_dict() or {}
        if run["status"] != "running" or not run["pagesDone"] or run["usersDone"] < run["usersTotal"]:
            return False
        now = clock.now_ms()
        tx.update(run_ref(run_id), {"status": "completed", "finishedAt": now})
        if model.get("runId") == run_id:  # users without a switch of their own (none then) follow
            tx.update(model_ref(), {"active": run["to"], "target": None, "updatedAt": now})
        return True
    if finish():
        log.info("re-embedding completed", extra={"runId": run_id})


def require_run(run_id: str) -> dict:
    if not db.valid_id(run_id) or not run_ref(run_id).get().exists:
        raise NotFound("not_found", f"re-embedding run {run_id[:100]!r} not found")
    return report(run_id)
