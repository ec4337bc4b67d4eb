"""`backups`: the owner's bots with backups (live and deleted), their snapshots, a restore as a new
bot, and the scheduled cleanup of deleted bots' snapshots past retention (shared/backups)."""
from __future__ import annotations

import re
import secrets as pysecrets
from typing import Annotated, Literal

from pydantic import BaseModel, StringConstraints

from shared import clock, logs, repos
from shared.api.deployments import BotName, Created, Zone, vm_name
from shared.api.inputs import PageQuery, Strict
from shared.backups import service
from shared.backups import settings as backup_settings
from shared.backups.store import BotBackup, backups
from shared.deploy import access, jobs, settings
from shared.deploy.compute import ComputeError
from shared.errors import Forbidden, Invalid, Unavailable, UpstreamFailed, not_found
from shared.http import Api, Request, page_of, scheduler_caller
from shared.models import Deployment

api = Api("backups", "Backups of the bots' disks: snapshots, restore, retention")
log = logs.get("backups.api")
SNAPSHOT_NAME = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")


class BackupQuery(PageQuery):
    userId: Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^/\s]+$")] | None = None


class SnapshotView(BaseModel):
    name: str
    kind: Literal["scheduled", "final"]
    status: str
    createdAt: int
    expiresAt: int
    diskSizeGb: int
    storageBytes: int


class BackupDetail(BaseModel):
    backup: BotBackup
    snapshots: list[SnapshotView]


class RestoreBody(Strict):
    botName: BotName | None = None  # default: the backed-up bot's name
    zone: Zone | None = None  # default: the backed-up bot's zone (same region or not: snapshots are global)


class CleanupReport(BaseModel):
    checked: int
    deletedSnapshots: int
    removedRecords: int
    errors: list[dict]


def _record(req: Request) -> BotBackup:
    rec = backups.get(req.params["deploymentId"])
    if rec is None or not req.caller.can_access(rec.userId):
        raise not_found(f"backup of deployment {req.params['deploymentId']!r}")
    return rec


def _compute(exc: ComputeError) -> Unavailable | UpstreamFailed:
    if exc.transient:
        return Unavailable("compute_unavailable", f"Compute Engine: {exc}", retry_after=10)
    return UpstreamFailed("compute_error", f"Compute Engine: {exc}")


@api.route("GET", "/", query=BackupQuery, response=page_of(BotBackup))
def list_mine(req: Request):
    """My bots with backups (live and deleted, newest first); admins: any user's with `userId`."""
    q = req.query
    owner = q.userId or req.caller.id
    if owner != req.caller.id and not req.caller.is_admin:
        raise Forbidden("forbidden", "you can list only your own backups")
    return backups.page({"userId": owner}, (("createdAt", "DESCENDING"),), q.limit, q.cursor)


@api.route("GET", "/{deploymentId}", response=BackupDetail)
def get_one(req: Request):
    """A bot's backup record and its snapshots (newest first), each with when it expires."""
    rec = _record(req)
    try:
        return {"backup": rec, "snapshots": service.snapshots_of(rec)}
    except ComputeError as exc:
        raise _compute(exc) from None


@api.route("POST", "/{deploymentId}/snapshots/{name}/restore", body=RestoreBody, status=201, response=Created)
def restore(req: Request):
    """Deploy a new bot with the backed-up bot's configuration and a disk made from the snapshot."""
    rec = _record(req)
    name = req.params["name"]
    if not SNAPSHOT_NAME.fullmatch(name):
        raise not_found(f"snapshot {name!r}")
    access.require_deploy(rec.userId, req.caller)
    zone = req.body.zone or rec.zone
    regions = settings.get().allowed_regions
    if regions and zone.rsplit("-", 1)[0] not in regions:
        raise Invalid("zone_not_allowed", f"zone must be in one of the regions: {', '.join(regions)}")
    snap = service.restorable(rec, name)
    dep_id = pysecrets.token_hex(10)
    fields = {**rec.settings, **({"botName": req.body.botName} if req.body.botName else {})}
    dep = Deployment(_id=dep_id, userId=rec.userId, gcpProject=rec.gcpProject, zone=zone,
                     vmName=vm_name(fields["botName"], dep_id), status="provisioning", createdAt=clock.now_ms(),
                     **fields)
    refs = service.prepare_restore(rec, snap, dep)
    try:
        job = jobs.create_deployment(dep, req.caller.id)
    except Exception:
        if repos.deployments.get(dep_id) is None:  # not created: leave nothing behind
            service.undo_restore(refs)
        raise
    log.info("restore requested", extra={"deploymentId": dep_id, "from": rec.id, "snapshot": name})
    return {"deployment": dep, "job": job}


@api.route("POST", "/", access="scheduler", machine=scheduler_caller(backup_settings.get), response=CleanupReport)
def cleanup(req: Request):
    """Delete what is left of deleted bots' snapshots past retention (Cloud Scheduler, or an admin)."""
    report = service.cleanup()
    if any(e["transient"] for e in report["errors"]):
        raise Unavailable("cleanup_incomplete", "some snapshots could not be deleted for now; retry later",
                          report, retry_after=60)
    return report
