"""Backups of the bots' disks.

- **Scheduled**: the deploy job attaches the plan's snapshot schedule (a regional resource policy,
  one per plan and schedule, made on first use) to the bot's boot disk; Compute takes the snapshots
  and deletes each after the plan's retention, also once the disk is gone (APPLY_RETENTION_POLICY).
- **Before a delete**: the delete job snapshots the disk (requestId per job: a retry finds the same
  snapshot) and keeps it for the plan's retention. A failed snapshot is retried with the job while
  attempts remain; then the delete goes on and the job's log says so and what is left.
- **Restore**: a new deployment with the saved configuration whose boot disk is made from the
  snapshot (`initializeParams.sourceSnapshot`).
- **Cleanup** (scheduled): a deleted bot's record past its `expireAt` has its remaining snapshots
  deleted, then the record; so nothing of a deleted bot outlives its retention.
"""
from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timezone

from shared import clock, entitlements, logs, repos
from shared.backups import gce
from shared.backups import settings as backup_settings
from shared.backups.store import BotBackup, backups
from shared.deploy import compute
from shared.deploy.compute import ComputeError
from shared.models import Deployment

log = logs.get("backups")
DAY_MS = 86_400_000
SETTINGS_FIELDS = ("botName", "brandEmoji", "primaryModel", "fallbackModels")


def rid(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "openclaw/backups/" + "/".join(parts)))


def disk_url(project: str, zone: str, disk: str) -> str:
    return f"https://www.googleapis.com/compute/v1/projects/{project}/zones/{zone}/disks/{disk}"


def ms_of(rfc3339: str) -> int:
    return int(datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp() * 1000)


def plan_of(user_id: str) -> str:
    sub = entitlements.subscription_of(user_id)
    return (sub.plan if sub is not None and sub.plan else "starter")


def configuration(dep: Deployment) -> dict:
    """What a restore needs to rebuild the same bot (API key values never leave Secret Manager)."""
    plugins = repos.plugin_configs.all({"deploymentId": dep.id}, cap=200)
    skills = repos.skill_configs.all({"deploymentId": dep.id}, cap=200)
    keys = repos.api_keys.all({"deploymentId": dep.id}, cap=200)
    return {"settings": dep.model_dump(include=set(SETTINGS_FIELDS)),
            "plugins": [{"pluginId": p.pluginId, "enabled": p.enabled, "config": p.config} for p in plugins],
            "skills": [{"skillId": s.skillId, "enabled": s.enabled, "cronOverride": s.cronOverride} for s in skills],
            "apiKeyNames": sorted(k.keyName for k in keys)}


# scheduled snapshots (deploy job)
def ensure_policy(project: str, region: str, sched: backup_settings.Schedule) -> str:
    """The plan's snapshot schedule in this project and region (created once); its URL."""
    from google.cloud import compute_v1

    cfg = backup_settings.get()
    name = sched.policy_name
    found = gce.absent_ok(compute.call, "get the snapshot schedule", gce.policies().get, project=project,
                          region=region, resource_policy=name)
    if found is not None:
        return found.self_link
    if sched.every_h == 24:
        cycle = compute_v1.ResourcePolicySnapshotSchedulePolicySchedule(
            daily_schedule=compute_v1.ResourcePolicyDailyCycle(days_in_cycle=1, start_time=cfg.start_utc))
    else:
        cycle = compute_v1.ResourcePolicySnapshotSchedulePolicySchedule(
            hourly_schedule=compute_v1.ResourcePolicyHourlyCycle(hours_in_cycle=sched.every_h,
                                                                 start_time=cfg.start_utc))
    policy = compute_v1.ResourcePolicy(
        name=name, description=f"OpenClaw bots on the {sched.plan} plan: a snapshot every {sched.every_h} h, "
                               f"kept {sched.keep_days} days",
        snapshot_schedule_policy=compute_v1.ResourcePolicySnapshotSchedulePolicy(
            schedule=cycle,
            retention_policy=compute_v1.ResourcePolicySnapshotSchedulePolicyRetentionPolicy(
                max_retention_days=sched.keep_days, on_source_disk_delete="APPLY_RETENTION_POLICY"),
            snapshot_properties=compute_v1.ResourcePolicySnapshotSchedulePolicySnapshotProperties(
                labels={"openclaw-backup": "scheduled", "openclaw-plan": sched.plan},
                storage_locations=[cfg.storage_location])))
    req = compute_v1.InsertResourcePolicyRequest(project=project, region=region, resource_policy_resource=policy,
                                                 request_id=rid("policy", project, region, name))
    try:
        op = compute.call("create the snapshot schedule", gce.policies().insert_unary, request=req)
        gce.wait("create the snapshot schedule", op, project, region=region)
    except ComputeError as exc:
        if exc.status != 409:  # made meanwhile by another job
            raise
    return f"https://www.googleapis.com/compute/v1/projects/{project}/regions/{region}/resourcePolicies/{name}"


def protect(dep: Deployment, job_id: str) -> str:
    """After the VM exists: its disk gets the plan's snapshot schedule (replacing another plan's)
    and the bot's record is brought up to date. Returns a line for the job's log."""
    from google.cloud import compute_v1

    plan = plan_of(dep.userId)
    sched = backup_settings.get().schedule(plan)
    region = gce.region_of(dep.zone)
    link = ensure_policy(dep.gcpProject, region, sched)
    disk = gce.get_disk(dep.gcpProject, dep.zone, dep.vmName)
    if disk is None:
        raise ComputeError(f"the VM's disk {dep.vmName} was not found", False, 404)
    attached = list(disk.resource_policies)
    ours = [p for p in attached if p.rsplit("/", 1)[-1].startswith("oc-backup-")]
    if link not in attached:
        if ours:  # another plan's (or an older) schedule: one schedule per disk
            op = compute.call("detach the previous snapshot schedule", gce.disks().remove_resource_policies_unary,
                              request=compute_v1.RemoveResourcePoliciesDiskRequest(
                                  project=dep.gcpProject, zone=dep.zone, disk=dep.vmName,
                                  request_id=rid(job_id, "detach"),
                                  disks_remove_resource_policies_request_resource=compute_v1.
                                  DisksRemoveResourcePoliciesRequest(resource_policies=ours)))
            gce.wait("detach the previous snapshot schedule", op, dep.gcpProject, zone=dep.zone)
        op = compute.call("attach the snapshot schedule", gce.disks().add_resource_policies_unary,
                          request=compute_v1.AddResourcePoliciesDiskRequest(
                              project=dep.gcpProject, zone=dep.zone, disk=dep.vmName, request_id=rid(job_id, "attach"),
                              disks_add_resource_policies_request_resource=compute_v1.DisksAddResourcePoliciesRequest(
                                  resource_policies=[link])))
        gce.wait("attach the snapshot schedule", op, dep.gcpProject, zone=dep.zone)
    record(dep, plan, sched, restored=True)
    every = "daily" if sched.every_h == 24 else f"every {sched.every_h} hours"
    return f"backups: a snapshot {every}, each kept {sched.keep_days} days ({plan} plan)"


def record(dep: Deployment, plan: str, sched, restored: bool = False, **extra) -> BotBackup:
    """Write the bot's record with its current configuration (kept fields: restore source, creation)."""
    now = clock.now_ms()
    old = backups.get(dep.id)
    item = BotBackup(
        _id=dep.id, userId=dep.userId, gcpProject=dep.gcpProject, zone=dep.zone, disk=dep.vmName,
        diskUrl=disk_url(dep.gcpProject, dep.zone, dep.vmName), plan=plan, policy=sched.policy_name,
        keepDays=sched.keep_days, **configuration(dep),
        restoreFrom=None if restored or old is None else old.restoreFrom,
        restoredFrom=(old.restoreFrom or old.restoredFrom) if old else None,
        createdAt=old.createdAt if old else now, updatedAt=now, **extra)
    return backups.set(item)


def boot_from_snapshot(dep: Deployment, instance):
    """The VM about to be created: a restore's boot disk is made from its snapshot, not the image."""
    rec = backups.get(dep.id)
    if rec is not None and rec.restoreFrom and rec.deletedAt is None:
        params = instance.disks[0].initialize_params
        del params.source_image
        params.source_snapshot = rec.restoreFrom
    return instance


# before a delete (delete job)
def final_name(dep_id: str, job_id: str) -> str:
    return f"oc-final-{dep_id}-{hashlib.sha256(job_id.encode()).hexdigest()[:12]}"[:63].lower()


def before_delete(dep: Deployment, job_id: str, last_attempt: bool) -> list[str]:
    """Snapshot the disk before the VM (and its disk) are deleted; record the bot as deleted.
    Transient failures raise (the job retries) unless this is the last attempt; any failure that
    is not retried is written in the job's log, with what backups remain."""
    from google.cloud import compute_v1

    plan = plan_of(dep.userId)
    sched = backup_settings.get().schedule(plan)
    now = clock.now_ms()
    expire = now + sched.keep_days * DAY_MS
    name, error = final_name(dep.id, job_id), None
    try:
        if gce.get_snapshot(dep.gcpProject, name) is not None:
            pass  # taken by an earlier attempt of this job
        elif gce.get_disk(dep.gcpProject, dep.zone, dep.vmName) is None:
            name, error = None, "the bot's disk was already gone"
        else:
            snap = compute_v1.Snapshot(name=name, storage_locations=[backup_settings.get().storage_location],
                                       labels={"openclaw-backup": "final", "openclaw-deployment": dep.id.lower(),
                                               "openclaw-expires": str(expire // 1000)},
                                       description=f"taken before bot {dep.id} was deleted")
            op = compute.call("snapshot the disk before deleting", gce.disks().create_snapshot_unary,
                              request=compute_v1.CreateSnapshotDiskRequest(
                                  project=dep.gcpProject, zone=dep.zone, disk=dep.vmName, snapshot_resource=snap,
                                  request_id=rid(job_id, "final")))
            gce.wait("snapshot the disk before deleting", op, dep.gcpProject, zone=dep.zone)
    except ComputeError as exc:
        if exc.transient and not last_attempt:
            raise
        name, error = None, str(exc)
    try:
        record(dep, plan, sched, deletedAt=now, expireAt=expire, finalSnapshot=name, finalSnapshotError=error)
    except Exception as exc:  # the record is what the owner lists: without it, retry rather than lose track
        raise ComputeError(f"record the bot's backups: {type(exc).__name__}", True) from None
    until = datetime.fromtimestamp(expire / 1000, timezone.utc).strftime("%Y-%m-%d")
    if error is None:
        return [f"final snapshot {name} taken; it and the scheduled snapshots are kept until {until}"]
    remaining = _newest_scheduled(dep)
    left = (f"the newest scheduled snapshot ({remaining}) is kept until {until}" if remaining
            else "no scheduled snapshot of this bot exists")
    log.warning("final snapshot failed", extra={"deploymentId": dep.id, "error": error})
    return [f"WARNING: no final snapshot: {error}; deleting anyway; {left}"]


def _newest_scheduled(dep: Deployment) -> str | None:
    try:
        snaps = gce.list_snapshots(dep.gcpProject, [disk_url(dep.gcpProject, dep.zone, dep.vmName)], 500)
    except ComputeError:
        return None
    return snaps[-1].name if snaps else None


# the owner's view
def snapshot_view(rec: BotBackup, s) -> dict:
    created = ms_of(s.creation_timestamp)
    final = s.name == rec.finalSnapshot or dict(s.labels).get("openclaw-backup") == "final"
    expires = rec.expireAt if final and rec.expireAt else created + rec.keepDays * DAY_MS
    return {"name": s.name, "kind": "final" if final else "scheduled", "status": s.status,
            "createdAt": created, "expiresAt": expires, "diskSizeGb": int(s.disk_size_gb or 0),
            "storageBytes": int(s.storage_bytes or 0)}


def snapshots_of(rec: BotBackup) -> list[dict]:
    cap = backup_settings.get().list_max
    items = [snapshot_view(rec, s) for s in gce.list_snapshots(rec.gcpProject, [rec.diskUrl], cap)]
    return sorted(items, key=lambda i: -i["createdAt"])


# cleanup (scheduled)
def cleanup(limit: int = 200) -> dict:
    """Deleted bots past their retention: delete what is left of their snapshots, then the record."""
    now = clock.now_ms()
    report = {"checked": 0, "deletedSnapshots": 0, "removedRecords": 0, "errors": []}
    q = backups.query({}, (("expireAt", "ASCENDING"),), (("expireAt", "<=", now),)).limit(limit)
    for snap in q.stream():
        rec = backups.load(snap)
        report["checked"] += 1
        if repos.deployments.get(rec.id) is not None:  # its delete job failed after all: the bot lives on
            backups.update(rec.id, {"deletedAt": None, "expireAt": None})
            continue
        try:
            names = {s.name for s in gce.list_snapshots(rec.gcpProject, [rec.diskUrl], 10_000)}
            if rec.finalSnapshot:
                names.add(rec.finalSnapshot)
            for name in sorted(names):
                if gce.delete_snapshot(rec.gcpProject, name, rid("cleanup", rec.id, name)):
                    report["deletedSnapshots"] += 1
            backups.delete(rec.id)
            report["removedRecords"] += 1
        except ComputeError as exc:
            report["errors"].append({"deploymentId": rec.id, "error": str(exc), "transient": exc.transient})
    log.info("backup cleanup", extra={k: v for k, v in report.items() if k != "errors"})
    return report


# restore (the owner's request)
def restorable(rec: BotBackup, name: str):
    """The snapshot `name` of this bot, ready to make a disk from (else 404 / 409)."""
    from shared.errors import Conflict, Unavailable, UpstreamFailed, not_found

    try:
        snap = gce.get_snapshot(rec.gcpProject, name)
    except ComputeError as exc:
        if exc.transient:
            raise Unavailable("compute_unavailable", f"Compute Engine: {exc}") from None
        raise UpstreamFailed("compute_error", f"Compute Engine: {exc}") from None
    if snap is None or snap.source_disk != rec.diskUrl:
        raise not_found(f"snapshot {name!r}")
    if snap.status != "READY":
        raise Conflict("snapshot_not_ready", f"snapshot {name!r} is {snap.status}; try again when it is READY")
    return snap


def prepare_restore(rec: BotBackup, snap, dep: Deployment) -> list:
    """The new bot's record (its disk to come from `snap`) and its copied plugin and skill configs,
    written in one batch before its deployment is created; returns the references (to undo)."""
    from shared import db
    from shared.models import PluginConfig, SkillConfig

    now = clock.now_ms()
    new = BotBackup(_id=dep.id, userId=dep.userId, gcpProject=dep.gcpProject, zone=dep.zone, disk=dep.vmName,
                    diskUrl=disk_url(dep.gcpProject, dep.zone, dep.vmName), plan=rec.plan, policy=None,
                    keepDays=rec.keepDays, settings=dep.model_dump(include=set(SETTINGS_FIELDS)),
                    plugins=rec.plugins, skills=rec.skills, apiKeyNames=rec.apiKeyNames,
                    restoreFrom=snap.self_link, createdAt=now, updatedAt=now)
    docs = [new] + [PluginConfig(_id=f"{dep.id}_{p['pluginId']}", deploymentId=dep.id, userId=dep.userId, **p)
                    for p in rec.plugins] \
        + [SkillConfig(_id=f"{dep.id}_{s['skillId']}", deploymentId=dep.id, userId=dep.userId, **s)
           for s in rec.skills]
    batch = db.client().batch()
    refs = []
    for d in docs:
        ref = db.client().collection(d.collection).document(d.id)
        batch.set(ref, d.to_store())
        refs.append(ref)
    batch.commit()
    return refs


def undo_restore(refs: list) -> None:
    from shared import db

    batch = db.client().batch()
    for ref in refs:
        batch.delete(ref)
    batch.commit()
