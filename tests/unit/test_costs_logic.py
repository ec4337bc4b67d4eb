"""The costs domain's arithmetic: activity sums (exact decimals), the GCP estimate from list prices,
which VMs the operator pays for, months and month-over-month changes, the chat summary."""
from __future__ import annotations

import pytest

from shared.costs import pricing, reports


def row(date, model, cost, requests=1, prompt=10, completion=5):
    return {"date": date, "model": model, "totalCostUsd": cost, "requests": requests,
            "promptTokens": prompt, "completionTokens": completion}


def test_activity_totals_per_date_and_per_model_are_exact():
    rows = [row("2026-05-01", "a", 0.1), row("2026-05-01", "b", 0.2), row("2026-05-02", "a", 0.7, requests=3),
            row("2026-05-02", "b", None, requests=0, prompt=0, completion=0)]
    by_date = reports.totals(rows, "date")
    assert [g["date"] for g in by_date["groups"]] == ["2026-05-01", "2026-05-02"]
    assert by_date["groups"][0]["totalCostUsd"] == 0.3  # Decimal sums: not 0.30000000000000004
    assert by_date["totals"] == {"requests": 5, "promptTokens": 30, "completionTokens": 15, "totalCostUsd": 1.0}
    by_model = reports.totals(rows, "model")
    assert [(g["model"], g["totalCostUsd"]) for g in by_model["groups"]] == [("a", 0.8), ("b", 0.2)]  # costliest first
    assert by_model["totals"] == by_date["totals"] and by_model["groupBy"] == "model"
    assert reports.totals([], "date") == {"groupBy": "date", "groups": [], "totals": {
        "requests": 0, "promptTokens": 0, "completionTokens": 0, "totalCostUsd": 0.0}}


def test_months():
    start, end, first, last = reports.month_bounds("2024-02")
    assert (first, last) == ("2024-02-01", "2024-02-29") and end - start == 29 * 86_400_000
    assert reports.month_bounds("2025-12")[3] == "2025-12-31"
    assert reports.previous_month("2026-01") == "2025-12" and reports.previous_month("2026-10") == "2026-09"


def test_month_over_month_change_and_summary_text():
    assert reports._change(3.0, 2.0) == {"thisMonth": 3.0, "lastMonth": 2.0, "change": 1.0, "changePct": 50.0}
    assert reports._change(1.0, 0)["changePct"] is None
    report = {"month": "2026-05", "sources": {
        "total": reports._change(12.5, 10.0), "openrouter": reports._change(12.5, 10.0),
        "openai": reports._change(0, 0), "gcp": reports._change(0, 0)}, "openrouterBalance": 3.25}
    assert reports.summary_text(report, so_far=True) == (
        "Costs for May 2026 so far: $12.50 (last month $10.00, +25%)\n"
        "- AI models (OpenRouter): $12.50 (last month $10.00, +25%)\n"
        "OpenRouter credit left: $3.25\n")


def test_gcp_estimate_follows_list_prices_and_status():
    shape = pricing.Shape("e2-medium", 20, "pd-balanced")
    hour = pricing.HOUR_MS
    deps = [{"createdAt": 0, "status": "running"}, {"createdAt": 10 * hour, "status": "stopped"}]
    disk_hour = 20 * 0.10 / pricing.HOURS_PER_MONTH
    expected = 100 * (0.033503 + disk_hour) + 90 * disk_hour  # a stopped VM pays its disk only
    assert pricing.estimate(deps, shape, 0, 100 * hour) == round(expected, 6)
    assert pricing.estimate(deps, shape, 200 * hour, 100 * hour) == 0  # nothing after the period's end
    with pytest.raises(ValueError, match="machine type"):
        pricing.Shape("z9-huge", 20, "pd-balanced")


def test_only_the_operators_projects_are_estimated():
    deps = [{"gcpProject": "ours"}, {"gcpProject": "theirs"}, {}]
    assert pricing.billed_to_operator(deps, ("ours", "spare")) == [{"gcpProject": "ours"}, {}]  # no project: ours
    assert pricing.billed_to_operator(deps, ()) == deps  # local: all
