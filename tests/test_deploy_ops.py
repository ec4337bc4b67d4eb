"""Deployment operations (issue 8): live VM status with a short cache and status correction,
serial console with secrets masked, and the `update` action guarded by metadata fingerprints."""
from __future__ import annotations

import json
import threading

import httpx
import pytest
from deploy_support import reset_settings
from test_deployments_api import create


@pytest.fixture
def running(api, callers, denv):
    from shared.deploy import live

    live._memory.clear()
    dep, job = create(api, callers["owner"])
    denv.wait_job(job["_id"])
    # and the VM's "ready" report has arrived (else it could land after a test's own status changes)
    denv.wait_for(lambda: api("GET", f"/deployments/{dep['_id']}", callers["owner"]).json["status"] == "running",
                  what="deployment running")
    return dep


def test_ops_are_owner_or_admin_only(api, callers, denv, running):
    path = f"/deployments/{running['_id']}"
    for sub in ("/status", "/logs"):
        assert api("GET", path + sub, callers["other"]).status_code == 404
        assert api("GET", path + sub, callers["anonymous"]).status_code == 401
        assert api("GET", path + sub, callers["admin"]).status_code == 200
    assert api("POST", path + "/actions", callers["other"], json={"action": "update"}).status_code == 404


def test_status_is_live_cached_and_corrects_stored_status(api, callers, denv, running):
    from shared import repos
    from shared.deploy import compute

    reset_settings(DEPLOY_STATUS_TTL_S="1")
    path = f"/deployments/{running['_id']}/status"
    r = api("GET", path, callers["owner"]).json
    assert r["vmStatus"] == "RUNNING" and r["internalIp"].startswith("10.") and r["createdAt"] and r["lastStartAt"]
    assert api("GET", path, callers["owner"]).json["cached"] is True
    # stopped behind our back (console, another tool): the next fresh read corrects the stored status
    compute.instances().stop_unary(project="acme-bots", zone="us-central1-a", instance=running["vmName"])
    denv.wait_for(lambda: api("GET", path, callers["owner"]).json["vmStatus"] == "TERMINATED", what="fresh read")
    assert repos.deployments.get(running["_id"]).status == "stopped"
    compute.instances().delete_unary(project="acme-bots", zone="us-central1-a", instance=running["vmName"])
    r = denv.wait_for(lambda: (lambda j: j if j["vmStatus"] == "NOT_FOUND" else None)(
        api("GET", path, callers["owner"]).json), what="VM gone")
    assert r["deploymentStatus"] == "error" and r["corrected"] == {"from": "stopped", "to": "error"}


def test_polling_100_times_a_second_makes_few_compute_calls(api, callers, denv, running):
    path = f"{denv.base_url}/deployments/{running['_id']}/status"
    headers = {"Authorization": f"Bearer {callers['owner'].token}"}
    before = denv.compute.calls().get("instances.get", 0)
    codes = []

    def poll():
        with httpx.Client(timeout=30) as c:
            codes.extend(c.get(path, headers=headers).status_code for _ in range(10))
    threads = [threading.Thread(target=poll) for _ in range(10)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert codes == [200] * 100
    assert denv.compute.calls()["instances.get"] - before <= 2


def test_serial_logs_masked_bounded_and_resumable(api, callers, denv, running):
    path = f"/deployments/{running['_id']}/logs"
    secret = "sk-proj-" + "S" * 40
    token = "123456789:" + "T" * 35
    httpx.post(f"{denv.compute.url}/_serial", json={
        "project": "acme-bots", "zone": "us-central1-a", "name": running["vmName"],
        "text": f"openclaw: OPENAI_API_KEY={secret}\nopenclaw: telegram token {token} ok\npassword: hunter2hunter2\n"})
    r = api("GET", path, callers["owner"])
    assert r.status_code == 200
    body = r.json
    assert "Booting Debian" in body["contents"] and "openclaw: OPENAI_API_KEY=" in body["contents"]
    for raw in (secret, token, "hunter2hunter2", "S" * 20, "T" * 20):
        assert raw not in r.text
    nxt = body["next"]
    assert api("GET", f"{path}?since={nxt}", callers["owner"]).json["contents"] == ""
    httpx.post(f"{denv.compute.url}/_serial", json={"project": "acme-bots", "zone": "us-central1-a",
                                                    "name": running["vmName"], "text": "later line\n" + "x" * 3000})
    assert api("GET", f"{path}?since={nxt}", callers["owner"]).json["contents"].startswith("later line\n")
    reset_settings(DEPLOY_SERIAL_MAX_CHARS="1000")
    r = api("GET", path, callers["owner"]).json
    assert r["truncated"] is True and len(r["contents"]) <= 1000 and r["start"] > 0
    assert api("GET", f"{path}?since=-1", callers["owner"]).status_code == 422


def _metadata(vm_name: str) -> dict:
    from shared.deploy import compute

    inst = compute.instances().get(project="acme-bots", zone="us-central1-a", instance=vm_name)
    return {i.key: i.value for i in inst.metadata.items}


def test_update_rewrites_config_and_restarts(api, callers, denv, running):
    dep_path = f"/deployments/{running['_id']}"
    api("PUT", f"/pluginConfigs/{running['_id']}/knowledge", callers["owner"], json={"enabled": True, "config": {}})
    api("PATCH", dep_path, callers["owner"], json={"botName": "Updated bot"})
    r = api("POST", f"{dep_path}/actions", callers["owner"], json={"action": "update"})
    assert r.status_code == 202 and r.json["job"]["action"] == "update"
    done = denv.wait_job(r.json["job"]["_id"])
    assert done.status == "completed", done.log
    assert "fingerprint" in done.log and "restarting the VM to apply it" in done.log
    config = json.loads(_metadata(running["vmName"])["openclaw-config"])
    assert config["botName"] == "Updated bot" and "knowledge" in config["plugins"]
    assert denv.compute.calls()["instances.reset"] >= 1


def test_update_with_stale_fingerprint_fails_without_overwriting(api, callers, denv, running):
    from google.cloud import compute_v1

    from shared.deploy import compute

    before = denv.compute.calls().get("instances.setMetadata", 0)
    denv.compute.fault("instances.setMetadata", "slow", delay=1.0)  # our write waits; another lands first
    r = api("POST", f"/deployments/{running['_id']}/actions", callers["owner"], json={"action": "update"})
    denv.wait_for(lambda: denv.compute.calls().get("instances.setMetadata", 0) > before, what="our write sent")
    inst = compute.instances().get(project="acme-bots", zone="us-central1-a", instance=running["vmName"])
    items = [compute_v1.Items(key=i.key, value=i.value) for i in inst.metadata.items] + \
        [compute_v1.Items(key="ssh-keys", value="admin:ssh-ed25519 AAAA")]
    compute.instances().set_metadata_unary(
        project="acme-bots", zone="us-central1-a", instance=running["vmName"],
        metadata_resource=compute_v1.Metadata(fingerprint=inst.metadata.fingerprint, items=items))
    done = denv.wait_job(r.json["job"]["_id"])
    assert done.status == "failed"
    assert "metadata changed since it was read (fingerprint mismatch); nothing was overwritten" in done.log
    denv.wait_for(lambda: "ssh-keys" in _metadata(running["vmName"]), what="the other change kept")


def test_update_retried_after_restart_fails_midway(api, callers, denv, running):
    denv.compute.fault("instances.reset", "after", status=503)  # reset happened, its answer lost
    r = api("POST", f"/deployments/{running['_id']}/actions", callers["owner"], json={"action": "update"})
    done = denv.wait_job(r.json["job"]["_id"])
    assert done.status == "completed", done.log
    assert "will retry" in done.log and "attempt 2: taking the job over" in done.log
    config = json.loads(_metadata(running["vmName"])["openclaw-config"])
    assert config["botName"] == running["botName"]
