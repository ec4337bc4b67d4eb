"""`costs`: a user's cost snapshots, OpenRouter activity and monthly summary (admins: any
user, or `userId=all`), pull run reports and the per-user provider scopes (admin). The bot reads
its owner's summary with `Authorization: Bot <token>`, as JSON or as a short text for a chat."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from shared import bot_credentials, clock, repos
from shared.api.cost_pulls import RunReport
from shared.api.inputs import PageQuery, Strict
from shared.costs import reports, runs
from shared.costs.ledger import CostAccount, accounts
from shared.costs.ledger import runs as runs_repo
from shared.errors import Forbidden, Invalid, NotFound, Unavailable, UpstreamFailed
from shared.http import Api, Request, page_of, text_response
from shared.models import CostSnapshot
from shared.spend import service as spend
from shared.spend.store import Action, DeploymentBudget, budgets

api = Api("costs", "Cost snapshots, OpenRouter activity and monthly summaries",
          schemes={bot_credentials.SCHEME: bot_credentials.only_on("/summary")})

UserRef = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^/\s]+$")]
# a real calendar date (format: date; 2024-02-30 is refused), 1970-01-01 .. 2999-12-31
Day = Annotated[str, StringConstraints(pattern=r"^(19[7-9][0-9]|2[0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"),
                Field(json_schema_extra={"format": "date"})]
# 1970-01 .. 2999-12: its neighbours are real dates
Month = Annotated[str, StringConstraints(pattern=r"^(19[7-9][0-9]|2[0-9]{3})-(0[1-9]|1[0-2])$")]
MAX_DAYS = 366
EPOCH_MS_MAX = 2**53  # beyond any real time; keeps values inside Firestore's integer range


class SnapshotQuery(PageQuery):
    userId: UserRef | None = None  # default: the caller; admins: anyone, or "all"
    start: int | None = Field(None, alias="from", ge=0, le=EPOCH_MS_MAX)  # epoch ms, inclusive
    end: int | None = Field(None, alias="to", ge=0, le=EPOCH_MS_MAX,
                            description="epoch ms, exclusive; not after `from`: an empty range")


class ActivityQuery(Strict):
    userId: UserRef | None = None
    start: Day = Field(alias="from")
    end: Day = Field(alias="to", description=f"inclusive; a `to` before `from` is an empty range (as Stripe's "
                     f"created ranges); at most {MAX_DAYS} days are read at once: the answer's `to` says where it "
                     "stopped")
    groupBy: Literal["date", "model"] = "date"

    @model_validator(mode="after")
    def _range(self):
        try:
            a, b = (datetime.strptime(d, "%Y-%m-%d") for d in (self.start, self.end))
        except ValueError:
            raise ValueError("from/to must be real dates") from None
        if (b - a).days >= MAX_DAYS:  # a page of days, not an error: the answer says the range it covers
            self.end = (a + timedelta(days=MAX_DAYS - 1)).strftime("%Y-%m-%d")
        return self


class SummaryQuery(Strict):
    userId: UserRef | None = None
    month: Month | None = None  # default: the current UTC month
    format: Literal["json", "text"] = "json"  # text: a few plain lines for a chat message


class Totals(BaseModel):
    requests: int
    promptTokens: int
    completionTokens: int
    totalCostUsd: float


class ActivityReport(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    userId: str
    start: str = Field(alias="from")
    end: str = Field(alias="to")
    groupBy: Literal["date", "model"]
    groups: list[dict]  # {date|model: ..., requests, promptTokens, completionTokens, totalCostUsd}
    totals: Totals


class Change(BaseModel):
    thisMonth: float
    lastMonth: float
    change: float
    changePct: float | None


class DeploymentBudgetView(BaseModel):
    deploymentId: str
    monthlyUsd: float
    action: Action
    spentUsd: float
    percent: float | None
    thresholdsNotified: list[int]


class BudgetView(BaseModel):
    """A budget against this month's spend (as of the last cost pull: evaluatedAt)."""
    monthlyUsd: float | None
    action: Action
    month: str
    spentUsd: float
    projectedUsd: float  # month-end spend at this month's pace
    percent: float | None
    breakdown: dict[str, float]
    thresholdsNotified: list[int]
    stopped: list[str]  # bots a budget stopped (restarted when lifted)
    capped: bool  # the OpenRouter key is capped
    evaluatedAt: int | None
    deployments: list[DeploymentBudgetView]


class SummaryReport(BaseModel):
    model_config = ConfigDict(extra="allow")  # openrouterBalance (one user) or asOf (all)
    userId: str
    month: str
    previousMonth: str
    sources: dict[Literal["openrouter", "openai", "gcp", "total"], Change]
    budget: BudgetView | None = None  # one user, the current month: their budget, spend and projection
    projectedUsd: float | None = None  # the current month: total spend at this pace by its end


Usd = Annotated[float, Field(gt=0, le=1_000_000)]


class DeploymentBudgetBody(Strict):
    deploymentId: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,128}$")]
    monthlyUsd: Usd
    action: Action = "notify"


class BudgetBody(Strict):
    # a budget for the account, for some deployments, or both (said in the document too)
    model_config = ConfigDict(json_schema_extra={"anyOf": [
        {"required": ["monthlyUsd"], "properties": {"monthlyUsd": {"type": "number"}}},
        {"required": ["deployments"], "properties": {"deployments": {"minItems": 1}}}]})
    monthlyUsd: Usd | None = None  # None: no account budget
    action: Action = "notify"  # at 100 %: notify only, stop the bots, or cap the OpenRouter key
    deployments: list[DeploymentBudgetBody] = Field(default_factory=list, max_length=50,
                                                    description="a deployment named twice: the last one counts")

    @model_validator(mode="after")
    def _distinct(self):  # not an error: JSON Schema cannot say "unique by deploymentId"
        self.deployments = list({d.deploymentId: d for d in self.deployments}.values())
        return self


class BudgetQuery(Strict):
    userId: UserRef | None = None


class AccountBody(Strict):
    openrouterKeyHash: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")] | None = None
    openaiProjectId: Annotated[str, StringConstraints(pattern=r"^proj_[A-Za-z0-9]{1,64}$")] | None = None


def scope(req: Request, requested: str | None) -> str | None:
    """The user id to read (None = all users). Owners read their own; admins anyone or all."""
    caller = req.caller
    if requested is None or requested == caller.id:
        return caller.id
    if not caller.is_admin:
        raise Forbidden("forbidden", "you can read only your own costs")
    if requested == "all":
        return None
    repos.users.require(requested)
    return requested


@api.route("GET", "/snapshots", query=SnapshotQuery, response=page_of(CostSnapshot))
def list_snapshots(req: Request):
    """Cost snapshots in a time range, oldest first."""
    q = req.query
    if q.start is not None and q.end is not None and q.end <= q.start:
        return {"items": [], "nextCursor": None}  # an empty range (as Stripe's created[gte] > created[lt])
    user = scope(req, q.userId)
    ranges = tuple(r for r in (("fetchedAt", ">=", q.start), ("fetchedAt", "<", q.end)) if r[2] is not None)
    equals = {"userId": user} if user else {}
    return repos.cost_snapshots.page(equals, (("fetchedAt", "ASCENDING"),), q.limit, q.cursor, ranges)


@api.route("GET", "/activity", query=ActivityQuery, response=ActivityReport)
def get_activity(req: Request):
    """OpenRouter activity over a date range, grouped by date or model, with totals."""
    q = req.query
    return reports.activity(scope(req, q.userId), q.start, q.end, q.groupBy)


@api.route("GET", "/summary", query=SummaryQuery, response=SummaryReport, text=True)
def get_summary(req: Request):
    """This month's spend by source (OpenRouter, OpenAI, GCP) and the change against last month."""
    q = req.query
    now = clock.now_ms()
    current = datetime.fromtimestamp(now / 1000, timezone.utc).strftime("%Y-%m")
    month = q.month or current
    user = scope(req, q.userId)
    out = reports.summary(user, month)
    out.update(projectedUsd=None, budget=None)  # always sent (null: a past month, or all users)
    if q.format == "text":
        return text_response(reports.summary_text(out, so_far=out["month"] == current))
    if month == current:
        out["projectedUsd"] = spend.projected(out["sources"]["total"]["thisMonth"], month, now)
        if user:
            out["budget"] = _budget_view(user, out["sources"]["total"]["thisMonth"], now)
    return out


def _budget_view(user_id: str, summary_total: float | None, now: int) -> dict | None:
    """The stored evaluation, or the summary's total when that is higher (activity pulled since)."""
    b = budgets.get(user_id)
    v = spend.view(b, now)
    if v is not None and summary_total is not None and summary_total > v["spentUsd"]:
        v.update(spentUsd=round(summary_total, 2), projectedUsd=spend.projected(summary_total, v["month"], now),
                 percent=spend.percent(summary_total, v["monthlyUsd"]))
    return v


@api.route("GET", "/budget", query=BudgetQuery, response=BudgetView)
def get_budget(req: Request):
    """My monthly budgets (account and per bot), this month's spend against them and the projection."""
    user = scope(req, req.query.userId)
    v = _budget_view(user, None, clock.now_ms()) if user is not None else None  # all users: no one budget
    if v is None:
        raise NotFound("not_found", "no budget set")
    return v


def _provider(exc: spend.SpendError, message: str) -> Unavailable | UpstreamFailed:
    if exc.transient:
        return Unavailable("provider_unavailable", message)
    return UpstreamFailed("provider_error", message)


@api.route("PUT", "/budget", body=BudgetBody, response=BudgetView)
def put_budget(req: Request):
    """Set my budgets; a raise (or no budget) lifts what the old one stopped or capped."""
    from shared.deploy import access

    b = req.body
    if b.monthlyUsd is None and not b.deployments:
        raise Invalid("invalid_body", "set monthlyUsd, deployments, or both")
    deps = {}
    for d in b.deployments:
        access.owned(d.deploymentId, req.caller)  # 404 for another user's
        deps[d.deploymentId] = DeploymentBudget(monthlyUsd=d.monthlyUsd, action=d.action)
    try:
        spend.set_budget(req.caller.id, b.monthlyUsd, b.action, deps)
    except spend.SpendError as exc:
        raise _provider(exc, f"budget saved; lifting the cap failed: {exc}") from None
    return spend.view(budgets.get(req.caller.id), clock.now_ms())


@api.route("DELETE", "/budget", status=204)
def delete_budget(req: Request):
    """Remove my budgets, lifting what they stopped or capped."""
    if budgets.get(req.caller.id) is None:
        raise NotFound("not_found", "no budget set")
    try:
        spend.set_budget(req.caller.id, None, "notify", {})
    except spend.SpendError as exc:
        raise _provider(exc, f"lifting the cap failed: {exc}") from None
    budgets.delete(req.caller.id)


@api.route("GET", "/runs/{runId}", access="admin", response=RunReport)
def get_run(req: Request):
    """Admin: a pull run's progress and ok / failed counts."""
    return runs.report(runs_repo.require(req.params["runId"]))


@api.route("GET", "/accounts/{userId}", access="admin", response=CostAccount)
def get_account(req: Request):
    """Admin: the provider scopes costs are attributed to for a user."""
    return accounts.require(req.params["userId"])


@api.route("PUT", "/accounts/{userId}", access="admin", body=AccountBody, response=CostAccount)
def put_account(req: Request):
    """Admin: set the user's OpenRouter key hash and OpenAI project (overrides what the pulls derive from
    the deployments' keys; see docs/COSTS.md)."""
    uid = req.params["userId"]
    repos.users.require(uid)
    known = accounts.get(uid)  # what the pulls derived stays (the admin's fields override it)
    acct = CostAccount(_id=uid, **req.body.model_dump(), updatedAt=clock.now_ms(),
                       auto=known.auto if known else None, autoUpdatedAt=known.autoUpdatedAt if known else None)
    return accounts.set(acct)
