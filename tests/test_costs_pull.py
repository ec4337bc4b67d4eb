"""pullCosts / pullOpenrouterActivity end to end: scheduler call -> run claim -> Cloud Tasks
stand-in -> worker over HTTP -> provider stand-in (real wire formats) -> Firestore emulator."""
from __future__ import annotations

import os
import threading
from datetime import datetime, timezone

import pytest
from costs_support import wait_run

from shared import repos
from shared.costs import pricing, runs
from shared.costs.ledger import CostAccount, accounts
from shared.costs.ledger import runs as runs_repo
from shared.costs.worker import activity_id
from shared.models import Deployment, User

HOUR = 3_600_000
SCHEDULE = "2026-11-15T06:00:00Z"
SCHEDULE_MS = int(datetime(2026, 11, 15, 6, tzinfo=timezone.utc).timestamp() * 1000)
NOV1 = int(datetime(2026, 11, 1, tzinfo=timezone.utc).timestamp() * 1000)
H = {n: f"{n:064x}" for n in range(1, 10)}  # OpenRouter key hashes


def user(uid: str, deployments=(("running", NOV1 - 30 * 24 * HOUR),), account=None):
    repos.users.set(User(_id=uid, clerkId=f"sub-{uid}", createdAt=1))
    for i, (status, created) in enumerate(deployments):
        repos.deployments.set(Deployment(_id=f"{uid}-d{i}", userId=uid, gcpProject="p", zone="us-central1-a",
                                         vmName=f"vm-{uid}-{i}", status=status, botName="bot", primaryModel="m",
                                         createdAt=created))
    if account:
        accounts.set(CostAccount(_id=uid, updatedAt=1, **account))


def schedule(client, fn: str, at: str = SCHEDULE):
    return client.post(f"/{fn}", json={}, headers={"X-CloudScheduler-ScheduleTime": at})


def gcp(deps) -> float:
    shape = pricing.Shape("e2-medium", 20, "pd-balanced")
    total = 0.0
    for status, created in deps:
        hours = (SCHEDULE_MS - max(created, NOV1)) / HOUR
        total += hours * 20 * 0.10 / 730 + (hours * 0.033503 if status == "running" else 0)
    deployments = [{"status": s, "createdAt": c} for s, c in deps]
    assert pricing.estimate(deployments, shape, NOV1, SCHEDULE_MS) == round(total, 6)
    return round(total, 6)


def test_pull_costs_snapshots_exact_and_run_once(client, providers):
    providers.set(keys={H[1]: {"limit": 10.0, "usage": 2.5}, H[2]: {"limit": None, "usage": 4.0}},
                  openai={"proj_u4": {"2026-10-31": 9.0, "2026-11-01": 1.25, "2026-11-14": 0.5, "2026-11-15": 0.25}},
                  maxPage=4)  # 15 daily buckets: 4 pages to follow
    two = (("running", NOV1 + 24 * HOUR), ("stopped", NOV1 - 24 * HOUR))
    user("u1", account={"openrouterKeyHash": H[1]})
    user("u2", deployments=two, account={"openrouterKeyHash": H[2]})
    user("u3")  # no provider scope: GCP only
    user("u4", account={"openaiProjectId": "proj_u4"})
    repos.users.set(User(_id="u5", clerkId="sub-u5", createdAt=1))  # no deployment: not pulled

    resp = schedule(client, "pullCosts")
    assert resp.status_code == 202, resp.json
    assert resp.json["started"] and resp.json["users"] == 4 and resp.json["batches"] == 2
    report = wait_run(resp.json["runId"])
    assert (report["ok"], report["failed"], report["skipped"]) == (4, 0, 0)
    assert report["providerCalls"] == 2 + 1 + 4  # two keys, the account's credits once, 4 cost pages

    snaps = {s.userId: s for s in repos.cost_snapshots.all({}, (("fetchedAt", "ASCENDING"),))}
    assert set(snaps) == {"u1", "u2", "u3", "u4"}
    assert all(s.fetchedAt == SCHEDULE_MS for s in snaps.values())
    assert snaps["u1"].openrouterBalance == 7.5  # the key's own limit
    assert snaps["u2"].openrouterBalance == 75.0  # no limit: the account pool (100 - 25)
    assert snaps["u4"].openaiSpend == 2.0  # Nov 1 .. Nov 15 06:00, Oct 31 outside
    assert snaps["u1"].openaiSpend is None and snaps["u3"].openrouterBalance is None
    assert snaps["u2"].gcpEstimate == gcp(two)
    assert snaps["u3"].gcpEstimate == gcp((("running", NOV1 - 30 * 24 * HOUR),))

    # Cloud Scheduler delivers again: the same run, nothing dispatched twice
    again = schedule(client, "pullCosts")
    assert again.status_code == 200 and not again.json["started"] and again.json["runId"] == report["runId"]
    # a re-delivered task: the batch is done already, its counts do not grow
    payload = {"runId": report["runId"], "kind": "costs", "batch": 0, "scheduleTime": SCHEDULE_MS,
               "users": [{"userId": "u1", "deployments": []}]}
    dup = client.post("/costPullWorker", json=payload, headers={"X-CloudTasks-QueueName": "cost-pulls",
                                                                "X-CloudTasks-TaskName": "redelivered"})
    assert dup.status_code == 200 and dup.json["duplicate"]
    assert wait_run(report["runId"])["ok"] == 4
    assert len(repos.cost_snapshots.all({}, (("fetchedAt", "ASCENDING"),))) == 4


def test_pull_costs_isolates_failures(client, providers):
    keys = {H[n]: {"limit": 5.0, "usage": 1.0} for n in range(1, 7)}
    providers.set(keys=keys, openai={"proj_a": {"2026-11-02": 3.0}}, faults={
        H[1]: ["429", "500"],  # recovers on the third try
        H[2]: ["500!"],  # always failing
        H[3]: ["timeout!"],
        H[4]: ["malformed!"],
        H[5]: ["badshape"],  # wrong shape is not retried
        "proj_a": ["429"],
    })
    for n in range(1, 7):
        user(f"u{n}", account={"openrouterKeyHash": H[n], **({"openaiProjectId": "proj_a"} if n == 6 else {})})

    report = wait_run(schedule(client, "pullCosts").json["runId"])
    assert (report["ok"], report["failed"]) == (2, 4)
    errors = {f["userId"]: f["error"] for f in report["failures"]}
    assert errors["u2"] == "HTTP 500 after 3 attempts"
    assert errors["u3"] == "timeout after 3 attempts"
    assert errors["u4"] == "malformed body: not JSON"
    assert errors["u5"].startswith("malformed body: data")
    snaps = {s.userId: s for s in repos.cost_snapshots.all({}, (("fetchedAt", "ASCENDING"),))}
    assert set(snaps) == {"u1", "u6"}
    assert snaps["u1"].openrouterBalance == 4.0 and snaps["u6"].openaiSpend == 3.0


def test_openai_spend_asked_per_chunk_of_projects(client, providers, monkeypatch):
    """One costs call (and its pages) for several users' projects, attributed per project; a call that
    fails fails the users of its projects only."""
    from shared.costs import worker

    monkeypatch.setattr(worker, "OPENAI_PROJECTS_PER_CALL", 2)  # 3 projects in the batch: 2 calls
    providers.set(openai={"proj_a": {"2026-11-02": 3.0, "2026-11-14": 0.25}, "proj_b": {"2026-11-03": 7.0},
                          "proj_c": {"2026-11-04": 1.0}, "proj_z": {"2026-11-02": 100.0}},  # proj_z: nobody's
                  maxPage=4, faults={"proj_c": ["500!"]})
    for n, pid in ((1, "proj_a"), (2, "proj_b"), (3, "proj_c")):
        user(f"u{n}", account={"openaiProjectId": pid})

    report = wait_run(schedule(client, "pullCosts").json["runId"])
    assert (report["ok"], report["failed"]) == (2, 1)
    assert report["failures"] == [{"userId": "u3", "error": "HTTP 500 after 3 attempts"}]
    assert report["providerCalls"] == 4 + 3  # proj_a+proj_b: 4 pages of 15 days; proj_c: 3 attempts
    snaps = {s.userId: s for s in repos.cost_snapshots.all({}, (("fetchedAt", "ASCENDING"),))}
    assert set(snaps) == {"u1", "u2"} and (snaps["u1"].openaiSpend, snaps["u2"].openaiSpend) == (3.25, 7.0)


def test_openai_costs_stand_in_filters_and_groups_as_the_api(providers):
    """The stand-in's costs endpoint: project_ids[] filters, group_by[]=project_id splits per project;
    without group_by the projects' costs come summed with project_id null (so cannot be attributed)."""
    import httpx

    providers.set(openai={"proj_a": {"2026-11-02": 3.0}, "proj_b": {"2026-11-02": 7.0}, "proj_z": {"2026-11-02": 1.0}})
    url = f"{providers.url}/openai/v1/organization/costs"
    start = int(datetime(2026, 11, 2, tzinfo=timezone.utc).timestamp())
    auth = {"Authorization": f"Bearer {os.environ['OPENAI_ADMIN_KEY']}"}
    day = [("start_time", start), ("end_time", start + 86_400)]
    base = [*day, ("project_ids[]", "proj_a"), ("project_ids[]", "proj_b")]

    def results(params):
        r = httpx.get(url, params=params, headers=auth)
        assert r.status_code == 200, r.text
        return [(x["project_id"], x["amount"]["value"]) for b in r.json()["data"] for x in b["results"]]

    assert results([*base, ("group_by[]", "project_id")]) == [("proj_a", 3.0), ("proj_b", 7.0)]
    assert results(base) == [(None, 10.0)]
    assert results([*day, ("group_by", "project_id")]) == [
        ("proj_a", 3.0), ("proj_b", 7.0), ("proj_z", 1.0)]  # no filter: every project


def activity_rows():
    return {(a.userId, a.date, a.model): a for a in repos.openrouter_activity.all({}, (("date", "ASCENDING"),))}


def item(date, model, provider, requests, prompt, completion, usage):
    from devtools.standins.providers import activity_item

    return activity_item(date, model, provider, requests, prompt, completion, usage)


def test_activity_pull_upserts_and_repulls_previous_day(client, providers):
    sonnet, mini = "anthropic/claude-sonnet-4", "openai/gpt-4.1-mini"
    day1 = [item("2026-11-14", sonnet, "Anthropic", 3, 300, 60, 0.1),
            item("2026-11-14", sonnet, "Google", 2, 200, 40, 0.2),  # same model, second endpoint
            item("2026-11-14", mini, "OpenAI", 1, 10, 5, 0.0004)]
    providers.set(activity={H[1]: {"2026-11-14": day1, "2026-11-13": []}})  # the 13th: an empty day
    user("u1", account={"openrouterKeyHash": H[1]})
    user("u2")  # no OpenRouter key: skipped, not failed

    report = wait_run(schedule(client, "pullOpenrouterActivity").json["runId"])
    assert (report["ok"], report["failed"], report["skipped"]) == (1, 0, 1)
    rows = activity_rows()
    assert set(rows) == {("u1", "2026-11-14", sonnet), ("u1", "2026-11-14", mini)}
    s = rows[("u1", "2026-11-14", sonnet)]
    assert (s.requests, s.promptTokens, s.completionTokens, s.totalCostUsd) == (5, 500, 100, 0.3)
    assert s.id == activity_id("u1", "2026-11-14", sonnet)

    # six hours later the 14th has grown; the 15th is not complete yet, so it is not asked for
    day1[0] = item("2026-11-14", sonnet, "Anthropic", 4, 400, 80, 0.15)
    providers.set(activity={H[1]: {"2026-11-14": day1, "2026-11-13": []}})
    wait_run(schedule(client, "pullOpenrouterActivity", "2026-11-15T12:00:00Z").json["runId"])
    rows = activity_rows()
    assert len(rows) == 2
    s = rows[("u1", "2026-11-14", sonnet)]
    assert (s.requests, s.promptTokens, s.totalCostUsd) == (6, 600, 0.35)  # replaced, not added

    # next day: the 15th is pulled and the 14th pulled once more (the previous day)
    day2 = [item("2026-11-15", mini, "OpenAI", 7, 70, 7, 0.0028)]
    providers.set(activity={H[1]: {"2026-11-14": day1, "2026-11-15": day2}})
    wait_run(schedule(client, "pullOpenrouterActivity", "2026-11-16T00:00:00Z").json["runId"])
    rows = activity_rows()
    assert len(rows) == 3 and rows[("u1", "2026-11-15", mini)].requests == 7
    assert rows[("u1", "2026-11-14", sonnet)].requests == 6


def test_activity_failures_isolated(client, providers):
    ok = [item("2026-11-14", "m/a", "P", 1, 1, 1, 0.5)]
    providers.set(activity={H[1]: {"2026-11-14": ok}, H[2]: {"2026-11-14": ok}, H[3]: {"2026-11-14": ok}},
                  faults={f"{H[2]}@2026-11-13": ["500!"], H[3]: ["malformed!"]})
    for n in (1, 2, 3):
        user(f"u{n}", account={"openrouterKeyHash": H[n]})
    report = wait_run(schedule(client, "pullOpenrouterActivity").json["runId"])
    assert (report["ok"], report["failed"]) == (1, 2)
    assert {u for u, _, _ in activity_rows()} == {"u1"}  # a failed user is written nothing


def test_admin_on_demand_and_access(api, callers, providers):
    user("u1")
    assert api("POST", "/pullCosts", json={}).status_code == 401
    assert api("POST", "/pullCosts", callers["owner"], json={}).status_code == 403
    forged = api("POST", "/pullCosts", callers["owner"], json={}, headers={"X-CloudScheduler-ScheduleTime": SCHEDULE})
    assert forged.status_code == 403  # the header alone does not make a scheduler call
    body = {"scheduleTime": "2026-11-20T10:00:00Z"}
    first = api("POST", "/pullCosts", callers["admin"], json=body)
    assert first.status_code == 202 and first.json["trigger"] == "admin"
    assert first.json["requestedBy"] == callers["admin"].user_id
    assert api("POST", "/pullCosts", callers["admin"], json=body).status_code == 200  # same run
    report = wait_run(first.json["runId"])
    got = api("GET", f"/pullCosts/runs/{report['runId']}", callers["admin"])
    assert got.status_code == 200 and got.json["ok"] == 1 and got.json["finished"]
    assert api("GET", f"/pullOpenrouterActivity/runs/{report['runId']}", callers["admin"]).status_code == 404
    assert api("POST", "/pullCosts", callers["admin"], json={"scheduleTime": "soon"}).status_code == 422
    assert api("POST", "/pullCosts", callers["admin"], json={"extra": 1}).status_code == 422
    assert api("POST", "/costPullWorker", json={"runId": "x"}).status_code in (403, 422)


def test_claim_is_once_under_concurrent_deliveries(providers):
    results = []

    def deliver():
        results.append(runs.claim("costs", SCHEDULE_MS, "scheduler", None)[1])

    threads = [threading.Thread(target=deliver) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False, False, True]


def test_stale_claim_is_taken_over(client, providers):
    user("u1")
    run, owned = runs.claim("costs", SCHEDULE_MS, "scheduler", None)
    assert owned
    # the fan-out died before dispatching: while the lease holds, deliveries are told to retry later
    busy = schedule(client, "pullCosts")
    assert busy.status_code == 409 and busy.json["error"]["code"] == "run_in_progress"
    runs_repo.update(run.id, {"claimedUntil": 0})
    resp = schedule(client, "pullCosts")
    assert resp.status_code == 202 and resp.json["started"]
    assert wait_run(run.id)["ok"] == 1


@pytest.mark.parametrize("at", ["not-a-time", "2026-13-01T00:00:00Z"])
def test_bad_schedule_header(client, providers, at):  # noqa: F811
    resp = schedule(client, "pullCosts", at)
    assert resp.status_code == 400 and resp.json["error"]["code"] == "invalid_schedule_time"


def test_failed_fan_out_releases_its_claim(client, providers, monkeypatch):
    from shared.costs import settings

    user("u1")
    monkeypatch.setenv("COSTS_QUEUE", "no-such-queue")  # the enqueue fails
    settings.reset()
    with pytest.raises(Exception):  # noqa: B017  (whatever the queue's client raises)
        runs.start("costs", SCHEDULE_MS, "scheduler")
    assert runs_repo.require(runs.run_id("costs", SCHEDULE_MS)).claimedUntil == 0
    monkeypatch.undo()
    settings.reset()
    resp = schedule(client, "pullCosts")  # the scheduler's retry takes over at once
    assert resp.status_code == 202 and wait_run(resp.json["runId"])["ok"] == 1
