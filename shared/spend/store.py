"""The internal collection `spendBudgets/{userId}`: the owner's budgets and what they caused this month.

Budget (the owner's): `monthlyUsd` (None: no account budget), `action`, `deployments` {deploymentId:
{monthlyUsd, action}}. State (the evaluations'): `month` (YYYY-MM it is about), `notified` {scope:
[thresholds]} (scope "account" or a deployment id), `acted` [scopes whose 100 % action ran], `stopped`
[deployment ids a budget stopped], `capped` {keyHash, previousLimit} when the OpenRouter key is capped,
`actions` (how many actions ran this month: numbers their notifications), the last spend seen.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from shared.db import Repo
from shared.models import Doc

Action = Literal["notify", "stop", "cap"]
THRESHOLDS = (50, 80, 100)


class DeploymentBudget(BaseModel):
    monthlyUsd: float
    action: Action = "notify"


class SpendBudget(Doc):
    collection = "spendBudgets"
    monthlyUsd: float | None = None
    action: Action = "notify"
    deployments: dict[str, DeploymentBudget] = {}
    month: str = ""
    notified: dict[str, list[int]] = {}
    acted: list[str] = []
    stopped: list[str] = []
    capped: dict | None = None  # {keyHash, previousLimit}
    actions: int = 0
    spentUsd: float = 0.0  # month to date, as of evaluatedAt
    breakdown: dict[str, float] = {}  # openrouter, openai, gcp
    evaluatedAt: int = 0
    updatedAt: int = 0


budgets = Repo(SpendBudget)
