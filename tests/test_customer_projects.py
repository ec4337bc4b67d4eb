"""Deploying into the customer's own Google Cloud project, and opening a bot's dashboard through IAP.

The IAM stand-in plays Resource Manager v3 (project labels, testIamPermissions in Google's wire format)
and IAP tunnel policies; the Compute stand-in refuses (403) every call whose permission the customer has
not granted, or has withdrawn, in their project. The code reaches them with its own REST session."""
from __future__ import annotations

import json

import httpx
import pytest
from deploy_support import reset_settings
from test_deployments_api import NEW

CUSTOMER = "cust-bots-1"
OPERATOR = "acme-bots"


@pytest.fixture
def cenv(denv, callers):
    """The operator deploys to acme-bots; CUSTOMER is the owner's own project (labelled, fully granted)."""
    from shared.deploy import projects

    reset_settings(DEPLOY_ALLOWED_PROJECTS=OPERATOR)
    denv.customer = lambda **kw: register(denv, **kw)
    denv.customer(labels={projects.OWNER_LABEL: projects.owner_label(callers["owner"].user_id)})
    yield denv
    httpx.delete(f"{denv.iam.url}/_projects").raise_for_status()
    import os

    os.environ.pop("DEPLOY_ALLOWED_PROJECTS", None)


def register(denv, labels=None, permissions=None, project=CUSTOMER):
    from shared.deploy import projects

    perms = sorted({*projects.DEPLOY_PERMISSIONS, *projects.DASHBOARD_PERMISSIONS}) if permissions is None \
        else permissions
    httpx.post(f"{denv.iam.url}/_projects", json={"projectId": project, "labels": labels or {},
                                                  "permissions": perms}).raise_for_status()


def withdraw(denv, *permissions, project=CUSTOMER):
    httpx.post(f"{denv.iam.url}/_projects/{project}/withdraw",
               json={"permissions": list(permissions)}).raise_for_status()


def deploy_here(api, owner, denv):
    r = api("POST", "/deployments", owner, json={**NEW, "gcpProject": CUSTOMER, "zone": "europe-west1-b"})
    assert r.status_code == 201, r.json
    job = denv.wait_job(r.json["job"]["_id"])
    assert job.status == "completed", job.log
    return r.json["deployment"], job


def test_resource_manager_stand_in_speaks_the_v3_wire_format(cenv):
    """testIamPermissions answers the granted subset, `{}` when none; what the client sends is checked."""
    base = f"{cenv.iam.url}/v3/projects"
    r = httpx.post(f"{base}/{CUSTOMER}:testIamPermissions",
                   json={"permissions": ["compute.instances.create", "storage.buckets.delete"]})
    assert r.status_code == 200 and r.json() == {"permissions": ["compute.instances.create"]}
    assert httpx.post(f"{base}/{CUSTOMER}:testIamPermissions", json={"permissions": ["x.y.z"]}).json() == {}
    assert httpx.post(f"{base}/{CUSTOMER}:testIamPermissions", json={"permissions": "x"}).status_code == 400
    assert httpx.post(f"{base}/nobodys-project:testIamPermissions",
                      json={"permissions": ["compute.instances.get"]}).status_code == 403
    assert httpx.get(f"{base}/{CUSTOMER}").json()["projectId"] == CUSTOMER


def test_missing_grant_or_label_is_named_before_anything_is_queued(api, callers, cenv):
    from shared import repos
    from shared.deploy import projects

    owner = callers["owner"]
    cenv.customer(labels={projects.OWNER_LABEL: projects.owner_label(owner.user_id)},
                  permissions=[p for p in projects.DEPLOY_PERMISSIONS if not p.startswith("iam.")])
    r = api("POST", "/deployments", owner, json={**NEW, "gcpProject": CUSTOMER})
    assert r.status_code == 409, r.json
    err = r.json["error"]
    assert err["code"] == "grant_missing"
    d = err["details"]
    assert d["missingPermissions"] == ["iam.serviceAccounts.actAs", "iam.serviceAccounts.create",
                                       "iam.serviceAccounts.delete", "iam.serviceAccounts.get"]
    assert d["roles"] == ["roles/iam.serviceAccountAdmin", "roles/iam.serviceAccountUser"]
    assert d["member"] == "serviceAccount:oc-functions@demo-openclaw.iam.gserviceaccount.com"
    assert d["commands"][0] == (f"gcloud projects add-iam-policy-binding {CUSTOMER} --member={d['member']} "
                                "--role=roles/iam.serviceAccountAdmin --condition=None")

    # granted, but the project is not labelled as this user's: someone else's project is refused
    cenv.customer(labels={projects.OWNER_LABEL: projects.owner_label("someone-else")})
    r = api("POST", "/deployments", owner, json={**NEW, "gcpProject": CUSTOMER})
    assert r.status_code == 409 and r.json["error"]["code"] == "project_not_verified"
    assert r.json["error"]["details"]["label"] == {projects.OWNER_LABEL: projects.owner_label(owner.user_id)}
    assert repos.deployments.all({"userId": owner.user_id}, (("createdAt", "DESCENDING"),)) == []


def test_deploys_into_the_customer_project_with_its_own_account_and_iap_rule(api, callers, cenv):
    from shared.deploy import gateway, identity

    dep, job = deploy_here(api, callers["owner"], cenv)
    state = cenv.compute.state()
    assert state["instances"][f"{CUSTOMER}/europe-west1-b/{dep['vmName']}"] == "RUNNING"  # any region: their NAT
    rule = state["firewalls"][f"{CUSTOMER}/{gateway.FIREWALL_RULE}"]
    assert rule["sourceRanges"] == ["35.235.240.0/20"] and rule["targetTags"] == [gateway.NETWORK_TAG]
    assert rule["allowed"] == [{"IPProtocol": "tcp", "ports": ["18789"]}]
    assert identity.get(dep["_id"]).project == CUSTOMER  # never spilled into the operator's projects
    from shared.deploy import compute

    inst = compute.instances().get(project=CUSTOMER, zone="europe-west1-b", instance=dep["vmName"])
    assert list(inst.tags.items) == [gateway.NETWORK_TAG]
    assert "created firewall rule" in job.log
    # a second deploy-type job finds the rule and does not make it again
    r = api("POST", f"/deployments/{dep['_id']}/actions", callers["owner"], json={"action": "reset"})
    assert cenv.wait_job(r.json["job"]["_id"]).status == "completed"
    assert cenv.compute.calls().get("firewalls.insert") == 1


def queue_raw(dep_id: str, owner_id: str, action: str):
    """A job queued while the grant still held (the route's own check passed), delivered later."""
    from shared import clock, repos
    from shared.deploy import jobs
    from shared.models import DeployJob

    now = clock.now_ms()
    job = DeployJob(_id=jobs.new_job_id(now), userId=owner_id, deploymentId=dep_id, action=action, status="pending")
    repos.deploy_jobs.set(job)
    jobs.lock_ref(dep_id).set({"jobId": job.id, "action": action, "requestedAt": now, "attempt": 0, "leaseUntil": 0})
    return job


def test_withdrawn_grant_stops_jobs_cleanly_and_cuts_the_bot_off(api, callers, cenv):
    from shared import bot_credentials, repos
    from shared.deploy import events, identity, secrets, startup, worker

    owner = callers["owner"]
    dep, _ = deploy_here(api, owner, cenv)
    cenv.wait_for(lambda: repos.deployments.get(dep["_id"]).status == "running", what="the guest's ready report")
    email = identity.get(dep["_id"]).email
    token_secret = secrets.secret_id(dep["_id"], startup.BOT_TOKEN_KEY)
    assert cenv.read_as_vm(dep, token_secret) != 403

    withdraw(cenv, "compute.instances.setMetadata", "compute.instances.reset")
    # asked through the API: refused before queueing, naming what is missing
    r = api("POST", f"/deployments/{dep['_id']}/actions", owner, json={"action": "update"})
    assert r.status_code == 409 and r.json["error"]["details"]["missingPermissions"] == [
        "compute.instances.reset", "compute.instances.setMetadata"]

    job = queue_raw(dep["_id"], owner.user_id, "update")  # queued before the customer withdrew it
    assert worker.run(job.id) == (False, "failed")
    done = repos.deploy_jobs.get(job.id)
    assert done.status == "failed"
    assert "lacks compute.instances.reset, compute.instances.setMetadata" in done.log
    assert f"gcloud compute instances delete {dep['vmName']}" in done.log
    assert f"gcloud iam service-accounts delete {email} --project={CUSTOMER}" in done.log
    assert repos.deployments.get(dep["_id"]).status == "error"
    policies = cenv.secrets.state()["policies"]
    assert not [n for n, b in policies.items() if dep["_id"] in n and any(f"serviceAccount:{email}" in x["members"]
                                                                         for x in b)]
    assert cenv.read_as_vm(dep, token_secret) == 403  # the VM left behind reads nothing of ours
    assert bot_credentials.status(dep["_id"]).revokedAt is not None
    assert secrets.access(dep["_id"], events.REPORT_KEY)  # secrets are kept (the owner's API keys too), not deleted

    # a 403 from Compute mid-job with the grant intact is an ordinary failure, not a withdrawal
    register(cenv, labels={"openclaw-owner": "x"})
    cenv.compute.fault("instances.stop", "error", status=403, message="Required 'compute.instances.stop'")
    job = queue_raw(dep["_id"], owner.user_id, "stop")
    assert worker.run(job.id) == (False, "failed")
    assert "stopped:" not in repos.deploy_jobs.get(job.id).log

    # delete with the grant gone: our side is removed, the job says what stays in their project
    withdraw(cenv, "compute.instances.delete")
    gone = api("POST", f"/deployments/{dep['_id']}/actions", owner, json={"action": "delete"})
    assert gone.status_code == 202  # deleting is never refused
    done = cenv.wait_job(gone.json["job"]["_id"])
    assert done.status == "completed", done.log
    assert "lacks compute.instances.delete" in done.log and "delete it yourself" in done.log
    assert repos.deployments.get(dep["_id"]) is None and identity.get(dep["_id"]) is None
    assert not [n for n in cenv.secrets.state()["secrets"] if dep["_id"] in n]


def test_dashboard_access_is_owner_only_short_lived_and_tunnel_scoped(api, callers, cenv, monkeypatch):
    from shared import repos
    from shared.deploy import dashboard, gateway, secrets

    owner = callers["owner"]
    dep, _ = deploy_here(api, owner, cenv)
    cenv.wait_for(lambda: repos.deployments.get(dep["_id"]).status == "running", what="the guest's ready report")
    path = f"/deployments/{dep['_id']}/dashboard-access"
    assert api("POST", path, callers["other"], json={}).status_code == 404
    assert api("POST", path, callers["admin"], json={}).status_code == 403
    r = api("POST", path, owner, json={"googleAccount": "ada@example.com"})
    assert r.status_code == 200, r.json
    a = r.json
    assert a["command"] == (f"gcloud compute start-iap-tunnel {dep['vmName']} 18789 --local-host-port=localhost:18789 "
                            f"--zone=europe-west1-b --project={CUSTOMER}")
    assert a["url"] == f"http://localhost:18789/#token={a['gatewayToken']}" and len(a["gatewayToken"]) >= 40
    assert 3590_000 <= a["expiresAt"] - a["readyAt"] + 30_000 <= 3600_000
    policy = cenv.iam.state()["iap"][dashboard.tunnel_resource(repos.deployments.get(dep["_id"]))]
    assert policy["version"] == 3
    [binding] = policy["bindings"]
    assert binding["role"] == "roles/iap.tunnelResourceAccessor" and binding["members"] == ["user:ada@example.com"]
    assert binding["condition"]["expression"].startswith('request.time < timestamp("')
    # the VM (its own account) reads the token and its expiry; nobody else's VM could
    stored = json.loads(cenv.read_as_vm(dep, secrets.secret_id(dep["_id"], gateway.GATEWAY_TOKEN_KEY)))
    assert stored == {"token": a["gatewayToken"], "expiresAt": a["expiresAt"]}

    # a later grant prunes bindings of ours that expired, keeps everyone else's
    monkeypatch.setattr(dashboard.clock, "now_ms", lambda: a["expiresAt"] + 1)
    b = api("POST", path, owner, json={}).json  # default: the sign-in e-mail
    assert b["member"] == "user:owner@example.com" and b["gatewayToken"] != a["gatewayToken"]
    [binding] = cenv.iam.state()["iap"][dashboard.tunnel_resource(repos.deployments.get(dep["_id"]))]["bindings"]
    assert binding["members"] == ["user:owner@example.com"]

    # the IAP grant needs roles/iap.admin in a customer's project; a stopped bot has no dashboard
    withdraw(cenv, "iap.tunnelInstances.setIamPolicy")
    r = api("POST", path, owner, json={})
    assert r.status_code == 409 and r.json["error"]["details"]["roles"] == ["roles/iap.admin"]
    repos.deployments.update(dep["_id"], {"status": "stopped"})
    assert api("POST", path, owner, json={}).json["error"]["code"] == "not_running"


def test_vm_applies_the_gateway_token_until_it_expires_then_locks_it(tmp_path):
    """The startup script's token refresher (bash, jq, openssl) with gcloud and systemctl stubbed: a live
    token is applied once (one restart), an expired or absent one becomes a random locked token that
    nobody knows and that stays put (no restart loop)."""
    import subprocess
    import time

    from shared.deploy import startup

    body = startup.STARTUP_SCRIPT.split("cat > /usr/local/sbin/openclaw-gateway-token <<'SH'\n")[1].split("\nSH\n")[0]
    cfg, env, secret, restarts = (tmp_path / n for n in ("config.json", "gateway.env", "secret", "restarts"))
    cfg.write_text(json.dumps({"gateway": {"tokenSecret": "oc-d-openclaw-gateway-token"}, "secretsProject": "p"}))
    stubs = f"""
gcloud() {{ cat '{secret}' 2>/dev/null; }}
systemctl() {{ echo "$*" >> '{restarts}'; }}
install() {{ : > "${{@: -1}}"; }}
"""
    script = body.replace("set -uo pipefail", "set -uo pipefail\n" + stubs, 1).replace(
        "CFG=/etc/openclaw/config.json ENV=/etc/openclaw/gateway.env", f"CFG='{cfg}' ENV='{env}'")

    def run() -> str:
        subprocess.run(["bash", "-c", script], check=True, timeout=20)
        return env.read_text()

    now = int(time.time() * 1000)
    secret.write_text(json.dumps({"token": "tok-live", "expiresAt": now + 60_000}))
    assert run() == "OPENCLAW_GATEWAY_TOKEN=tok-live"
    assert run() == "OPENCLAW_GATEWAY_TOKEN=tok-live"
    assert restarts.read_text().splitlines() == ["try-restart openclaw.service"]  # applied once
    secret.write_text(json.dumps({"token": "tok-live", "expiresAt": now - 1}))
    locked = run()
    assert locked.startswith("OPENCLAW_GATEWAY_TOKEN=locked-") and "tok-live" not in locked
    assert run() == locked and len(restarts.read_text().splitlines()) == 2  # stays locked, no restart loop
    secret.unlink()  # never issued / unreadable: locked as well
    assert run() == locked


def test_update_tags_a_vm_made_before_the_dashboard(api, callers, cenv):
    from google.cloud import compute_v1

    from shared.deploy import compute, gateway

    owner = callers["owner"]
    r = api("POST", "/deployments", owner, json=NEW)  # an operator project
    assert cenv.wait_job(r.json["job"]["_id"]).status == "completed"
    dep = r.json["deployment"]
    where = {"project": dep["gcpProject"], "zone": dep["zone"], "instance": dep["vmName"]}
    inst = compute.instances().get(**where)
    op = compute.instances().set_tags_unary(**where, tags_resource=compute_v1.Tags(
        items=[], fingerprint=inst.tags.fingerprint))  # as an older VM was made: no tag
    compute.wait("untag", op, dep["gcpProject"], dep["zone"])
    assert list(compute.instances().get(**where).tags.items) == []
    r = api("POST", f"/deployments/{dep['_id']}/actions", owner, json={"action": "update"})
    job = cenv.wait_job(r.json["job"]["_id"])
    assert job.status == "completed", job.log
    assert "tagged the VM openclaw-bot" in job.log
    assert list(compute.instances().get(**where).tags.items) == [gateway.NETWORK_TAG]
