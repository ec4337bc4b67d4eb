"""A deployment's bot gets its knowledge/media credential at deploy: the token only in Secret
Manager (named in the VM's config), its hash in Firestore; kept across redeploys; revoked on delete."""
import json

import pytest
from google.api_core import exceptions as gexc
from test_deployments_api import create


def test_deploy_issues_keeps_and_delete_revokes_the_bot_credential(api, callers, denv):
    from shared import bot_credentials
    from shared.deploy import compute, secrets, startup

    owner = callers["owner"]
    dep, job = create(api, owner)
    assert denv.wait_job(job["_id"]).status == "completed"
    token = secrets.access(dep["_id"], startup.BOT_TOKEN_KEY)
    cred = bot_credentials.status(dep["_id"])
    assert cred.revokedAt is None and token not in json.dumps(cred.to_api()) and cred.tokenHash not in token

    bot = {"Authorization": f"Bot {token}"}
    assert api("GET", "/knowledge", headers=bot).status_code == 200  # acts as the owner
    assert api("GET", "/media", headers=bot).status_code == 200
    assert api("GET", "/deployments", headers=bot).status_code == 401  # knowledge and media only

    inst = compute.instances().get(project="acme-bots", zone="us-central1-a", instance=dep["vmName"])
    raw = {i.key: i.value for i in inst.metadata.items}["openclaw-config"]
    config = json.loads(raw)
    assert token not in raw  # the VM reads the token from Secret Manager at boot
    assert config["secrets"][startup.BOT_TOKEN_KEY] == secrets.secret_id(dep["_id"], startup.BOT_TOKEN_KEY)
    assert config["backend"]["knowledgeUrl"].endswith("/knowledge") and config["backend"]["mediaUrl"].endswith("/media")

    path = f"/deployments/{dep['_id']}/actions"
    redeploy = api("POST", path, owner, json={"action": "deploy"})
    assert denv.wait_job(redeploy.json["job"]["_id"]).status == "completed"
    assert secrets.access(dep["_id"], startup.BOT_TOKEN_KEY) == token  # a running bot keeps working

    bot_credentials.revoke(dep["_id"])  # revoked by the owner: the next deploy issues a new one
    again = api("POST", path, owner, json={"action": "deploy"})
    assert denv.wait_job(again.json["job"]["_id"]).status == "completed"
    new_token = secrets.access(dep["_id"], startup.BOT_TOKEN_KEY)
    assert new_token != token
    assert api("GET", "/knowledge", headers={"Authorization": f"Bot {new_token}"}).status_code == 200

    gone = api("POST", path, owner, json={"action": "delete"})
    assert denv.wait_job(gone.json["job"]["_id"]).status == "completed"
    assert api("GET", "/knowledge", headers={"Authorization": f"Bot {new_token}"}).status_code == 401
    with pytest.raises(gexc.NotFound):
        secrets.access(dep["_id"], startup.BOT_TOKEN_KEY)
