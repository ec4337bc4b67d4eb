"""Plan limits: how many bots (and plugins and skills per bot) a user's plan allows.

Each `pricingPlans` document has `limits` {maxDeployments, maxPluginsPerDeployment,
maxSkillsPerDeployment}; null (or a plan stored without limits) is no limit. A user's plan is their
subscription's `plan`; a free trial (no plan yet) has the limits of BILLING_TRIAL_PLAN (starter).
Admins are not limited (as they are not by the subscription).

- **Bots**: `maxDeployments` counts every deployment the user has, stopped ones too (a stopped VM
  keeps its disk). Creating one more is refused with 409 `plan_limit`. Starting a stopped one (any
  of deploy, start, reset, update on a `stopped` deployment) is refused while the user's running
  bots (not stopped, or stopped with a start queued) already reach the limit, which only happens
  after a downgrade.
- **Atomic**: the checks run inside the transaction that creates the deployment or opens the job
  (shared/deploy/jobs.py `guard`), and first read-and-write the user's `planLocks/{userId}`
  document, so concurrent creates and starts of one user are serialised and cannot exceed the limit.
- **Downgrade** (`enforce`, called after a Stripe webhook or a reconciliation changed the
  subscription): nothing is deleted. The user's running bots beyond the limit, newest first, get
  `statusReason` {code: plan_limit} and a `stop` job (the usual one-active-job rule: a deployment
  whose job is busy is stopped on the next try: the webhook answers 503 so Stripe delivers again).
  An upgrade starts nothing; the owner starts them (the reason is cleared when a start is accepted).
- **Plugins and skills**: enabling one more than `maxPluginsPerDeployment` / `maxSkillsPerDeployment`
  on a deployment is refused (409 `plan_limit`); a downgrade keeps the existing configs.
"""
from __future__ import annotations

from typing import Callable

from google.api_core import exceptions as gexc

from shared import clock, db, logs, repos
from shared.billing import settings as billing_settings
from shared.errors import Conflict
from shared.models import Deployment, PlanLimits

log = logs.get("plan_limits")
LOCKS = "planLocks"
STARTING = ("deploy", "start", "reset", "update")  # actions that run a stopped bot again
COUNT_CAP = 200  # deployments read per check: far above any plan's limit
NEWEST = (("createdAt", "DESCENDING"),)
Writes = Callable[[object], None]


def _lock_ref(user_id: str):
    return db.client().collection(LOCKS).document(user_id)


def ensure_lock(user_id: str) -> None:
    """The user's lock document exists before a transaction reads it: two transactions that both saw it
    absent could both write it (the emulator), while writers of an existing document are serialised."""
    ref = _lock_ref(user_id)
    if not ref.get().exists:
        try:
            ref.create({"at": 0})
        except gexc.AlreadyExists:
            pass


def plan_of(user_id: str, tx=None) -> tuple[str | None, PlanLimits]:
    sub = repos.subscriptions.first(tx, userId=user_id)
    if sub is None:
        return None, PlanLimits()
    slug = sub.plan or (billing_settings.get().trial_plan if sub.status == "trialing" else None)
    if slug is None:
        return None, PlanLimits()
    plan = repos.pricing_plans.first(tx, slug=slug)
    return slug, (plan.limits if plan else PlanLimits())


def _refuse(slug: str | None, what: str, limit: int, current: int) -> Conflict:
    return Conflict("plan_limit", f"the {slug or 'current'} plan allows {limit} {what}; "
                                  f"you have {current}. Upgrade the plan, or stop or delete one first",
                    {"plan": slug, "limit": limit, "current": current})


def _take_lock(tx, user_id: str) -> Writes:
    snap = _lock_ref(user_id).get(transaction=tx)
    if not snap.exists:
        raise RuntimeError("plan lock missing: call ensure_lock first")
    return lambda t: t.update(snap.reference, {"at": clock.now_ms()})


def _running(user_id: str, tx=None, exclude: str | None = None) -> list[Deployment]:
    """The user's bots that run or are about to: not stopped, or stopped with a start queued."""
    deps = [d for d in repos.deployments.all({"userId": user_id}, NEWEST, cap=COUNT_CAP, tx=tx) if d.id != exclude]
    stopped = [d for d in deps if d.status == "stopped"]
    starting: set[str] = set()
    if stopped:
        from shared.deploy.jobs import lock_ref

        for snap in db.client().get_all([lock_ref(d.id) for d in stopped], transaction=tx):
            lock = snap.to_dict() or {} if snap.exists else {}
            if lock.get("jobId") and lock.get("action") in STARTING:
                starting.add(snap.id)
    return [d for d in deps if d.status != "stopped" or d.id in starting]


def create_guard(tx, dep: Deployment) -> Writes:
    """In the create transaction: refuse a deployment beyond maxDeployments (reads only; returns the writes)."""
    writes = _take_lock(tx, dep.userId)
    slug, limits = plan_of(dep.userId, tx)
    cap = limits.maxDeployments
    if cap is not None:
        q = repos.deployments.query({"userId": dep.userId}, NEWEST).select(["status"]).limit(cap + 1)
        have = sum(1 for _ in q.stream(transaction=tx))
        if have >= cap:
            raise _refuse(slug, "bot" if cap == 1 else "bots", cap, have)
    return writes


def action_guard(action: str) -> Callable[[object, Deployment], Writes | None]:
    """In the action transaction: a start of a stopped bot must fit the plan's running bots."""
    def guard(tx, dep: Deployment) -> Writes | None:
        if action not in STARTING or dep.status != "stopped":
            return None
        lock_writes = _take_lock(tx, dep.userId)
        slug, limits = plan_of(dep.userId, tx)
        cap = limits.maxDeployments
        if cap is not None:
            running = len(_running(dep.userId, tx, exclude=dep.id))
            if running >= cap:
                raise _refuse(slug, "running bot" if cap == 1 else "running bots", cap, running)

        def writes(t) -> None:
            lock_writes(t)
            if dep.statusReason is not None:  # started again by its owner: the plan's reason is history
                repos.deployments.update(dep.id, {"statusReason": None}, t)
        return writes
    return guard


def config_guard(kind: str, user_id: str, deployment_id: str, enabled: bool):
    """In a plugin/skill config upsert transaction: enabling one more than the plan allows is refused.
    kind: "plugin" | "skill"."""
    def guard(tx, existing) -> Writes | None:
        if not enabled or (existing is not None and existing.enabled):
            return None  # disabling, or changing one already enabled, never needs room
        lock_writes = _take_lock(tx, user_id)
        slug, limits = plan_of(user_id, tx)
        cap = limits.maxPluginsPerDeployment if kind == "plugin" else limits.maxSkillsPerDeployment
        if cap is not None:
            repo = repos.plugin_configs if kind == "plugin" else repos.skill_configs
            have = sum(1 for c in repo.all({"deploymentId": deployment_id}, cap=COUNT_CAP, tx=tx) if c.enabled)
            if have >= cap:
                raise _refuse(slug, f"enabled {kind}s per bot", cap, have)
        return lock_writes
    return guard


def enforce(user_id: str) -> dict:
    """After a plan change: stop the running bots beyond the limit (newest first), with the reason on
    each. Idempotent. Returns {limit, stopping: [ids], waiting: [ids whose active job is not a stop]}."""
    from shared.deploy import jobs

    slug, limits = plan_of(user_id)
    cap = limits.maxDeployments
    report: dict = {"plan": slug, "limit": cap, "stopping": [], "waiting": []}
    if cap is None:
        return report
    running = sorted(_running(user_id), key=lambda d: (d.createdAt, d.id))
    for dep in running[cap:]:
        reason = {"code": "plan_limit", "at": clock.now_ms(),
                  "message": f"stopped: the {slug} plan allows {cap} running bot{'s' if cap != 1 else ''}; "
                             "upgrade the plan or stop another bot to start it again"}
        repos.deployments.update(dep.id, {"statusReason": reason})
        try:
            jobs.request_action(dep.id, "stop", "plan limit")
            report["stopping"].append(dep.id)
        except Conflict as exc:
            active = ((exc.details or {}).get("job") or {}) if exc.code == "job_active" else None
            if active is None:
                raise
            (report["stopping"] if active.get("action") == "stop" else report["waiting"]).append(dep.id)
    if report["stopping"] or report["waiting"]:
        log.info("plan limit enforced", extra={"userId": user_id, **report})
    return report
