"""Budgets against month-to-date spend (docs/COSTS.md, "Spend caps").

`evaluate` runs for each user with a budget after each cost pull (costPullWorker): spend is OpenRouter
(the key's `usage_monthly`, or the month's activity if larger) + OpenAI (the project's month-to-date
costs) + the GCP estimate. A deployment's spend is its own VM estimate plus the account's AI spend
(AI keys are per account, so each bot is charged all of it: a per-bot budget is reached no later than
it should be). Each of 50/80/100 % is notified once per month and scope (dedupe key
`budget:<userId>:<month>:<threshold>`, `...:<deploymentId>:<threshold>` for a bot). At 100 % the
scope's action runs once: `stop` requests a deploy `stop` job per running bot (one-active-job rule:
a bot with a job in flight is stopped at the next pull), `cap` sets the OpenRouter key's credit limit
to what it has used (PATCH /keys/{hash}, provisioning key), `notify` does nothing more.
`lift` undoes them when no budget that caused them is exceeded any more: a raise (PUT /costs/budget)
or a new month; a bot is restarted only if it is still stopped and the owner may deploy.
"""
from __future__ import annotations

import asyncio
from datetime import datetime, timezone

from shared import clock, db, entitlements, faults, logs, notifications, repos
from shared.costs import pricing, reports
from shared.costs import settings as cost_settings
from shared.costs.ledger import accounts
from shared.errors import Conflict, DomainError, Unavailable
from shared.spend.store import THRESHOLDS, SpendBudget, budgets

log = logs.get("spend")
ACCOUNT = "account"
STOPPABLE = ("running", "provisioning")


class SpendError(Exception):
    def __init__(self, message: str, transient: bool):
        super().__init__(message)
        self.transient = transient


def month_of(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m")


def projected(spent: float, month: str, now_ms: int) -> float:
    """Month-end spend at this month's pace (a past month: what it was); the first day counts whole."""
    start, end, _, _ = reports.month_bounds(month)
    if now_ms >= end:
        return round(spent, 2)
    elapsed = max(now_ms - start, 86_400_000)
    return round(spent * (end - start) / elapsed, 2)


def percent(spent: float, budget: float | None) -> float | None:
    return None if not budget else round(spent / budget * 100, 1)


# OpenRouter key (one client: shared.costs.providers)
def _openrouter(call):
    from shared.costs.providers import Provider, ProviderError  # the HTTP client stack: only when a key is set

    async def run():
        async with Provider(cost_settings.get()) as p:
            return await call(p)
    try:
        return asyncio.run(run())
    except ProviderError as exc:
        raise SpendError(f"OpenRouter: {exc}", exc.transient) from None


def _key_hash(user_id: str) -> str | None:
    acct = accounts.get(user_id)
    return acct.openrouterKeyHash if acct else None


# what the budgets see
def scopes_over(b: SpendBudget) -> dict[str, bool]:
    """Each budgeted scope -> whether this month's spend reached it (as of the last evaluation)."""
    out = {}
    if b.monthlyUsd:
        out[ACCOUNT] = b.spentUsd >= b.monthlyUsd
    ai = b.breakdown.get("openrouter", 0.0) + b.breakdown.get("openai", 0.0)
    for dep_id, db_ in b.deployments.items():
        out[dep_id] = ai + b.breakdown.get(f"gcp:{dep_id}", 0.0) >= db_.monthlyUsd
    return out


def view(b: SpendBudget | None, now_ms: int) -> dict | None:
    """The budget block of GET /costs/budget and the summary."""
    if b is None:
        return None
    month = month_of(now_ms)
    current = b.month == month
    spent = b.spentUsd if current else 0.0
    ai = (b.breakdown.get("openrouter", 0.0) + b.breakdown.get("openai", 0.0)) if current else 0.0
    deps = [{"deploymentId": d, "monthlyUsd": x.monthlyUsd, "action": x.action,
             "spentUsd": round(ai + (b.breakdown.get(f"gcp:{d}", 0.0) if current else 0.0), 2),
             "percent": percent(ai + (b.breakdown.get(f"gcp:{d}", 0.0) if current else 0.0), x.monthlyUsd),
             "thresholdsNotified": b.notified.get(d, []) if current else []} for d, x in b.deployments.items()]
    return {"monthlyUsd": b.monthlyUsd, "action": b.action, "month": month, "spentUsd": round(spent, 2),
            "projectedUsd": projected(spent, month, now_ms), "percent": percent(spent, b.monthlyUsd),
            "breakdown": {k: round(v, 2) for k, v in b.breakdown.items() if ":" not in k} if current else {},
            "thresholdsNotified": b.notified.get(ACCOUNT, []) if current else [],
            "stopped": b.stopped, "capped": b.capped is not None, "evaluatedAt": b.evaluatedAt or None,
            "deployments": deps}


# evaluation (cost pull worker)
def evaluate(user_id: str, deployments: list[dict], openrouter: float, openai: float, gcp_shape: pricing.Shape,
             now_ms: int) -> list[str]:
    """One user's budgets against this pull's spend; returns what it did (for the log)."""
    b = budgets.get(user_id)
    if b is None or (not b.monthlyUsd and not b.deployments):
        return []
    month = month_of(now_ms)
    start, _, d0, _ = reports.month_bounds(month)
    act = reports.activity(user_id, d0, datetime.fromtimestamp(now_ms / 1000, timezone.utc).strftime("%Y-%m-%d"),
                           "date")["totals"]["totalCostUsd"]
    breakdown = {"openrouter": max(openrouter, act), "openai": openai}
    for d in deployments:
        breakdown[f"gcp:{d['id']}"] = pricing.estimate([d], gcp_shape, start, now_ms)
    breakdown["gcp"] = round(sum(v for k, v in breakdown.items() if k.startswith("gcp:")), 6)
    spent = breakdown["openrouter"] + breakdown["openai"] + breakdown["gcp"]
    b = _record_spend(user_id, month, spent, breakdown, now_ms)
    done = []
    over = scopes_over(b)
    for scope, reached in over.items():
        budget = b.monthlyUsd if scope == ACCOUNT else b.deployments[scope].monthlyUsd
        scope_spent = spent if scope == ACCOUNT else \
            breakdown["openrouter"] + breakdown["openai"] + breakdown.get(f"gcp:{scope}", 0.0)
        done += _notify_thresholds(b, scope, scope_spent, budget, month, now_ms)
        if reached and scope not in b.acted:
            done += _act(b, scope, month, deployments)
    if b.stopped or b.capped:
        done += lift(user_id, now_ms)
    return done


@db.transactional
def _record_spend(tx, user_id: str, month: str, spent: float, breakdown: dict, now_ms: int) -> SpendBudget:
    b = budgets.require(user_id, tx)
    fields = {"spentUsd": round(spent, 6), "breakdown": breakdown, "evaluatedAt": now_ms}
    if b.month != month:  # a new month: alerts and actions start over; what was stopped or capped is lifted
        fields.update(month=month, notified={}, acted=[], actions=0)
    budgets.update(user_id, fields, tx)
    return b.model_copy(update=fields)


def _notify_thresholds(b: SpendBudget, scope: str, spent: float, budget: float, month: str, now_ms: int) -> list:
    pct = spent / budget * 100
    new = [t for t in THRESHOLDS if pct >= t and t not in b.notified.get(scope, [])]
    if not new:
        return []
    what = "your account" if scope == ACCOUNT else f"bot {_bot_name(scope)}"
    for t in new:
        key = f"budget:{b.id}:{month}:{t}" if scope == ACCOUNT else f"budget:{b.id}:{month}:{scope}:{t}"
        notifications.notify(
            b.id, "spend.threshold", title=f"{t}% of the monthly budget of {what} used",
            body=f"${spent:.2f} of ${budget:.2f} spent in {month}; at this pace "
                 f"${projected(spent, month, now_ms):.2f} by the month's end.",
            data={"scope": scope, "threshold": t, "spentUsd": round(spent, 2), "budgetUsd": budget, "month": month},
            dedupe_key=key)
    _mark(b.id, "notified", scope, new)
    b.notified.setdefault(scope, []).extend(new)
    return [f"{scope}: notified {new}"]


@db.transactional
def _mark(tx, user_id: str, field: str, scope: str, values: list) -> None:
    b = budgets.require(user_id, tx)
    if field == "notified":
        got = dict(b.notified)
        got[scope] = sorted(set(got.get(scope, [])) | set(values))
        budgets.update(user_id, {"notified": got}, tx)
    elif field == "acted":
        budgets.update(user_id, {"acted": sorted(set(b.acted) | {scope}), "actions": b.actions + 1}, tx)


def _bot_name(dep_id: str) -> str:
    dep = repos.deployments.get(dep_id)
    return f"{dep.botName!r}" if dep else dep_id


def _act(b: SpendBudget, scope: str, month: str, deployments: list[dict]) -> list[str]:
    from shared.deploy import jobs

    action = b.action if scope == ACCOUNT else b.deployments[scope].action
    targets = [d["id"] for d in deployments if d["status"] in STOPPABLE and (scope == ACCOUNT or d["id"] == scope)]
    stopped, busy, lines = [], [], []
    if action == "stop":
        for dep_id in targets:
            try:
                jobs.request_action(dep_id, "stop", "budget")
                stopped.append(dep_id)
            except DomainError as exc:
                if isinstance(exc, Unavailable):
                    raise SpendError(f"stop {dep_id}: {exc.message}", True) from None
                busy.append(dep_id)  # a job in flight (409) or gone (404): the next pull tries again
        if stopped:
            _add_stopped(b.id, stopped)
            b.stopped = sorted(set(b.stopped) | set(stopped))
        if busy and any(repos.deployments.get(d) for d in busy):
            return [f"{scope}: stop requested for {stopped}; {busy} busy, stopped at the next pull"]
        lines.append(f"{scope}: stop requested for {stopped}")
    elif action == "cap":
        lines.append(f"{scope}: {cap_key(b.id)}")
    what = "your account" if scope == ACCOUNT else f"bot {_bot_name(scope)}"
    did = {"stop": f"stopped {len(stopped)} bot(s)", "cap": "capped the bots' OpenRouter key",
           "notify": "took no action (notify only)"}[action]
    notifications.notify(
        b.id, "spend.cap_reached", title=f"Monthly budget of {what} reached",
        body=f"{did.capitalize()}. Raise the budget to lift it, or it lifts when the next month starts.",
        data={"scope": scope, "action": action, "stopped": stopped, "month": month},
        dedupe_key=f"budget-action:{b.id}:{month}:{scope}:{b.actions + 1}")
    _mark(b.id, "acted", scope, [])
    b.acted.append(scope)
    return lines or [f"{scope}: budget reached (notify only)"]


@db.transactional
def _add_stopped(tx, user_id: str, ids: list[str]) -> None:
    b = budgets.require(user_id, tx)
    budgets.update(user_id, {"stopped": sorted(set(b.stopped) | set(ids))}, tx)


def cap_key(user_id: str) -> str:
    """Cap the account's OpenRouter key at what it has used (its remaining credit becomes 0)."""
    key_hash = _key_hash(user_id)
    if not key_hash:
        return "no OpenRouter key linked: nothing to cap"
    key = _openrouter(lambda p: p.openrouter_key(key_hash))
    b = budgets.require(user_id)
    if b.capped is None:  # remember the owner's own limit first, so a failed PATCH is re-applied, not lost
        _set_capped(user_id, {"keyHash": key_hash, "previousLimit": key.limit})
    if key.limit is None or key.limit > key.usage:
        _openrouter(lambda p: p.openrouter_set_limit(key_hash, round(key.usage, 6)))
    return f"OpenRouter key capped at ${key.usage:.2f} (its usage)"


@db.transactional
def _set_capped(tx, user_id: str, capped: dict | None) -> None:
    b = budgets.require(user_id, tx)
    if capped is None or b.capped is None:
        budgets.update(user_id, {"capped": capped}, tx)


def lift(user_id: str, now_ms: int | None = None) -> list[str]:
    """Undo stops and the cap that no exceeded budget justifies any more (a raise, a new month)."""
    from shared.deploy import jobs

    b = budgets.get(user_id)
    if b is None:
        return []
    month = month_of(now_ms or clock.now_ms())
    over = scopes_over(b) if b.month == month else {}
    lines, keep = [], list(b.stopped)
    if b.stopped:
        keep = []
        for dep_id in b.stopped:
            if over.get(ACCOUNT) and b.action == "stop" or over.get(dep_id):
                keep.append(dep_id)
                continue
            dep = repos.deployments.get(dep_id)
            if dep is None or dep.status != "stopped" or not entitlements.can_deploy(user_id):
                continue  # gone, started by the owner meanwhile, or no longer entitled: nothing to undo
            try:
                jobs.request_action(dep_id, "start", "budget")
                lines.append(f"restart requested for {dep_id}")
            except DomainError as exc:
                if isinstance(exc, (Conflict, Unavailable)):
                    keep.append(dep_id)  # try again at the next evaluation
    _after_lift(user_id, keep, [s for s, reached in over.items() if reached])
    capping = (over.get(ACCOUNT) and b.action == "cap") or any(
        over.get(d) and x.action == "cap" for d, x in b.deployments.items())
    if b.capped and not capping:
        previous = b.capped.get("previousLimit")
        _openrouter(lambda p: p.openrouter_set_limit(b.capped["keyHash"], previous))
        _set_capped(user_id, None)
        lines.append(f"OpenRouter key limit restored to {previous if previous is not None else 'none'}")
    if lines:
        log.info("budget lifted", extra={"userId": user_id, "done": lines})
    return lines


@db.transactional
def _after_lift(tx, user_id: str, stopped: list[str], still_over: list[str]) -> None:
    """What stays stopped, and which actions stay done (a scope back under its budget is re-armed)."""
    b = budgets.require(user_id, tx)
    budgets.update(user_id, {"stopped": sorted(set(stopped)),
                             "acted": [s for s in b.acted if s in still_over]}, tx)


def transient(exc: Exception) -> bool:
    return isinstance(exc, SpendError) and exc.transient or faults.is_transient(exc)


def set_budget(user_id: str, monthly_usd: float | None, action: str, deployments: dict) -> SpendBudget:
    """The owner's budgets (the evaluation state is kept); then lift what a raise no longer justifies."""
    @db.transactional
    def write(tx):
        b = budgets.get(user_id, tx) or SpendBudget(_id=user_id)
        budgets.set(b.model_copy(update={"monthlyUsd": monthly_usd, "action": action, "deployments": deployments,
                                         "updatedAt": clock.now_ms()}), tx)
    write()
    b = budgets.require(user_id)
    if b.stopped or b.capped:
        lift(user_id)
    return budgets.require(user_id)
