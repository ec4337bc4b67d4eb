"""Read models of the `costs` function: activity grouped by date or model, and the
monthly summary by source with the change against the month before."""
from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

from google.cloud.firestore_v1 import aggregation

from shared import repos
from shared.costs import settings
from shared.costs.ledger import runs as runs_repo
from shared.errors import Invalid

ASC, DESC = "ASCENDING", "DESCENDING"
METRICS = ("requests", "promptTokens", "completionTokens", "totalCostUsd")


def _dec(v) -> Decimal:
    return Decimal(repr(float(v))) if v is not None else Decimal(0)


def _capped(query, what: str) -> list[dict]:
    cap = settings.get().max_rows
    rows = [s.to_dict() for s in query.limit(cap + 1).stream()]
    if len(rows) > cap:
        raise Invalid("range_too_large", f"more than {cap} {what} in this range: narrow it")
    return rows


def activity(user_id: str | None, start: str, end: str, group_by: str) -> dict:
    """Totals of requests, tokens and cost per date or per model over [start, end] (dates inclusive)."""
    equals = {"userId": user_id} if user_id else {}
    q = repos.openrouter_activity.query(equals, (("date", ASC),), (("date", ">=", start), ("date", "<=", end)))
    rows = _capped(q.select(["date", "model", *METRICS]), "activity rows")
    return {"userId": user_id or "all", "from": start, "to": end, **totals(rows, group_by)}


def totals(rows: list[dict], group_by: str) -> dict:
    """Activity rows summed per `group_by` value (date or model) and overall; costs in Decimal, so
    a sum of many small float costs does not drift (0.1 + 0.2 is 0.3)."""
    groups: dict[str, dict] = {}
    for r in rows:
        g = groups.setdefault(r[group_by], {m: Decimal(0) for m in METRICS})
        for m in METRICS:
            g[m] += _dec(r.get(m)) if m == "totalCostUsd" else int(r.get(m) or 0)
    total = {m: sum((g[m] for g in groups.values()), Decimal(0)) for m in METRICS}

    def out(g):
        return {**{m: int(g[m]) for m in METRICS[:3]}, "totalCostUsd": float(g["totalCostUsd"])}

    items = [{group_by: k, **out(g)} for k, g in sorted(groups.items())]
    if group_by == "model":
        items.sort(key=lambda i: (-i["totalCostUsd"], i["model"]))
    return {"groupBy": group_by, "groups": items, "totals": out(total)}


def month_bounds(month: str) -> tuple[int, int, str, str]:
    """[start ms, end ms) and first/last date of a YYYY-MM month (UTC)."""
    y, m = map(int, month.split("-"))
    first = date(y, m, 1)
    nxt = date(y + m // 12, m % 12 + 1, 1)
    ms = lambda d: int(datetime(d.year, d.month, d.day, tzinfo=timezone.utc).timestamp() * 1000)  # noqa: E731
    return ms(first), ms(nxt), first.isoformat(), date.fromordinal(nxt.toordinal() - 1).isoformat()


def previous_month(month: str) -> str:
    y, m = map(int, month.split("-"))
    return f"{y - 1}-12" if m == 1 else f"{y}-{m - 1:02d}"


def _sum(query, field: str) -> float:
    agg = aggregation.AggregationQuery(query)
    agg.sum(field, alias="s")
    result = agg.get()
    return float(result[0][0].value or 0)


def _month_user(user_id: str, month: str) -> dict:
    start, end, d0, d1 = month_bounds(month)
    snaps = repos.cost_snapshots.query({"userId": user_id}, (("fetchedAt", ASC),),
                                       (("fetchedAt", ">=", start), ("fetchedAt", "<", end)))
    latest: dict[str, float] = {}
    for row in _capped(snaps.select(["openaiSpend", "gcpEstimate", "openrouterBalance", "fetchedAt"]), "snapshots"):
        for f in ("openaiSpend", "gcpEstimate", "openrouterBalance"):
            if row.get(f) is not None:
                latest[f] = row[f]  # ascending: the last one wins (month-to-date values)
    act = activity(user_id, d0, d1, "date")["totals"]["totalCostUsd"]
    return {"openrouter": act, "openai": latest.get("openaiSpend", 0.0), "gcp": latest.get("gcpEstimate", 0.0),
            "openrouterBalance": latest.get("openrouterBalance")}


def _month_all(month: str) -> dict:
    """All users: OpenRouter by a sum aggregation over the month's activity; OpenAI and GCP
    as of the month's last dispatched costs run (its snapshots share its fetchedAt)."""
    start, end, d0, d1 = month_bounds(month)
    act_q = repos.openrouter_activity.query({}, (("date", ASC),), (("date", ">=", d0), ("date", "<=", d1)))
    out = {"openrouter": round(_sum(act_q, "totalCostUsd"), 6), "openai": 0.0, "gcp": 0.0, "asOf": None}
    q = runs_repo.query({"kind": "costs"}, (("scheduleTime", DESC),), (("scheduleTime", "<", end),))
    for snap in q.limit(10).stream():
        run = runs_repo.load(snap)
        if run.scheduleTime < start:
            break
        if run.status == "dispatched":
            same = repos.cost_snapshots.query({"fetchedAt": run.scheduleTime})
            out.update(openai=round(_sum(same, "openaiSpend"), 6), gcp=round(_sum(same, "gcpEstimate"), 6),
                       asOf=run.scheduleTime)
            break
    return out


def summary(user_id: str | None, month: str) -> dict:
    prev = previous_month(month)
    this, last = (_month_user(user_id, m) if user_id else _month_all(m) for m in (month, prev))
    sources = {}
    for s in ("openrouter", "openai", "gcp"):
        sources[s] = _change(this[s], last[s])
    sources["total"] = _change(sum(this[s] for s in ("openrouter", "openai", "gcp")),
                               sum(last[s] for s in ("openrouter", "openai", "gcp")))
    extra = {"openrouterBalance": this.get("openrouterBalance")} if user_id else {"asOf": this.get("asOf")}
    return {"userId": user_id or "all", "month": month, "previousMonth": prev, "sources": sources, **extra}


def _change(now: float, before: float) -> dict:
    now, before = round(now, 6), round(before, 6)
    diff = round(now - before, 6)
    return {"thisMonth": now, "lastMonth": before, "change": diff,
            "changePct": round(diff / before * 100, 2) if before else None}


LABELS = {"openrouter": "AI models (OpenRouter)", "openai": "OpenAI", "gcp": "Bot server (Google Cloud)"}


def _usd(v: float) -> str:
    return f"${v:,.2f}"


def _versus(c: dict) -> str:
    if c["lastMonth"] == 0:
        return "nothing last month" if c["thisMonth"] else ""
    pct = f"{c['changePct']:+.0f}%" if c["changePct"] is not None else ""
    return f"last month {_usd(c['lastMonth'])}, {pct}"


def summary_text(report: dict, *, so_far: bool) -> str:
    """The summary as a few short lines for a chat message (what the bot answers "what did I spend?")."""
    month = datetime.strptime(report["month"], "%Y-%m").strftime("%B %Y")
    total = report["sources"]["total"]
    lines = [f"Costs for {month}{' so far' if so_far else ''}: {_usd(total['thisMonth'])}"
             + (f" ({_versus(total)})" if _versus(total) else "")]
    for source, label in LABELS.items():
        c = report["sources"][source]
        if c["thisMonth"] or c["lastMonth"]:
            lines.append(f"- {label}: {_usd(c['thisMonth'])}" + (f" ({_versus(c)})" if _versus(c) else ""))
    if report.get("openrouterBalance") is not None:
        lines.append(f"OpenRouter credit left: {_usd(report['openrouterBalance'])}")
    return "\n".join(lines) + "\n"
