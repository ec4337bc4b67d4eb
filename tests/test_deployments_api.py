"""deployments: create, list, get, update, actions through the real queue to the local Compute
server; ownership and subscription checks; bad input."""
from __future__ import annotations

import pytest

NEW = {"gcpProject": "acme-bots", "zone": "us-central1-a", "botName": "Ada's Bot!", "brandEmoji": "🤖",
       "primaryModel": "anthropic/claude-sonnet-4", "fallbackModels": ["openai/gpt-4.1"]}


def create(api, caller, **over):
    r = api("POST", "/deployments", caller, json={**NEW, **over})
    assert r.status_code == 201, r.json
    return r.json["deployment"], r.json["job"]


def test_create_runs_deploy_job_to_completion_and_vm_reports_ready(api, callers, denv):
    dep, job = create(api, callers["owner"])
    assert dep["status"] == "provisioning" and job["status"] == "pending" and job["action"] == "deploy"
    assert dep["vmName"].startswith("oc-ada-s-bot-") and dep["vmName"].endswith(dep["_id"])
    done = denv.wait_job(job["_id"])
    assert done.status == "completed", done.log
    assert done.startedAt and done.completedAt >= done.startedAt
    assert "creating VM" in done.log and "deploy completed" in done.log
    inst = denv.compute.state()["instances"]
    assert inst[f"acme-bots/us-central1-a/{dep['vmName']}"] == "RUNNING"
    # the VM's startup script reports over Pub/Sub -> provisioningEvents -> running
    denv.wait_for(lambda: api("GET", f"/deployments/{dep['_id']}", callers["owner"]).json["status"] == "running",
                  what="deployment running")
    log = api("GET", f"/deployments/{dep['_id']}/jobs/{job['_id']}", callers["owner"]).json["log"]
    assert "vm: ready: bot is up" in log


def test_instance_is_small_debian_without_external_ip_and_config_as_data(api, callers, denv):
    from shared import repos
    from shared.deploy import compute

    dep, job = create(api, callers["owner"], botName="x'; rm -rf / #")
    denv.wait_job(job["_id"])
    inst = compute.instances().get(project="acme-bots", zone="us-central1-a", instance=dep["vmName"])
    assert inst.machine_type.endswith("/machineTypes/e2-small")
    from shared.backups import gce  # an instance lists its disks by URL: the image is the disk's

    disk = gce.disks().get(project="acme-bots", zone="us-central1-a", disk=inst.disks[0].source.rsplit("/", 1)[-1])
    assert "debian-12" in disk.source_image and inst.disks[0].boot and inst.disks[0].auto_delete
    assert not inst.network_interfaces[0].access_configs  # no external IP
    items = {i.key: i.value for i in inst.metadata.items}
    assert "rm -rf" not in items["startup-script"] and "x'; rm -rf / #" in items["openclaw-config"]
    assert items["openclaw-deployment-id"] == dep["_id"]
    assert repos.deployments.get(dep["_id"]).botName == "x'; rm -rf / #"


def test_actions_stop_start_reset_delete(api, callers, denv):
    from shared import repos

    dep, job = create(api, callers["owner"])
    denv.wait_job(job["_id"])
    path = f"/deployments/{dep['_id']}"
    for action, status, vm in (("stop", "stopped", "TERMINATED"), ("start", "running", "RUNNING"),
                               ("reset", "running", "RUNNING")):
        r = api("POST", f"{path}/actions", callers["owner"], json={"action": action})
        assert r.status_code == 202, r.json
        done = denv.wait_job(r.json["job"]["_id"])
        assert done.status == "completed", done.log
        assert repos.deployments.get(dep["_id"]).status == status
        assert denv.compute.state()["instances"][f"acme-bots/us-central1-a/{dep['vmName']}"] == vm
    api("PUT", f"/pluginConfigs/{dep['_id']}/knowledge", callers["owner"], json={"enabled": True, "config": {}})
    r = api("POST", f"{path}/actions", callers["owner"], json={"action": "delete"})
    done = denv.wait_job(r.json["job"]["_id"])
    assert done.status == "completed", done.log
    assert api("GET", path, callers["owner"]).status_code == 404
    assert f"acme-bots/us-central1-a/{dep['vmName']}" not in denv.compute.state()["instances"]
    assert repos.plugin_configs.all({"deploymentId": dep["_id"]}) == []
    jobs = api("GET", f"{path}/jobs", callers["admin"])
    assert jobs.status_code == 404  # the deployment is gone; its jobs stay as history in deployJobs
    assert repos.deploy_jobs.get(done.id).status == "completed"


def test_list_get_update_and_ownership(api, callers, denv):
    dep, job = create(api, callers["owner"])
    denv.wait_job(job["_id"])
    path = f"/deployments/{dep['_id']}"
    assert [d["_id"] for d in api("GET", "/deployments", callers["owner"]).json["items"]] == [dep["_id"]]
    assert api("GET", "/deployments?status=error", callers["owner"]).json["items"] == []
    assert api("GET", "/deployments", callers["other"]).json["items"] == []
    for method, sub, body in (("GET", "", None), ("PATCH", "", {"botName": "Mine"}),
                              ("POST", "/actions", {"action": "stop"}), ("GET", "/jobs", None)):
        assert api(method, path + sub, callers["other"], json=body).status_code == 404
    assert api("GET", path, callers["anonymous"]).status_code == 401
    r = api("PATCH", path, callers["admin"], json={"botName": "Renamed", "fallbackModels": []})
    assert r.status_code == 200 and r.json["botName"] == "Renamed" and r.json["vmName"] == dep["vmName"]
    assert api("GET", path, callers["owner"]).json["botName"] == "Renamed"
    jobs = api("GET", f"{path}/jobs", callers["owner"]).json
    assert [j["_id"] for j in jobs["items"]] == [job["_id"]]
    # the primary model as a fallback is left out (tried first anyway), also with what the change leaves alone
    r = api("PATCH", path, callers["owner"], json={"fallbackModels": [dep["primaryModel"], "openai/gpt-4.1"]})
    assert r.status_code == 200 and r.json["fallbackModels"] == ["openai/gpt-4.1"], r.json
    r = api("PATCH", path, callers["owner"], json={"primaryModel": "openai/gpt-4.1"})
    assert r.json["fallbackModels"] == [] and api("GET", path, callers["owner"]).json["fallbackModels"] == []
    r = api("PATCH", path, callers["owner"], json={"fallbackModels": ["a/b", "a/b"]})
    assert r.status_code == 422 and r.json["error"]["code"] == "invalid_body", r.json


@pytest.mark.parametrize("body, field", [
    ({**NEW, "gcpProject": "Bad_Project"}, "gcpProject"),
    ({**NEW, "zone": "mars"}, "zone"),
    ({**NEW, "botName": ""}, "botName"),
    ({**NEW, "primaryModel": "has spaces"}, "primaryModel"),
    ({**NEW, "fallbackModels": ["openai/gpt-4.1", "openai/gpt-4.1"]}, "body"),
    ({**NEW, "vmName": "mine"}, "vmName"),
])
def test_bad_input_is_rejected_and_nothing_written(api, callers, denv, body, field):
    from shared import repos

    r = api("POST", "/deployments", callers["owner"], json=body)
    assert r.status_code == 422 and field in r.json["error"]["message"] + str(r.json["error"].get("details"))
    assert repos.deployments.all({"userId": callers["owner"].user_id}, (("createdAt", "DESCENDING"),)) == []
    r = api("POST", "/deployments", callers["owner"], json=None, data="{", content_type="application/json")
    assert r.status_code == 400


def test_deploy_needs_a_subscription_but_stop_does_not(api, callers, denv):
    from shared import repos

    dep, job = create(api, callers["owner"])
    denv.wait_job(job["_id"])
    repos.subscriptions.update("sub-owner", {"status": "canceled"})
    r = api("POST", "/deployments", callers["owner"], json=NEW)
    assert r.status_code == 403 and r.json["error"]["code"] == "subscription_required"
    r = api("POST", f"/deployments/{dep['_id']}/actions", callers["owner"], json={"action": "start"})
    assert r.status_code == 403
    r = api("POST", f"/deployments/{dep['_id']}/actions", callers["owner"], json={"action": "stop"})
    assert r.status_code == 202
    denv.wait_job(r.json["job"]["_id"])
    assert api("POST", f"/deployments/{dep['_id']}/actions", callers["other"],
               json={"action": "bogus"}).status_code == 422


def test_only_allowed_projects_and_regions_are_deployed_to(api, callers, denv, monkeypatch):
    """The manifest sets DEPLOY_ALLOWED_PROJECTS and DEPLOY_ALLOWED_REGIONS (where Cloud NAT exists:
    the VMs have no external IP); anything else is refused before anything is written."""
    from shared import repos
    from shared.deploy import settings

    monkeypatch.setenv("DEPLOY_ALLOWED_PROJECTS", "acme-bots")
    monkeypatch.setenv("DEPLOY_ALLOWED_REGIONS", "us-central1")
    settings.reset()
    try:
        # a project of nobody's who granted us anything: the customer-project check says what is missing
        r = api("POST", "/deployments", callers["owner"], json={**NEW, "gcpProject": "someone-elses"})
        assert r.status_code == 409 and r.json["error"]["code"] == "grant_missing"
        r = api("POST", "/deployments", callers["owner"], json={**NEW, "zone": "europe-west1-b"})
        assert r.status_code == 422 and r.json["error"]["code"] == "zone_not_allowed"
        assert repos.deployments.all({"userId": callers["owner"].user_id}, (("createdAt", "DESCENDING"),)) == []
        create(api, callers["owner"])
    finally:
        monkeypatch.undo()
        settings.reset()
