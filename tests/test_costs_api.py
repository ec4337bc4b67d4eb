"""The `costs` function against the Firestore emulator: scope rules, ranges, grouping, exact totals."""
from __future__ import annotations

from datetime import datetime, timezone

from shared import repos
from shared.costs.ledger import CostRun
from shared.costs.ledger import runs as runs_repo
from shared.costs.worker import activity_id
from shared.models import CostSnapshot, OpenrouterActivity, User


def ms(y, m, d, h=0) -> int:
    return int(datetime(y, m, d, h, tzinfo=timezone.utc).timestamp() * 1000)


def snap(uid, at, balance=None, openai=None, gcp=None):
    repos.cost_snapshots.set(CostSnapshot(_id=f"{uid}-{at}", userId=uid, openrouterBalance=balance,
                                          openaiSpend=openai, gcpEstimate=gcp, fetchedAt=at))


def act(uid, date, model, requests, prompt, completion, cost):
    repos.openrouter_activity.set(OpenrouterActivity(
        _id=activity_id(uid, date, model), userId=uid, date=date, model=model, requests=requests,
        promptTokens=prompt, completionTokens=completion, totalCostUsd=cost))


def test_snapshots_scope_range_and_pages(api, callers):
    owner, other = callers["owner"], callers["other"]
    assert api("GET", "/users/me", owner).status_code == 200  # creates the owner's user document
    for h in range(5):
        snap(owner.user_id, ms(2026, 11, 1, h), balance=10 - h)
    snap("someone", ms(2026, 11, 1, 2), balance=1)

    mine = api("GET", f"/costs/snapshots?from={ms(2026, 11, 1, 1)}&to={ms(2026, 11, 1, 4)}&limit=2", owner)
    assert mine.status_code == 200
    assert [s["openrouterBalance"] for s in mine.json["items"]] == [9, 8]
    more = api("GET", f"/costs/snapshots?from={ms(2026, 11, 1, 1)}&to={ms(2026, 11, 1, 4)}&limit=2"
                      f"&cursor={mine.json['nextCursor']}", owner)
    assert [s["openrouterBalance"] for s in more.json["items"]] == [7] and more.json["nextCursor"] is None

    assert api("GET", f"/costs/snapshots?userId={owner.user_id}", other).status_code == 403
    assert api("GET", "/costs/snapshots?userId=all", other).status_code == 403
    assert api("GET", "/costs/snapshots", callers["anonymous"]).status_code == 401
    assert len(api("GET", f"/costs/snapshots?userId={owner.user_id}", callers["admin"]).json["items"]) == 5
    assert len(api("GET", "/costs/snapshots?userId=all&limit=100", callers["admin"]).json["items"]) == 6
    assert api("GET", "/costs/snapshots?userId=nobody", callers["admin"]).status_code == 404
    inverted = api("GET", f"/costs/snapshots?from={ms(2026, 11, 2)}&to={ms(2026, 11, 1)}", owner)
    assert inverted.status_code == 200 and inverted.json == {"items": [], "nextCursor": None}  # an empty range
    assert api("GET", "/costs/snapshots?since=1", owner).status_code == 422


def test_activity_grouped_with_exact_totals(api, callers):
    owner = callers["owner"]
    uid = owner.user_id
    act(uid, "2026-11-01", "a/x", 3, 300, 30, 0.1)
    act(uid, "2026-11-01", "b/y", 1, 100, 10, 0.2)
    act(uid, "2026-11-02", "a/x", 2, 200, 20, 0.7)
    act(uid, "2026-11-05", "a/x", 9, 900, 90, 9.0)  # outside the range
    act("someone", "2026-11-01", "a/x", 100, 1, 1, 5.0)

    by_date = api("GET", "/costs/activity?from=2026-11-01&to=2026-11-03", owner)
    assert by_date.status_code == 200, by_date.json
    assert by_date.json["groups"] == [
        {"date": "2026-11-01", "requests": 4, "promptTokens": 400, "completionTokens": 40, "totalCostUsd": 0.3},
        {"date": "2026-11-02", "requests": 2, "promptTokens": 200, "completionTokens": 20, "totalCostUsd": 0.7},
    ]
    assert by_date.json["totals"] == {"requests": 6, "promptTokens": 600, "completionTokens": 60, "totalCostUsd": 1.0}

    by_model = api("GET", "/costs/activity?from=2026-11-01&to=2026-11-03&groupBy=model", owner).json
    assert [(g["model"], g["requests"], g["totalCostUsd"]) for g in by_model["groups"]] == \
        [("a/x", 5, 0.8), ("b/y", 1, 0.2)]

    everyone = api("GET", "/costs/activity?userId=all&from=2026-11-01&to=2026-11-01", callers["admin"]).json
    assert everyone["totals"]["requests"] == 104 and everyone["totals"]["totalCostUsd"] == 5.3

    for q in ("from=2026-02-30&to=2026-03-01", "from=0000-01-01&to=2026-03-01",
              "from=2026-11-01&to=2026-11-02&groupBy=provider", "to=2026-11-02"):
        assert api("GET", f"/costs/activity?{q}", owner).status_code == 422, q
    inverted = api("GET", "/costs/activity?from=2026-11-03&to=2026-11-01", owner)  # an empty range, as Stripe's
    assert inverted.status_code == 200 and inverted.json["groups"] == [] and inverted.json["totals"]["requests"] == 0
    long = api("GET", "/costs/activity?from=2025-01-01&to=2026-11-01", owner).json  # 366 days at most, said
    assert (long["from"], long["to"]) == ("2025-01-01", "2026-01-01")


def test_summary_by_source_against_last_month(api, callers):
    owner, admin = callers["owner"], callers["admin"]
    uid = owner.user_id
    # last month (October): month-to-date values grow; the last snapshot counts
    snap(uid, ms(2026, 10, 10), balance=50, openai=1.0, gcp=5.0)
    snap(uid, ms(2026, 10, 31, 18), balance=40, openai=4.0, gcp=20.0)
    act(uid, "2026-10-31", "a/x", 1, 1, 1, 2.5)
    # this month
    snap(uid, ms(2026, 11, 14), balance=35, openai=3.0, gcp=11.0)
    snap(uid, ms(2026, 11, 15), balance=30, openai=5.0, gcp=12.5)
    act(uid, "2026-11-01", "a/x", 1, 1, 1, 1.25)
    act(uid, "2026-11-14", "b/y", 1, 1, 1, 3.75)
    act(uid, "2026-12-01", "b/y", 1, 1, 1, 99.0)  # next month

    got = api("GET", "/costs/summary?month=2026-11", owner)
    assert got.status_code == 200, got.json
    s = got.json["sources"]
    assert s["openrouter"] == {"thisMonth": 5.0, "lastMonth": 2.5, "change": 2.5, "changePct": 100.0}
    assert s["openai"] == {"thisMonth": 5.0, "lastMonth": 4.0, "change": 1.0, "changePct": 25.0}
    assert s["gcp"] == {"thisMonth": 12.5, "lastMonth": 20.0, "change": -7.5, "changePct": -37.5}
    assert s["total"]["thisMonth"] == 22.5 and s["total"]["lastMonth"] == 26.5
    assert got.json["openrouterBalance"] == 30 and got.json["previousMonth"] == "2026-10"

    jan = api("GET", "/costs/summary?month=2027-01", owner).json
    assert jan["previousMonth"] == "2026-12" and jan["sources"]["openrouter"]["lastMonth"] == 99.0
    assert jan["sources"]["openai"]["changePct"] is None  # nothing last month to compare with

    # all users: OpenRouter summed over the month; OpenAI/GCP as of the month's last dispatched run
    repos.users.set(User(_id="u2", clerkId="s2", createdAt=1))
    at = ms(2026, 11, 15)
    snap("u2", at, openai=2.0, gcp=1.5)
    runs_repo.set(CostRun(_id="r1", kind="costs", scheduleTime=at, trigger="scheduler", status="dispatched",
                          claimedUntil=0, createdAt=at))
    act("u2", "2026-11-03", "a/x", 1, 1, 1, 0.5)
    total = api("GET", "/costs/summary?userId=all&month=2026-11", admin).json
    assert total["asOf"] == at
    assert total["sources"]["openrouter"]["thisMonth"] == 5.5
    assert total["sources"]["openai"]["thisMonth"] == 7.0 and total["sources"]["gcp"]["thisMonth"] == 14.0
    assert api("GET", "/costs/summary?userId=all", owner).status_code == 403
    assert api("GET", "/costs/summary?month=2026-13", owner).status_code == 422
    for month in ("0000-01", "0001-01", "1969-12", "9999-12"):  # a neighbour month would not be a date
        assert api("GET", f"/costs/summary?month={month}", owner).status_code == 422, month


def test_accounts_are_admin_only_and_validated(api, callers):
    admin, owner = callers["admin"], callers["owner"]
    assert api("GET", "/users/me", owner).status_code == 200
    body = {"openrouterKeyHash": "a" * 64, "openaiProjectId": "proj_abc123"}
    assert api("PUT", f"/costs/accounts/{owner.user_id}", owner, json=body).status_code == 403
    put = api("PUT", f"/costs/accounts/{owner.user_id}", admin, json=body)
    assert put.status_code == 200 and put.json["openaiProjectId"] == "proj_abc123"
    assert api("GET", f"/costs/accounts/{owner.user_id}", admin).json["openrouterKeyHash"] == "a" * 64
    assert api("PUT", f"/costs/accounts/{owner.user_id}", admin, json={"openrouterKeyHash": "xyz"}).status_code == 422
    assert api("PUT", "/costs/accounts/nobody", admin, json=body).status_code == 404
    assert api("GET", "/costs/runs/nope", admin).status_code == 404



def test_the_bot_reads_its_owners_summary_as_json_or_chat_text(kb, callers, monkeypatch):
    """`Authorization: Bot <token>` (kb: the Secret Manager stand-in holds the token): the summary only."""
    from knowledge_support import bot, make_deployment

    from shared import bot_credentials, clock

    owner = callers["owner"]
    uid = owner.user_id
    kb("GET", "/users/me", owner)
    token = bot_credentials.issue(make_deployment(uid), uid)
    monkeypatch.setattr(clock, "now_ms", lambda: ms(2026, 11, 20))
    snap(uid, ms(2026, 10, 31), balance=40, openai=4.0, gcp=20.0)
    snap(uid, ms(2026, 11, 15), balance=30.5, openai=5.0, gcp=12.5)
    act(uid, "2026-11-14", "b/y", 1, 1, 1, 1234.5)
    act(uid, "2026-10-14", "b/y", 1, 1, 1, 1000)

    got = kb("GET", "/costs/summary", headers=bot(token))
    assert got.status_code == 200 and got.json["userId"] == uid and got.json["month"] == "2026-11"
    text = kb("GET", "/costs/summary?format=text", headers=bot(token))
    assert text.status_code == 200 and text.mimetype == "text/plain"
    assert text.get_data(as_text=True) == (
        "Costs for November 2026 so far: $1,252.00 (last month $1,024.00, +22%)\n"
        "- AI models (OpenRouter): $1,234.50 (last month $1,000.00, +23%)\n"
        "- OpenAI: $5.00 (last month $4.00, +25%)\n"
        "- Bot server (Google Cloud): $12.50 (last month $20.00, -38%)\n"
        "OpenRouter credit left: $30.50\n")
    past = kb("GET", "/costs/summary?format=text&month=2026-09", headers=bot(token)).get_data(as_text=True)
    assert past == "Costs for September 2026: $0.00\n"
    assert kb("GET", "/costs/summary?format=html", headers=bot(token)).status_code == 422
    # its owner's costs only, and nothing but the summary
    assert kb("GET", f"/costs/summary?userId={callers['other'].user_id}", headers=bot(token)).status_code == 403
    assert kb("GET", "/costs/summary?userId=all", headers=bot(token)).status_code == 403
    assert kb("GET", "/costs/snapshots", headers=bot(token)).status_code == 403
    assert kb("GET", "/costs/activity?from=2026-11-01&to=2026-11-02", headers=bot(token)).status_code == 403
    assert kb("GET", "/costs/summary", headers=bot("ocb.dep1.wrong")).status_code == 401
    bot_credentials.revoke("dep1")
    assert kb("GET", "/costs/summary", headers=bot(token)).status_code == 401
