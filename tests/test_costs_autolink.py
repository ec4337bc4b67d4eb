"""Automatic cost attribution: a deployed user's costs come from the keys their deployment holds in
Secret Manager, with no admin step; an admin's mapping still overrides; a VM in the customer's own
project is not in the GCP estimate (Google bills the customer). Whole path: scheduler call -> Cloud
Tasks stand-in -> worker -> Secret Manager stand-in + provider stand-in (OpenRouter's `GET /key`,
`GET /keys`, OpenAI's projects and project keys, real wire formats) -> Firestore emulator."""
from __future__ import annotations

import os

import httpx
import pytest
from costs_support import wait_run
from test_costs_pull import NOV1, H, gcp, schedule, user

from shared import repos
from shared.costs.ledger import CostAccount, accounts
from shared.costs.worker import activity_id
from shared.models import ApiKey, Deployment

OR_KEY = {n: f"sk-or-v1-{n:02d}" + "a" * 52 + f"{n:03d}" for n in range(1, 5)}  # raw keys the bots hold
OA_KEY = {n: f"sk-proj-{n:02d}" + "b" * 40 + f"x{n:02d}" for n in range(1, 5)}
HOUR = 3_600_000


@pytest.fixture
def autolink_env(stack, providers):
    from shared.deploy import secrets

    stack.secrets()
    stack.apply_env()
    secrets.client.cache_clear()
    yield providers


def holds(dep_id: str, uid: str, key_name: str, value: str) -> None:
    """What PUT /apiKeys does: the value in Secret Manager, the masked entry in the registry."""
    from shared.deploy import secrets

    secrets.put(dep_id, key_name, value)
    repos.api_keys.set(ApiKey(_id=f"{dep_id}_{key_name}", deploymentId=dep_id, userId=uid, keyName=key_name,
                              maskedValue=value[:4] + "****" + value[-4:]))


def test_costs_attributed_from_the_deployments_own_keys(client, autolink_env):
    p = autolink_env
    p.set(keys={H[1]: {"limit": 20.0, "usage": 3.5}, H[2]: {"limit": None, "usage": 1.0},
                H[3]: {"limit": 5.0, "usage": 1.0}},
          botKeys={OR_KEY[1]: H[1], OR_KEY[2]: H[2], OR_KEY[3]: H[3]},
          openaiKeys={"proj_a": [OA_KEY[1]], "proj_b": [OA_KEY[2], OA_KEY[3]]},
          openai={"proj_a": {"2026-11-02": 2.0}, "proj_b": {"2026-11-03": 7.0}},
          activity={H[1]: {"2026-11-14": [{"date": "2026-11-14", "model": "m/x", "usage": 0.25, "requests": 3,
                                           "prompt_tokens": 10, "completion_tokens": 5}]}})
    user("a1")
    holds("a1-d0", "a1", "openrouter-api-key", OR_KEY[1])
    holds("a1-d0", "a1", "openai-api-key", OA_KEY[1])
    user("a2")  # a key without a limit, of the operator's account: the account's pool
    holds("a2-d0", "a2", "openrouter-api-key", OR_KEY[2])
    user("a3", account={"openaiProjectId": "proj_override"})  # the admin's mapping wins for OpenAI
    holds("a3-d0", "a3", "openai-api-key", OA_KEY[2])
    holds("a3-d0", "a3", "openrouter-api-key", OR_KEY[3])
    # keys of other accounts (the customer's own): balance unknown, nothing to attribute
    user("a4", deployments=(("running", NOV1 - 30 * 24 * HOUR), ("stopped", NOV1)))
    holds("a4-d0", "a4", "openrouter-api-key", "sk-or-v1-99" + "c" * 55)
    holds("a4-d0", "a4", "openai-api-key", "sk-proj-99" + "d" * 43)
    holds("a4-d1", "a4", "openrouter-api-key", OR_KEY[4])  # revoked (OpenRouter answers 401): skipped, not failed
    p.set(openai={"proj_a": {"2026-11-02": 2.0}, "proj_b": {"2026-11-03": 7.0}, "proj_override": {"2026-11-04": 1.5}},
          openaiKeys={"proj_a": [OA_KEY[1]], "proj_b": [OA_KEY[2], OA_KEY[3]], "proj_override": []},
          botKeys={OR_KEY[1]: H[1], OR_KEY[2]: H[2], OR_KEY[3]: H[3], "sk-or-v1-99" + "c" * 55: "f" * 64})

    r = schedule(client, "pullCosts")
    assert r.status_code == 202, r.json
    report = wait_run(r.json["runId"])
    assert (report["ok"], report["failed"]) == (4, 0), report["failures"]
    snaps = {s.userId: s for s in repos.cost_snapshots.all({}, (("fetchedAt", "ASCENDING"),))}
    assert snaps["a1"].openrouterBalance == 16.5 and snaps["a1"].openaiSpend == 2.0
    assert snaps["a2"].openrouterBalance == 75.0 and snaps["a2"].openaiSpend is None
    assert snaps["a3"].openrouterBalance == 4.0 and snaps["a3"].openaiSpend == 1.5
    assert snaps["a4"].openrouterBalance is None and snaps["a4"].openaiSpend is None
    # what was derived is remembered; the admin's mapping is untouched
    a1 = accounts.get("a1")
    assert {v.get("hash") or v.get("project") for v in a1.auto.values()} == {H[1], "proj_a"}
    assert a1.openrouterKeyHash is None and a1.updatedAt == 0
    assert accounts.get("a3").openaiProjectId == "proj_override"
    calls = p.stats()["requests"]

    # the activity pull uses the derived hash: per-model cost without an admin step
    r = schedule(client, "pullOpenrouterActivity")
    wait_run(r.json["runId"])
    row = repos.openrouter_activity.get(activity_id("a1", "2026-11-14", "m/x"))
    assert row is not None and row.totalCostUsd == 0.25 and row.requests == 3
    # known keys are not looked up again: no more listings than the key's own answer needs
    listings_before = calls
    r = schedule(client, "pullCosts", at="2026-11-15T12:00:00Z")
    wait_run(r.json["runId"])
    assert p.stats()["requests"] - listings_before < 30


def test_customer_project_vms_are_not_in_the_gcp_estimate(client, autolink_env, monkeypatch):
    from shared.costs import settings

    monkeypatch.setenv("DEPLOY_ALLOWED_PROJECTS", "p")
    settings.reset()
    try:
        user("g1")
        repos.deployments.set(Deployment(_id="g1-own", userId="g1", gcpProject="customers-own", zone="us-central1-a",
                                         vmName="vm-own", status="running", botName="b", primaryModel="m",
                                         createdAt=NOV1))
        r = schedule(client, "pullCosts")
        wait_run(r.json["runId"])
        [snap] = repos.cost_snapshots.all({"userId": "g1"}, (("fetchedAt", "ASCENDING"),))
        assert snap.gcpEstimate == gcp((("running", NOV1 - 30 * 24 * HOUR),))  # the operator-project VM only
    finally:
        monkeypatch.undo()
        settings.reset()


def test_an_admin_put_keeps_what_was_derived(api, callers, autolink_env):
    uid = callers["owner"].user_id
    assert api("GET", "/deployments", callers["owner"]).status_code == 200  # the owner's user document
    accounts.set(CostAccount(_id=uid, auto={"f" * 32: {"hash": H[1]}}, autoUpdatedAt=5))
    r = api("PUT", f"/costs/accounts/{uid}", callers["admin"], json={"openaiProjectId": "proj_x"})
    assert r.status_code == 200, r.json
    kept = accounts.get(uid)
    assert kept.openaiProjectId == "proj_x" and kept.auto == {"f" * 32: {"hash": H[1]}}


def test_provider_stand_in_current_key_wire_format(autolink_env):
    """GET /api/v1/key answers the calling key's own usage and limit (no hash), and 401 for unknown keys."""
    p = autolink_env
    p.set(keys={H[1]: {"limit": 10.0, "usage": 2.5}}, botKeys={OR_KEY[1]: H[1]})
    base = os.environ["OPENROUTER_BASE_URL"]
    r = httpx.get(f"{base}/key", headers={"Authorization": f"Bearer {OR_KEY[1]}"})
    assert r.status_code == 200
    d = r.json()["data"]
    assert (d["limit"], d["usage"], d["limit_remaining"]) == (10.0, 2.5, 7.5) and "hash" not in d
    assert d["label"] == OR_KEY[1][:12] + "..." + OR_KEY[1][-3:]
    assert httpx.get(f"{base}/key", headers={"Authorization": "Bearer sk-or-v1-nope"}).status_code == 401
