"""Spend caps (issue 17): budgets evaluated by each cost pull (scheduler -> Cloud Tasks -> worker ->
provider stand-in), thresholds notified once a month, the stop as a deploy job (once, lifted by a
raise), the OpenRouter key capped through the key-management API's wire format and restored by a new
month; the summary's budget and projection."""
from __future__ import annotations

from datetime import datetime, timezone

import httpx
import pytest
from costs_support import wait_run
from test_deployments_api import create

H = "ab" * 32  # the owner's OpenRouter key hash


def month_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m")


class Pulls:
    """Cost pulls at successive schedule times of this month (each time is a new run)."""

    def __init__(self, client, providers):
        self.client, self.providers, self.n = client, providers, 0

    def run(self, usage_monthly: float, at: str | None = None) -> None:
        self.providers.set(keys={H: {**self.key(), "usage": 40.0 + usage_monthly, "usage_monthly": usage_monthly}})
        self.n += 1
        at = at or f"{month_now()}-01T00:{self.n:02d}:00Z"
        r = self.client.post("/pullCosts", json={}, headers={"X-CloudScheduler-ScheduleTime": at})
        assert r.status_code == 202, r.json
        report = wait_run(r.json["runId"])
        assert report["ok"] == 1, report

    def key(self) -> dict:
        return httpx.get(f"{self.providers.url}/_control/state").json()["keys"].get(H, {"limit": 100.0})


@pytest.fixture
def setup(api, callers, denv, providers, client):
    from shared.costs.ledger import CostAccount, accounts

    owner = callers["owner"]
    dep, job = create(api, owner)
    assert denv.wait_job(job["_id"]).status == "completed"
    denv.wait_for(lambda: api("GET", f"/deployments/{dep['_id']}", owner).json["status"] == "running",
                  what="running")
    accounts.set(CostAccount(_id=owner.user_id, openrouterKeyHash=H, updatedAt=1))
    providers.set(keys={H: {"limit": 100.0, "usage": 40.0}})
    return dep, Pulls(client, providers)


def notes(user_id: str) -> list[tuple[str, int | None]]:
    from shared.notifications.store import notifications

    items = notifications.all({"userId": user_id}, (("createdAt", "DESCENDING"),))
    # only the spend notices (the user also hears of their bots' deploy jobs)
    return sorted((n.kind, n.data.get("threshold")) for n in items if not n.kind.startswith("deploy."))


def jobs_of(dep_id: str) -> list:
    from shared import repos

    return [j for j in repos.deploy_jobs.all({"deploymentId": dep_id})]


def test_thresholds_once_stop_once_and_lifted_by_a_raise(api, callers, denv, setup):
    dep, pulls = setup
    owner = callers["owner"]
    r = api("PUT", "/costs/budget", owner, json={"monthlyUsd": 10, "action": "stop"})
    assert r.status_code == 200 and r.json["monthlyUsd"] == 10 and r.json["stopped"] == []
    pulls.run(3.0)
    assert notes(owner.user_id) == []
    pulls.run(5.5)
    assert notes(owner.user_id) == [("spend.threshold", 50)]
    pulls.run(8.5)
    pulls.run(8.6)  # still 86 %: nothing new
    assert notes(owner.user_id) == [("spend.threshold", 50), ("spend.threshold", 80)]
    pulls.run(10.5)
    assert notes(owner.user_id) == [("spend.cap_reached", None), ("spend.threshold", 50), ("spend.threshold", 80),
                                    ("spend.threshold", 100)]
    stop = [j for j in jobs_of(dep["_id"]) if j.action == "stop"]
    assert len(stop) == 1 and "(by budget)" in stop[0].log
    assert denv.wait_job(stop[0].id).status == "completed"
    assert api("GET", f"/deployments/{dep['_id']}", owner).json["status"] == "stopped"
    pulls.run(12.0)  # over budget again: no second stop, no new notification
    assert len([j for j in jobs_of(dep["_id"]) if j.action == "stop"]) == 1 and len(notes(owner.user_id)) == 4
    b = api("GET", "/costs/budget", owner).json
    assert b["stopped"] == [dep["_id"]] and b["spentUsd"] >= 12.0 and b["percent"] >= 120
    assert b["thresholdsNotified"] == [50, 80, 100] and b["projectedUsd"] >= b["spentUsd"]
    summary = api("GET", "/costs/summary", owner).json
    assert summary["budget"]["monthlyUsd"] == 10 and summary["projectedUsd"] is not None

    # a raise lifts the stop: the bot the budget stopped is started again
    r = api("PUT", "/costs/budget", owner, json={"monthlyUsd": 50, "action": "stop"})
    assert r.status_code == 200 and r.json["stopped"] == [] and r.json["percent"] < 100
    start = [j for j in jobs_of(dep["_id"]) if j.action == "start"]
    assert len(start) == 1 and denv.wait_job(start[0].id).status == "completed"
    assert api("GET", f"/deployments/{dep['_id']}", owner).json["status"] == "running"
    assert len(notes(owner.user_id)) == 4  # thresholds stay once per month


def test_cap_set_on_the_key_and_removed_by_a_new_month(api, callers, denv, setup, providers):
    dep, pulls = setup
    owner = callers["owner"]
    assert api("PUT", "/costs/budget", owner, json={"monthlyUsd": 20, "action": "cap"}).status_code == 200
    pulls.run(21.0)
    key = pulls.key()
    assert key["limit"] == 61.0  # capped at its usage: nothing left to spend
    state = httpx.get(f"{providers.url}/_control/state").json()
    assert state["patches"] == [{"hash": H, "limit": 61.0}]
    assert api("GET", "/costs/budget", owner).json["capped"] is True
    assert api("GET", f"/deployments/{dep['_id']}", owner).json["status"] == "running"  # not stopped
    pulls.run(22.0)  # capped already: no second PATCH
    assert len(httpx.get(f"{providers.url}/_control/state").json()["patches"]) == 1
    y, m = map(int, month_now().split("-"))
    next_month = f"{y + m // 12}-{m % 12 + 1:02d}-01T00:30:00Z"
    pulls.run(0.5, at=next_month)
    assert pulls.key()["limit"] == 100.0  # the owner's own limit is back
    state = httpx.get(f"{providers.url}/_control/state").json()
    assert state["patches"][-1] == {"hash": H, "limit": 100.0}


def test_per_deployment_budget_and_bad_input(api, callers, denv, setup):
    dep, pulls = setup
    owner = callers["owner"]
    bad = [{"monthlyUsd": -1}, {"monthlyUsd": 10, "action": "explode"}, {}]
    for body in bad:
        assert api("PUT", "/costs/budget", owner, json=body).status_code == 422, body
    # one deployment named twice: the last entry counts (the schema cannot say "distinct by deploymentId")
    twice = api("PUT", "/costs/budget", owner, json={"deployments": [{"deploymentId": dep["_id"], "monthlyUsd": 5},
                                                                      {"deploymentId": dep["_id"], "monthlyUsd": 7}]})
    kept = [(d["deploymentId"], d["monthlyUsd"]) for d in twice.get_json()["deployments"]]
    assert twice.status_code == 200 and kept == [(dep["_id"], 7)], twice.get_json()
    assert api("PUT", "/costs/budget", callers["other"],
               json={"deployments": [{"deploymentId": dep["_id"], "monthlyUsd": 5}]}).status_code == 404
    assert api("GET", "/costs/budget", callers["other"]).status_code == 404
    r = api("PUT", "/costs/budget", owner, json={"deployments": [{"deploymentId": dep["_id"], "monthlyUsd": 4,
                                                                  "action": "stop"}]})
    assert r.status_code == 200 and r.json["monthlyUsd"] is None
    pulls.run(4.2)
    kinds = notes(owner.user_id)
    assert kinds == [("spend.cap_reached", None), ("spend.threshold", 50), ("spend.threshold", 80),
                     ("spend.threshold", 100)]
    assert len([j for j in jobs_of(dep["_id"]) if j.action == "stop"]) == 1
    b = api("GET", "/costs/budget", owner).json
    assert b["deployments"][0]["thresholdsNotified"] == [50, 80, 100] and b["stopped"] == [dep["_id"]]
    assert api("DELETE", "/costs/budget", owner).status_code == 204
    assert api("GET", "/costs/budget", owner).status_code == 404
