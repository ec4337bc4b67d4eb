"""Internal collections of the costs domain (beside the 14 schema collections).

costAccounts/{userId}      the user's provider scopes (see docs/COSTS.md, "Attribution")
costRuns/{runId}           one per (kind, schedule time): the run-once ledger
costRunBatches/{runId_i}   one per finished batch: its ok/failed counts (written once)
"""
from __future__ import annotations

from typing import Literal

from shared.db import Repo
from shared.models import Doc

Kind = Literal["costs", "activity"]
Trigger = Literal["scheduler", "admin"]


class CostAccount(Doc):
    collection = "costAccounts"
    openrouterKeyHash: str | None = None  # SHA-256 hash of the user's bot key (OpenRouter keys API)
    openaiProjectId: str | None = None  # the user's OpenAI project (proj_...)
    updatedAt: int = 0  # of the admin's mapping (0: none, only what was derived)
    auto: dict | None = None  # derived from the deployments' keys (shared/costs/autolink.py): key fingerprint ->
    autoUpdatedAt: int | None = None  # {"hash"} (OpenRouter) or {"project"} (OpenAI), None when nothing fitted


class CostRun(Doc):
    collection = "costRuns"
    kind: Kind
    scheduleTime: int  # ms; the run's identity with kind
    trigger: Trigger
    requestedBy: str | None = None
    status: Literal["claimed", "dispatched"]
    claimedUntil: int  # a claim not dispatched by then may be taken over
    users: int = 0
    batches: int = 0
    createdAt: int
    dispatchedAt: int | None = None


class CostRunBatch(Doc):
    collection = "costRunBatches"
    runId: str
    kind: Kind
    batch: int
    users: int
    ok: int
    failed: int
    skipped: int  # users with nothing to pull from this source (no linked scope)
    failures: list[dict] = []  # first few {userId, error}
    writes: int  # Firestore document writes
    providerCalls: int
    pullMs: int  # the pull: provider calls, and the commits that overlap them
    durationMs: int
    finishedAt: int


accounts = Repo(CostAccount)
runs = Repo(CostRun)
batches = Repo(CostRunBatch)
