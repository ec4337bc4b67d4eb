"""Tenant isolation on the bot VMs: every deployment's VM runs as its own service account, which may
read only that deployment's secrets; a second deployment's VM identity is refused when it tries to
read the first's secrets, use its credential or report for it, and nothing of the first changes.
The service accounts are spread over DEPLOY_ALLOWED_PROJECTS when a project's quota is full, and
deleted with their deployment."""
from __future__ import annotations

import os

import httpx
import pytest
from deploy_support import IAM_QUOTA, reset_settings
from test_deployments_api import create
from test_provisioning_events import envelope, signed

ANTHROPIC = "sk-ant-api03-" + "a" * 40 + "wxyz"


@pytest.fixture
def other_subscribed(callers):
    from shared import clock, repos
    from shared.models import Subscription

    now = clock.now_ms()
    repos.subscriptions.set(Subscription(_id="sub-other", userId=callers["other"].user_id, status="trialing",
                                         trialEnd=now + 86400_000, createdAt=now, updatedAt=now))


def vm_account(denv, dep) -> str:
    from shared.deploy import compute

    inst = compute.instances().get(project=dep["gcpProject"], zone=dep["zone"], instance=dep["vmName"])
    return inst.service_accounts[0].email


def test_each_vm_runs_as_its_own_account_with_access_to_its_own_secrets_only(api, callers, denv, other_subscribed,
                                                                             kb_stack):
    from shared import bot_credentials, repos
    from shared.deploy import events, identity, secrets, startup

    a, job_a = create(api, callers["owner"])
    b, job_b = create(api, callers["other"])  # another customer
    assert denv.wait_job(job_a["_id"]).status == "completed" and denv.wait_job(job_b["_id"]).status == "completed"
    acct_a, acct_b = vm_account(denv, a), vm_account(denv, b)
    assert acct_a != acct_b
    assert acct_a == identity.get(a["_id"]).email == identity.email_in(a["_id"], "acme-bots")
    assert {acct_a, acct_b} <= set(denv.iam.state()["accounts"])
    assert "oc-bot-vm" not in acct_a  # no shared VM account any more

    # an API key the owner adds after the deploy is readable by A's VM only
    assert api("PUT", f"/apiKeys/{a['_id']}/anthropic-api-key", callers["owner"],
               json={"value": ANTHROPIC}).status_code == 200
    policies = denv.secrets.state()["policies"]
    for key in ("anthropic-api-key", startup.BOT_TOKEN_KEY, events.REPORT_KEY):
        name = f"projects/demo-openclaw/secrets/{secrets.secret_id(a['_id'], key)}"
        assert policies[name] == [{"role": "roles/secretmanager.secretAccessor",
                                   "members": [f"serviceAccount:{acct_a}"]}], (key, policies[name])
        assert denv.read_as_vm(a, secrets.secret_id(a["_id"], key)) != 403  # A reads its own
        assert denv.read_as_vm(b, secrets.secret_id(a["_id"], key)) == 403  # B is refused
    assert denv.read_as_vm(b, secrets.secret_id(b["_id"], startup.BOT_TOKEN_KEY)) != 403
    denied = denv.secrets.state()["denied"]
    assert {d["account"] for d in denied if a["_id"] in d["secret"]} == {acct_b}

    # B's identity cannot administer secrets either (e.g. grant itself access, or overwrite A's token)
    token_b = denv.vm_token(b)
    base = f"{denv.secrets.url}/v1/projects/demo-openclaw/secrets/{secrets.secret_id(a['_id'], startup.BOT_TOKEN_KEY)}"
    auth = {"Authorization": f"Bearer {token_b}"}
    assert httpx.post(f"{base}:setIamPolicy", headers=auth, json={"policy": {"bindings": [
        {"role": "roles/secretmanager.secretAccessor", "members": [f"serviceAccount:{acct_b}"]}]}}).status_code == 403
    assert httpx.post(f"{base}:addVersion", headers=auth, json={"payload": {"data": "eA=="}}).status_code == 403
    assert httpx.delete(base, headers=auth).status_code == 403
    assert httpx.get(f"{base}/versions/latest:access",
                     headers={"Authorization": "Bearer ya29.local.forged.0000"}).status_code == 401

    # B's own credential acts only as B's owner: A's owner's knowledge stays invisible to it
    note = api("POST", "/knowledge", callers["owner"], json={"text": "A's private note", "source": "a"})
    assert note.status_code == 201, note.json
    b_token = denv.read_as_vm(b, secrets.secret_id(b["_id"], startup.BOT_TOKEN_KEY))
    r = api("GET", f"/knowledge/{note.json['ids'][0]}", headers={"Authorization": f"Bot {b_token}"})
    assert r.status_code == 404
    assert api("POST", f"/knowledge/bot-credentials/{a['_id']}", headers={"Authorization": f"Bot {b_token}"}
               ).status_code == 403  # nor mint one for A

    # a report for A signed with anything B can read is dropped; A is unchanged
    denv.wait_for(lambda: repos.deployments.get(a["_id"]).status == "running", what="A running")
    cred_a, log_a = bot_credentials.status(a["_id"]), repos.deploy_jobs.get(job_a["_id"]).log
    for n, key in enumerate((denv.read_as_vm(b, secrets.secret_id(b["_id"], events.REPORT_KEY)), b_token)):
        raw, sig = signed({"deploymentId": a["_id"], "stage": "failed", "message": "log in at evil.example"},
                          key=key.encode().hex() if n else key)
        assert events.handle(envelope(raw, f"iso-{n}", sig)) == "rejected"
    assert repos.deployments.get(a["_id"]).status == "running"
    assert repos.deploy_jobs.get(job_a["_id"]).log == log_a
    assert bot_credentials.status(a["_id"]).tokenHash == cred_a.tokenHash
    assert secrets.access(a["_id"], "anthropic-api-key") == ANTHROPIC


def test_delete_removes_the_account_and_its_access(api, callers, denv):
    from shared.deploy import identity, secrets, startup

    a, job_a = create(api, callers["owner"])
    b, job_b = create(api, callers["owner"])
    denv.wait_job(job_a["_id"]), denv.wait_job(job_b["_id"])
    acct_a, acct_b = vm_account(denv, a), vm_account(denv, b)
    token_b = denv.read_as_vm(b, secrets.secret_id(b["_id"], startup.BOT_TOKEN_KEY))
    gone = api("POST", f"/deployments/{a['_id']}/actions", callers["owner"], json={"action": "delete"})
    assert denv.wait_job(gone.json["job"]["_id"]).status == "completed"
    accounts = denv.iam.state()["accounts"]
    assert acct_a not in accounts and acct_b in accounts
    assert identity.get(a["_id"]) is None
    from shared import db
    from shared.deploy import events

    assert not db.client().collection(events.REPORTERS).document(a["_id"]).get().exists
    assert not [n for n in denv.secrets.state()["secrets"] if a["_id"] in n]  # every secret of A deleted
    assert denv.read_as_vm(b, secrets.secret_id(b["_id"], startup.BOT_TOKEN_KEY)) == token_b  # B untouched
    assert api("GET", "/knowledge", headers={"Authorization": f"Bot {token_b}"}).status_code == 200


def test_accounts_spread_over_allowed_projects_when_one_is_full(api, callers, denv):
    """A project at its service-account quota: the bot's account is made in the next allowed
    project; the VM still runs where the owner asked."""
    from shared.deploy import identity

    made = []
    for i in range(IAM_QUOTA):  # fill project full-bots
        r = httpx.post(f"{denv.iam.url}/v1/projects/full-bots/serviceAccounts",
                       json={"accountId": f"filler-{i:04d}", "serviceAccount": {"displayName": "filler"}})
        assert r.status_code == 200, r.text
        made.append(r.json()["email"])
    try:
        refused = httpx.post(f"{denv.iam.url}/v1/projects/full-bots/serviceAccounts", json={"accountId": "one-more"})
        assert refused.status_code == 429 and refused.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
        reset_settings(DEPLOY_ALLOWED_PROJECTS="full-bots,spare-bots")
        dep, job = create(api, callers["owner"], gcpProject="full-bots")
        done = denv.wait_job(job["_id"])
        assert done.status == "completed", done.log
        ident = identity.get(dep["_id"])
        assert ident.project == "spare-bots" and ident.email.endswith("@spare-bots.iam.gserviceaccount.com")
        assert vm_account(denv, dep) == ident.email
        assert denv.compute.state()["instances"][f"full-bots/us-central1-a/{dep['vmName']}"] == "RUNNING"

        reset_settings(DEPLOY_ALLOWED_PROJECTS="full-bots")  # nowhere to go: the job fails, saying why
        dep2, job2 = create(api, callers["owner"], gcpProject="full-bots")
        failed = denv.wait_job(job2["_id"])
        assert failed.status == "failed" and "no project has room" in failed.log
        assert f"full-bots/us-central1-a/{dep2['vmName']}" not in denv.compute.state()["instances"]
    finally:
        os.environ.pop("DEPLOY_ALLOWED_PROJECTS", None)
        reset_settings()
        for email in made:
            httpx.delete(f"{denv.iam.url}/v1/projects/full-bots/serviceAccounts/{email}")


def test_update_moves_a_vm_of_the_shared_account_to_its_own(api, callers, denv):
    """A VM made before per-bot identities (running as the shared oc-bot-vm) gets its own account
    from the `update` action: stopped, given its account, started with the new startup script."""
    from google.cloud import compute_v1

    from shared import repos
    from shared.deploy import compute, identity

    dep, job = create(api, callers["owner"])
    denv.wait_job(job["_id"])
    legacy = "oc-bot-vm@demo-openclaw.iam.gserviceaccount.com"
    where = dict(project=dep["gcpProject"], zone=dep["zone"], instance=dep["vmName"])
    for call, kw in (("stop", {}), ("set_service_account", {
            "instances_set_service_account_request_resource": compute_v1.InstancesSetServiceAccountRequest(
                email=legacy, scopes=["https://www.googleapis.com/auth/cloud-platform"])}), ("start", {})):
        op = getattr(compute.instances(), f"{call}_unary")(**where, **kw)
        compute.wait(call, op, dep["gcpProject"], dep["zone"])
    assert vm_account(denv, dep) == legacy
    r = api("POST", f"/deployments/{dep['_id']}/actions", callers["owner"], json={"action": "update"})
    done = denv.wait_job(r.json["job"]["_id"])
    assert done.status == "completed", done.log
    assert "moving it to its own account" in done.log
    assert vm_account(denv, dep) == identity.get(dep["_id"]).email
    denv.wait_for(lambda: "vm: ready" in (repos.deploy_jobs.get(done.id).log or ""),
                  what="signed reports from the moved VM")
