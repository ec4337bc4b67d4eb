"""One batch of a pull run (the Cloud Tasks worker's logic).

Calls for all users of the batch run concurrently (bounded by the Provider);
each user's outcome is isolated: a user whose calls fail is counted as failed
and written nothing, the others are written. Everything written has a
deterministic id, so a re-delivered task rewrites the same documents.

Within a batch the waits overlap: documents are committed in chunks while the other users'
calls are still out, and the budgets the batch needs are read meanwhile.

OpenAI spend is asked once per OPENAI_PROJECTS_PER_CALL projects of the batch, not per user (the costs
endpoint filters by an array of projects and groups by project): a call that fails fails the users
whose projects it was for, and only them.
"""
from __future__ import annotations

import asyncio
import contextvars
import hashlib
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import cast

from google.api_core import exceptions as gexc

from shared import clock, logs
from shared.costs import autolink, pricing, settings
from shared.costs.ledger import CostAccount, CostRunBatch, Kind, accounts, batches
from shared.costs.providers import OPENAI_PROJECTS_PER_CALL, Provider, ProviderError
from shared.db import client
from shared.models import CostSnapshot, OpenrouterActivity

log = logs.get("costs.worker")
MAX_FAILURES_KEPT = 20
WRITE_CHUNK = 250  # documents per commit (Firestore allows 500): smaller ones start while calls are out


@dataclass
class Outcome:
    user_id: str
    docs: list = field(default_factory=list)  # models to write
    error: str | None = None
    transient: bool = False  # the error may go away (provider timed out / unavailable)
    skipped: bool = False
    openrouter_month: float = 0.0  # the key's usage this month (budgets: shared/spend)


class RetryBatch(Exception):
    """Some users failed transiently and the queue has attempts left: deliver the batch again."""


def batch_id(run_id: str, index: int) -> str:
    return f"{run_id}_{index}"


def snapshot_id(run_id: str, user_id: str) -> str:
    return hashlib.sha256(f"{run_id}/{user_id}".encode()).hexdigest()[:32]


def activity_id(user_id: str, date: str, model: str) -> str:
    """Deterministic per (user, date, model): a re-pull overwrites, never adds."""
    return hashlib.sha256("\n".join((user_id, date, model)).encode()).hexdigest()[:40]


def month_start_ms(ms: int) -> int:
    d = datetime.fromtimestamp(ms / 1000, timezone.utc)
    return int(datetime(d.year, d.month, 1, tzinfo=timezone.utc).timestamp() * 1000)


def activity_dates(schedule_ms: int) -> list[str]:
    """The last completed UTC day, and the one before it re-pulled so a partial day completes."""
    day = datetime.fromtimestamp(schedule_ms / 1000, timezone.utc).date()
    return [(day - timedelta(days=n)).isoformat() for n in (1, 2)]


def exact_sum(values) -> float:
    return float(sum((Decimal(repr(v)) for v in values), Decimal(0)))


class _OpenaiSpends:
    """The month's OpenAI spend of every project of a batch: one call per OPENAI_PROJECTS_PER_CALL
    projects, all started at once; each user awaits the calls holding its projects."""

    def __init__(self, p: Provider, projects: list[str], start_ms: int, end_ms: int):
        chunks = [projects[i:i + OPENAI_PROJECTS_PER_CALL] for i in range(0, len(projects), OPENAI_PROJECTS_PER_CALL)]
        self.calls = [asyncio.ensure_future(p.openai_spends(c, start_ms, end_ms)) for c in chunks]
        self.call_of = {pid: call for c, call in zip(chunks, self.calls) for pid in c}

    async def of(self, project_id: str) -> float:
        return (await self.call_of[project_id])[project_id]

    async def settle(self) -> None:
        """Waits for every call, failed ones included (a call no user awaited still ends, its error read)."""
        await asyncio.gather(*self.calls, return_exceptions=True)


async def _costs_for(p: Provider, user: dict, scope, run_id: str, schedule_ms: int,
                     shape: pricing.Shape, pool_balance, openai: _OpenaiSpends) -> Outcome:
    """`scope`: the user's autolink.Scope (admin mapping or derived), or the ProviderError deriving it."""
    uid = user["userId"]
    out = Outcome(uid)
    try:
        if isinstance(scope, ProviderError):
            raise scope
        balance = spend = None
        if scope.openrouter_keys:  # derived: each key told its own limit; one without draws on its account
            parts = [k.limit_remaining or 0.0 for k, _ in scope.openrouter_keys if k.limit is not None]
            if any(k.limit is None and h for k, h in scope.openrouter_keys):  # ... the operator's: the pool
                parts.append(await pool_balance())
            balance = round(sum(parts), 6) if parts else None  # another account's pool is not ours to read
            out.openrouter_month = sum((k.usage_monthly or 0.0) for k, _ in scope.openrouter_keys)
        elif scope.openrouter_hashes:
            key = await p.openrouter_key(scope.openrouter_hashes[0])
            out.openrouter_month = key.usage_monthly or 0.0
            # A key with a credit limit has its own balance; without one it draws on the account's pool.
            balance = key.limit_remaining if key.limit is not None else await pool_balance()
        if scope.openai_projects:
            spend = round(sum([await openai.of(pid) for pid in scope.openai_projects]), 6)
    except ProviderError as exc:
        out.error, out.transient = str(exc), exc.transient
        return out
    billed = pricing.billed_to_operator(user["deployments"], settings.get().operator_projects)
    gcp = pricing.estimate(billed, shape, month_start_ms(schedule_ms), schedule_ms)
    out.docs.append(CostSnapshot(_id=snapshot_id(run_id, uid), userId=uid, openrouterBalance=balance,
                                 openaiSpend=spend, gcpEstimate=gcp, fetchedAt=schedule_ms))
    return out


async def _activity_for(p: Provider, user: dict, scope, schedule_ms: int) -> Outcome:
    uid = user["userId"]
    out = Outcome(uid)
    if isinstance(scope, ProviderError):
        out.error, out.transient = str(scope), scope.transient
        return out
    if not scope.openrouter_hashes:
        out.skipped = True
        return out
    try:
        days = await asyncio.gather(*(p.openrouter_activity(h, d) for h in scope.openrouter_hashes
                                      for d in activity_dates(schedule_ms)))
    except ProviderError as exc:
        out.error, out.transient = str(exc), exc.transient
        return out
    by_model: dict[tuple[str, str], list] = {}
    for items in days:  # the API groups by endpoint: one model may come from several providers (and keys)
        for it in items:
            by_model.setdefault((it.date, it.model), []).append(it)
    for (date, model), group in by_model.items():
        out.docs.append(OpenrouterActivity(
            _id=activity_id(uid, date, model), userId=uid, date=date, model=model,
            requests=sum(i.requests for i in group), promptTokens=sum(i.prompt_tokens for i in group),
            completionTokens=sum(i.completion_tokens for i in group),
            totalCostUsd=exact_sum(i.usage for i in group)))
    return out


class _Writer:
    """Commits the pulled documents, WRITE_CHUNK at a time, each commit in a thread while the pull goes on."""

    def __init__(self):
        self.pending: list = []
        self.commits: list[asyncio.Future] = []
        self.written = 0

    def add(self, docs: list) -> None:
        self.pending.extend(docs)
        while len(self.pending) >= WRITE_CHUNK:
            self._commit(self.pending[:WRITE_CHUNK])
            self.pending = self.pending[WRITE_CHUNK:]

    def _commit(self, docs: list) -> None:
        self.written += len(docs)
        self.commits.append(asyncio.ensure_future(asyncio.to_thread(_write, docs)))  # in this request's context

    async def flush(self) -> int:
        if self.pending:
            self._commit(self.pending)
            self.pending = []
        await asyncio.gather(*self.commits)  # the first failed commit fails the batch (the queue retries it)
        return self.written


async def _pull(kind: str, users: list[dict], accts: dict, run_id: str,
                schedule_ms: int) -> tuple[list[Outcome], int, int]:
    """The outcomes, the provider calls made and the documents written."""
    cfg = settings.get()
    writer = _Writer()

    async def written(job) -> Outcome:
        out = await job
        writer.add(out.docs)
        return out

    async with Provider(cfg) as p:
        found = await autolink.scopes(p, users, accts)  # the admin's mapping, else the deployments' own keys
        if kind == "costs":
            shape = pricing.Shape(cfg.machine_type, cfg.disk_gb, cfg.disk_type)
            pool: asyncio.Task | None = None

            async def pool_balance():  # fetched once per batch, on first need
                nonlocal pool
                if pool is None:
                    pool = asyncio.ensure_future(p.openrouter_credits())
                return await asyncio.shield(pool)

            projects = sorted({pid for s in found.values() if not isinstance(s, ProviderError)
                               for pid in s.openai_projects})
            openai = _OpenaiSpends(p, projects, month_start_ms(schedule_ms), schedule_ms)
            jobs = [_costs_for(p, u, found[u["userId"]], run_id, schedule_ms, shape, pool_balance, openai)
                    for u in users]
            outcomes = await asyncio.gather(*(written(j) for j in jobs))
            await openai.settle()
        else:
            jobs = [_activity_for(p, u, found[u["userId"]], schedule_ms) for u in users]
            outcomes = await asyncio.gather(*(written(j) for j in jobs))
        writes = await writer.flush()
        await asyncio.to_thread(autolink.remember, found, clock.now_ms())
        return outcomes, p.calls, writes


def _load_accounts(user_ids: list[str]) -> dict[str, CostAccount]:
    refs = [accounts.ref(u) for u in user_ids]
    found = {}
    for snap in client().get_all(refs):
        acct = accounts.load(snap)
        if acct is not None:
            found[acct.id] = acct
    return found


def _write(docs: list) -> int:
    db = client()
    for i in range(0, len(docs), WRITE_CHUNK):
        wb = db.batch()
        for d in docs[i:i + WRITE_CHUNK]:
            wb.set(db.collection(d.collection).document(d.id), d.to_store())
        wb.commit()
    return len(docs)


def _budgeted(users: list[dict]) -> set[str]:
    """The users of the batch who set a budget (one batched read)."""
    from shared.spend.store import budgets

    return {s.id for s in client().get_all([budgets.ref(u["userId"]) for u in users]) if s.exists}


def _budgets(outcomes: list[Outcome], users: list[dict], schedule_ms: int, budgeted: set[str]) -> list[str]:
    """Each pulled user's budgets against this pull (shared/spend); returns transient failures (a
    redelivery evaluates again: notifications and actions are once per month and scope)."""
    from shared.spend import service as spend

    cfg = settings.get()
    shape = pricing.Shape(cfg.machine_type, cfg.disk_gb, cfg.disk_type)
    deps = {u["userId"]: u["deployments"] for u in users}
    failures = []
    for o in outcomes:
        if o.error or not o.docs or o.user_id not in budgeted:
            continue
        snap = o.docs[0]
        try:
            done = spend.evaluate(o.user_id, deps[o.user_id], o.openrouter_month, snap.openaiSpend or 0.0, shape,
                                  schedule_ms)
            if done:
                log.info("budget evaluated", extra={"userId": o.user_id, "done": done})
        except Exception as exc:
            if not spend.transient(exc):
                log.exception("budget evaluation failed", extra={"userId": o.user_id})
                continue
            failures.append(f"{o.user_id}: {exc}")
    return failures


def run_batch(run_id: str, kind: str, index: int, schedule_ms: int, users: list[dict], final: bool = True) -> dict:
    """`final`: the queue's last attempt (or a caller outside the queue); before it, users that failed
    transiently make the batch go back to the queue (their successful neighbours' documents are
    written already, under the same ids the redelivery writes again)."""
    bid = batch_id(run_id, index)
    done = batches.get(bid)
    if done is not None:  # a re-delivered task: the work is written and counted already
        return {**done.to_api(), "duplicate": True}
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=1) as pool:  # the budgets are read while the batch pulls
        budgeted: Future | None = None
        if kind == "costs":
            budgeted = pool.submit(contextvars.copy_context().run, _budgeted, users)
        accts = _load_accounts([u["userId"] for u in users])
        pull_started = time.perf_counter()
        outcomes, calls, writes = asyncio.run(_pull(kind, users, accts, run_id, schedule_ms))
        pull_ms = int((time.perf_counter() - pull_started) * 1000)
        budgeted_ids = budgeted.result() if budgeted is not None else set()
    if kind == "costs":
        budget_failures = _budgets(outcomes, users, schedule_ms, budgeted_ids)
        if budget_failures and not final:
            raise RetryBatch(f"budgets of {len(budget_failures)} user(s) not evaluated: {budget_failures[0]}")
    failed = [o for o in outcomes if o.error]
    retry = [o for o in failed if o.transient]
    if retry and not final:
        log.warning("cost batch will retry", extra={"runId": run_id, "kind": kind, "batch": index,
                                                     "transient": len(retry), "first": retry[0].error})
        raise RetryBatch(f"{len(retry)} of {len(users)} users failed transiently (first: {retry[0].error})")
    result = CostRunBatch(
        _id=bid, runId=run_id, kind=cast(Kind, kind), batch=index, users=len(users),
        ok=sum(1 for o in outcomes if not o.error and not o.skipped), failed=len(failed),
        skipped=sum(1 for o in outcomes if o.skipped),
        failures=[{"userId": o.user_id, "error": o.error} for o in failed[:MAX_FAILURES_KEPT]],
        writes=writes + 1, providerCalls=calls, pullMs=pull_ms,
        durationMs=int((time.perf_counter() - started) * 1000),
        finishedAt=clock.now_ms())
    try:
        batches.create(result)
    except gexc.AlreadyExists:  # a concurrent duplicate finished first; its writes equal ours
        return {**batches.require(bid).to_api(), "duplicate": True}
    log.info("cost batch done", extra={"runId": run_id, "kind": kind, "batch": index, "ok": result.ok,
                                       "failed": result.failed, "skipped": result.skipped})
    return {**result.to_api(), "duplicate": False}
