"""Backups (issue 17): the plan's snapshot schedule attached to every bot's disk, a snapshot before
each delete, restore into a new bot with the same configuration and the disk's content, and
retention (Compute's schedule for its own snapshots, the cleanup for the rest), all through the real
google-cloud-compute client against the local Compute stand-in."""
from __future__ import annotations

import httpx
import pytest
from test_deployments_api import create

PROJECT, ZONE = "acme-bots", "us-central1-a"
DAY_MS = 86_400_000


def disk_files(denv, vm: str, files: dict | None = None):
    url = f"{denv.compute.url}/_disks/{PROJECT}/{ZONE}/{vm}"
    r = httpx.put(url, json=files) if files is not None else httpx.get(url)
    return r.json() if r.status_code == 200 else r.status_code


def fire_schedules(denv) -> dict:
    return httpx.post(f"{denv.compute.url}/_schedules/run").json()


def advance(denv, monkeypatch, days: float) -> None:
    """Moves both clocks on: Compute's (retention of its own snapshots) and ours (expireAt)."""
    from shared import clock

    httpx.post(f"{denv.compute.url}/_clock", json={"advanceS": days * 86400}).raise_for_status()
    now = clock.now_ms()
    monkeypatch.setattr(clock, "now_ms", lambda: now + int(days * DAY_MS))


@pytest.fixture
def live_bot(api, callers, denv):
    dep, job = create(api, callers["owner"])
    done = denv.wait_job(job["_id"])
    assert done.status == "completed", done.log
    return dep, done


def test_deploy_attaches_the_plans_schedule(api, callers, denv, live_bot):
    dep, done = live_bot
    assert "backups: a snapshot daily, each kept 7 days (starter plan)" in done.log
    state = denv.compute.state()
    assert state["disks"][f"{PROJECT}/{ZONE}/{dep['vmName']}"] == [
        f"https://www.googleapis.com/compute/v1/projects/{PROJECT}/regions/us-central1/resourcePolicies/"
        "oc-backup-starter-24h-7d"]
    assert "acme-bots/us-central1/oc-backup-starter-24h-7d" in state["policies"]
    from shared.backups import gce

    policy = gce.policies().get(project=PROJECT, region="us-central1", resource_policy="oc-backup-starter-24h-7d")
    sched = policy.snapshot_schedule_policy
    assert sched.schedule.daily_schedule.days_in_cycle == 1 and sched.schedule.daily_schedule.start_time == "03:00"
    assert sched.retention_policy.max_retention_days == 7
    assert sched.retention_policy.on_source_disk_delete == "APPLY_RETENTION_POLICY"
    # the owner upgrades to pro: the next update moves the disk to pro's schedule (one per disk)
    from shared import repos

    sub = repos.subscriptions.first(userId=callers["owner"].user_id)
    repos.subscriptions.update(sub.id, {"plan": "pro", "status": "active"})
    r = api("POST", f"/deployments/{dep['_id']}/actions", callers["owner"], json={"action": "update"})
    job = denv.wait_job(r.json["job"]["_id"])
    assert job.status == "completed" and "every 6 hours, each kept 30 days (pro plan)" in job.log, job.log
    assert denv.compute.state()["disks"][f"{PROJECT}/{ZONE}/{dep['vmName']}"][0].endswith("oc-backup-pro-6h-30d")
    # other users see nothing of it
    assert api("GET", f"/backups/{dep['_id']}", callers["other"]).status_code == 404
    assert api("GET", "/backups", callers["other"]).json["items"] == []


def test_delete_snapshots_then_restore_brings_back_bot_and_disk(api, callers, denv, live_bot):
    dep, _ = live_bot
    owner = callers["owner"]
    assert api("PUT", f"/skillConfigs/{dep['_id']}/daily-briefing", owner,
               json={"enabled": True, "cronOverride": "30 8 * * 1-5"}).status_code == 201
    disk_files(denv, dep["vmName"], {"/var/lib/openclaw/memory.md": "likes tea", "/etc/openclaw/x": "1"})
    made = fire_schedules(denv)["created"]
    assert len([n for n in made if n.startswith(dep["vmName"][:40])]) == 1  # (other tests' bots too)
    disk_files(denv, dep["vmName"], {"/var/lib/openclaw/memory.md": "likes tea and cake"})

    r = api("POST", f"/deployments/{dep['_id']}/actions", owner, json={"action": "delete"})
    job = denv.wait_job(r.json["job"]["_id"])
    assert job.status == "completed", job.log
    assert "final snapshot oc-final-" in job.log and "kept until" in job.log
    assert disk_files(denv, dep["vmName"]) == 404  # the disk went with the VM

    listed = api("GET", "/backups", owner).json["items"]
    assert [b["_id"] for b in listed] == [dep["_id"]] and listed[0]["deletedAt"]
    assert listed[0]["settings"]["botName"] == "Ada's Bot!"
    detail = api("GET", f"/backups/{dep['_id']}", owner).json
    kinds = [s["kind"] for s in detail["snapshots"]]
    assert kinds == ["final", "scheduled"]
    final = detail["snapshots"][0]
    assert final["expiresAt"] == listed[0]["expireAt"] == listed[0]["deletedAt"] + 7 * DAY_MS
    assert detail["snapshots"][1]["expiresAt"] == detail["snapshots"][1]["createdAt"] + 7 * DAY_MS

    # restore from the last snapshot: a new bot, same configuration, the disk as it was at delete
    assert api("POST", f"/backups/{dep['_id']}/snapshots/{final['name']}/restore", callers["other"],
               json={}).status_code == 404
    assert api("POST", f"/backups/{dep['_id']}/snapshots/nope/restore", owner, json={}).status_code == 404
    r = api("POST", f"/backups/{dep['_id']}/snapshots/{final['name']}/restore", owner, json={})
    assert r.status_code == 201, r.json
    new, job = r.json["deployment"], r.json["job"]
    assert new["_id"] != dep["_id"] and new["botName"] == dep["botName"]
    assert new["primaryModel"] == dep["primaryModel"] and new["fallbackModels"] == dep["fallbackModels"]
    done = denv.wait_job(job["_id"])
    assert done.status == "completed", done.log
    assert disk_files(denv, new["vmName"]) == {"/var/lib/openclaw/memory.md": "likes tea and cake",
                                              "/etc/openclaw/x": "1"}
    from shared.backups import gce

    disk = gce.disks().get(project=PROJECT, zone=ZONE, disk=new["vmName"])
    assert disk.source_snapshot.endswith(f"/global/snapshots/{final['name']}")
    skills = api("GET", f"/skillConfigs?deploymentId={new['_id']}", owner).json["items"]
    assert [(s["skillId"], s["cronOverride"]) for s in skills] == [("daily-briefing", "30 8 * * 1-5")]
    rec = api("GET", f"/backups/{new['_id']}", owner).json["backup"]
    assert rec["restoredFrom"].endswith(final["name"]) and rec["restoreFrom"] is None
    assert denv.compute.state()["disks"][f"{PROJECT}/{ZONE}/{new['vmName']}"]  # on a schedule too


def test_retention_removes_old_snapshots(api, callers, denv, live_bot, monkeypatch):
    dep, _ = live_bot
    owner = callers["owner"]
    fire_schedules(denv)
    r = api("POST", f"/deployments/{dep['_id']}/actions", owner, json={"action": "delete"})
    assert denv.wait_job(r.json["job"]["_id"]).status == "completed"
    names = [s["name"] for s in api("GET", f"/backups/{dep['_id']}", owner).json["snapshots"]]
    assert len(names) == 2
    # inside retention the cleanup keeps everything
    assert api("POST", "/backups", callers["admin"]).json["removedRecords"] == 0
    advance(denv, monkeypatch, 8)
    # Compute's schedule removes its own snapshot of the deleted disk (APPLY_RETENTION_POLICY) ...
    assert any(n in names for n in fire_schedules(denv)["expired"])
    # ... the cleanup the final snapshot and the record
    assert api("POST", "/backups", callers["owner"]).status_code == 403
    report = api("POST", "/backups", callers["admin"]).json
    assert report["removedRecords"] == 1 and report["deletedSnapshots"] >= 1 and report["errors"] == []
    assert not set(names) & set(denv.compute.state()["snapshots"])
    assert api("GET", f"/backups/{dep['_id']}", owner).status_code == 404


def test_failed_final_snapshot_is_said_never_silent(api, callers, denv):
    owner = callers["owner"]
    # transient once: the job retries and the snapshot is taken
    dep, job = create(api, owner)
    assert denv.wait_job(job["_id"]).status == "completed"
    denv.compute.fault("disks.createSnapshot", "error", status=503)
    r = api("POST", f"/deployments/{dep['_id']}/actions", owner, json={"action": "delete"})
    done = denv.wait_job(r.json["job"]["_id"])
    assert done.status == "completed" and "will retry" in done.log and "final snapshot oc-final-" in done.log
    # refused for good: the delete goes on and the job says what happened and what is left
    dep, job = create(api, owner)
    assert denv.wait_job(job["_id"]).status == "completed"
    fire_schedules(denv)
    denv.compute.fault("disks.createSnapshot", "error", status=403, times=5, message="quota SNAPSHOTS exceeded")
    r = api("POST", f"/deployments/{dep['_id']}/actions", owner, json={"action": "delete"})
    done = denv.wait_job(r.json["job"]["_id"])
    assert done.status == "completed", done.log
    assert "WARNING: no final snapshot" in done.log and "quota SNAPSHOTS exceeded" in done.log
    assert "the newest scheduled snapshot" in done.log
    rec = api("GET", f"/backups/{dep['_id']}", owner).json
    assert rec["backup"]["finalSnapshot"] is None and "quota" in rec["backup"]["finalSnapshotError"]
    assert [s["kind"] for s in rec["snapshots"]] == ["scheduled"]
