"""Every endpoint of the deployments domain (deployments, deployWorker, pluginConfigs, skillConfigs,
apiKeys, backups) x {anonymous, other user, owner, admin, suspended}: the expected status. "owner" owns the
addressed deployment and has a subscription (trialing); "other" has none. provisioningEvents is a
Pub/Sub function, with no HTTP endpoint (tests/test_provisioning_events.py).

Each call is metered like tests/test_access_matrix.py, so `pytest --cost-table` lists these rows too.
Rows that queue a job (create, actions) may also count a little of the job's own work when the
worker starts before the answer is back."""
import json

import pytest

from devtools.firestore_meter import metered

PROJECT, ZONE, VM = "acme-bots", "us-central1-a", "oc-access-matrix"
CALLERS = ("anonymous", "other", "owner", "admin", "suspended")
NEW = {"gcpProject": PROJECT, "zone": ZONE, "botName": "Matrix", "primaryModel": "anthropic/claude-sonnet-4"}
KEY = {"value": "sk-" + "a" * 40}
SNAP = "oc-access-matrix-snap"


def owned(status: int) -> tuple:
    """Owner and admin reach it; another user gets 404 (ids do not leak)."""
    return (401, 404, status, status, 403)


def public(status: int) -> tuple:
    return (status, status, status, status, 403)


MATRIX = [
    # method, path, body, statuses in CALLERS order
    ("GET", "/deployments", None, (401, 200, 200, 200, 403)),
    ("GET", "/deployments?status=running", None, (401, 200, 200, 200, 403)),
    ("GET", "/deployments/jobs", None, (401, 200, 200, 200, 403)),  # the caller's own jobs
    ("POST", "/deployments", NEW, (401, 403, 201, 201, 403)),  # other: no subscription; admins act regardless
    ("GET", "/deployments/{dep}", None, owned(200)),
    ("GET", "/deployments/nope", None, (401, 404, 404, 404, 403)),
    ("PATCH", "/deployments/{dep}", {"botName": "Renamed"}, owned(200)),
    ("POST", "/deployments/{dep}/actions", {"action": "reset"}, owned(202)),
    ("GET", "/deployments/{dep}/jobs", None, owned(200)),
    ("GET", "/deployments/{dep}/jobs/{job}", None, owned(200)),
    ("GET", "/deployments/{dep}/status", None, owned(200)),
    ("GET", "/deployments/{dep}/logs", None, owned(200)),
    # the bot's own dashboard: its owner only (an admin gets 403: an admin surface of someone's bot)
    ("POST", "/deployments/{dep}/dashboard-access", {}, (401, 404, 200, 403, 403)),
    # only Cloud Tasks (its headers; outside local mode also its OIDC token)
    ("POST", "/deployWorker", {"jobId": "{job}"}, (403, 403, 403, 403, 403)),
    ("GET", "/pluginConfigs/catalog", None, public(200)),
    ("GET", "/pluginConfigs?deploymentId={dep}", None, owned(200)),
    ("GET", "/pluginConfigs/{dep}/knowledge", None, owned(200)),
    ("GET", "/pluginConfigs/{dep}/image-gen", None, (401, 404, 404, 404, 403)),  # none yet
    ("PUT", "/pluginConfigs/{dep}/knowledge", {"enabled": False}, owned(200)),
    ("PUT", "/pluginConfigs/{dep}/image-gen", {"enabled": True, "config": {"provider": "openai"}}, owned(201)),
    ("PATCH", "/pluginConfigs/{dep}/knowledge", {"config": {"maxResults": 3}}, owned(200)),
    ("DELETE", "/pluginConfigs/{dep}/knowledge", None, owned(204)),
    ("GET", "/skillConfigs?deploymentId={dep}", None, owned(200)),
    ("GET", "/skillConfigs/{dep}/daily-briefing", None, owned(200)),
    ("PUT", "/skillConfigs/{dep}/daily-briefing", {"enabled": True, "cronOverride": "0 6 * * *"}, owned(200)),
    ("PUT", "/skillConfigs/{dep}/job-hunter", {"enabled": True}, owned(201)),
    ("PUT", "/skillConfigs/{dep}/content-engine", {"enabled": True}, owned(201)),  # needs knowledge: on
    ("PATCH", "/skillConfigs/{dep}/daily-briefing", {"enabled": False}, owned(200)),
    ("DELETE", "/skillConfigs/{dep}/daily-briefing", None, owned(204)),
    ("GET", "/apiKeys/names", None, public(200)),
    ("GET", "/apiKeys?deploymentId={dep}", None, owned(200)),
    ("PUT", "/apiKeys/{dep}/openai-api-key", KEY, owned(200)),
    ("DELETE", "/apiKeys/{dep}/openai-api-key", None, owned(204)),
    ("GET", "/backups", None, (401, 200, 200, 200, 403)),
    ("GET", "/backups/{dep}", None, owned(200)),
    ("GET", "/backups/nope", None, (401, 404, 404, 404, 403)),
    ("POST", "/backups/{dep}/snapshots/" + SNAP + "/restore", {}, (401, 404, 201, 201, 403)),
    ("POST", "/backups", None, (401, 403, 403, 200, 403)),  # the cleanup: Cloud Scheduler or an admin
]

COST_ROWS: list[tuple] = []  # (method, path, caller, status, reads, writes) of every call made

CASES = [pytest.param(m, p, b, who, st, id=f"{m} {p} as {who}")
         for m, p, b, statuses in MATRIX for who, st in zip(CALLERS, statuses)]


@pytest.fixture(scope="module")
def vm(deploy_env):
    """One running VM the matrix's deployments point at (a reset keeps it running)."""
    from google.cloud import compute_v1

    from shared.backups import gce
    from shared.deploy import compute

    inst = compute_v1.Instance(name=VM, machine_type=f"zones/{ZONE}/machineTypes/e2-small", disks=[
        compute_v1.AttachedDisk(boot=True, auto_delete=True, initialize_params=compute_v1.AttachedDiskInitializeParams(
            source_image="projects/debian-cloud/global/images/family/debian-12"))])
    op = compute.instances().insert_unary(project=PROJECT, zone=ZONE, instance_resource=inst)
    compute.wait("create VM", op, PROJECT, ZONE)
    op = gce.disks().create_snapshot_unary(project=PROJECT, zone=ZONE, disk=VM,
                                           snapshot_resource=compute_v1.Snapshot(name=SNAP))  # what a restore uses
    compute.wait("snapshot", op, PROJECT, ZONE)
    return VM


@pytest.fixture
def world(api, callers, denv, vm):
    """The owner's deployment (new id per test), its finished deploy job, a plugin, a skill and a key."""
    import secrets as pysecrets

    from shared import clock, repos
    from shared.deploy import jobs, secrets
    from shared.deploy.redact import mask
    from shared.models import ApiKey, DeployJob, Deployment, PluginConfig, SkillConfig

    owner, now = callers["owner"].user_id, clock.now_ms()
    api("GET", "/users/me", callers["owner"])  # creates the owner's user
    dep_id = pysecrets.token_hex(10)
    repos.deployments.set(Deployment(_id=dep_id, userId=owner, gcpProject=PROJECT, zone=ZONE, vmName=vm,
                                     status="running", botName="Matrix", primaryModel="anthropic/claude-sonnet-4",
                                     createdAt=now))
    job = DeployJob(_id=jobs.new_job_id(now), userId=owner, deploymentId=dep_id, action="deploy",
                    status="completed", log="deploy completed", startedAt=now, completedAt=now)
    repos.deploy_jobs.set(job)
    jobs.lock_ref(dep_id).set(jobs.FREE)
    common = {"deploymentId": dep_id, "userId": owner}
    repos.plugin_configs.set(PluginConfig(_id=f"{dep_id}_knowledge", pluginId="knowledge", enabled=True, **common))
    repos.skill_configs.set(SkillConfig(_id=f"{dep_id}_daily-briefing", skillId="daily-briefing", enabled=True,
                                        **common))
    secrets.put(dep_id, "openai-api-key", KEY["value"])
    repos.api_keys.set(ApiKey(_id=f"{dep_id}_openai-api-key", keyName="openai-api-key",
                              maskedValue=mask(KEY["value"]), **common))
    from shared.backups import service as backups

    backups.record(repos.deployments.get(dep_id), "starter", backups.backup_settings.get().schedule("starter"))
    return {"callers": callers, "ids": {"{dep}": dep_id, "{job}": job.id}}


def fill(text: str, ids: dict[str, str]) -> str:
    for mark, value in ids.items():
        text = text.replace(mark, value)
    return text


@pytest.mark.parametrize("method,path,body,who,status", CASES)
def test_access(api, world, method, path, body, who, status):
    ids = world["ids"]
    concrete = fill(path, ids)
    body = json.loads(fill(json.dumps(body), ids)) if body is not None else None
    with metered() as meter:
        r = api(method, concrete, world["callers"][who], json=body)
    COST_ROWS.append((method, path, who, r.status_code, meter.reads, meter.writes))
    assert r.status_code == status, r.get_data(as_text=True)
    if status >= 400:
        assert set(r.json["error"]) >= {"code", "message"}
