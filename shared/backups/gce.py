"""Compute Engine calls of the backups domain (google-cloud-compute, REST transport): snapshot
schedule policies (regional), the bots' disks, snapshots (global). Calls, timeouts and error
sorting are shared/deploy/compute.py's; operations are waited on in their own scope."""
from __future__ import annotations

import time
from functools import lru_cache

from shared.deploy import compute, settings
from shared.deploy.compute import ComputeError


def _client(name: str):
    from google.cloud import compute_v1

    return getattr(compute_v1, name)(**compute._client_kwargs())


@lru_cache(maxsize=1)
def disks():
    return _client("DisksClient")


@lru_cache(maxsize=1)
def snapshots():
    return _client("SnapshotsClient")


@lru_cache(maxsize=1)
def policies():
    return _client("ResourcePoliciesClient")


@lru_cache(maxsize=1)
def region_ops():
    return _client("RegionOperationsClient")


@lru_cache(maxsize=1)
def global_ops():
    return _client("GlobalOperationsClient")


def reset() -> None:
    for f in (disks, snapshots, policies, region_ops, global_ops):
        f.cache_clear()


def region_of(zone: str) -> str:
    return zone.rsplit("-", 1)[0]


def wait(what: str, op, project: str, *, zone: str | None = None, region: str | None = None):
    """Wait for a zone, region or global operation (as compute.wait; errors are permanent)."""
    if zone:
        return compute.wait(what, op, project, zone)
    deadline = time.monotonic() + settings.get().op_timeout_s
    while op.status.name != "DONE":
        if time.monotonic() >= deadline:
            raise ComputeError(f"{what}: operation {op.name} not done after {settings.get().op_timeout_s}s", True)
        if region:
            op = compute.call(f"{what} (waiting)", region_ops().wait, project=project, region=region,
                              operation=op.name)
        else:
            op = compute.call(f"{what} (waiting)", global_ops().wait, project=project, operation=op.name)
    if op.error and op.error.errors:
        reasons = "; ".join(f"{e.code}: {e.message}" for e in op.error.errors)
        raise ComputeError(f"{what} failed: {reasons}", False, op.http_error_status_code or None)
    return op


def absent_ok(fn, *args, **kwargs):
    """Run a call; a 404 answers None."""
    try:
        return fn(*args, **kwargs)
    except ComputeError as exc:
        if exc.status == 404:
            return None
        raise


def get_disk(project: str, zone: str, name: str):
    return absent_ok(compute.call, "get the bot's disk", disks().get, project=project, zone=zone, disk=name)


def get_snapshot(project: str, name: str):
    return absent_ok(compute.call, "get snapshot", snapshots().get, project=project, snapshot=name)


def list_snapshots(project: str, source_disks: list[str], cap: int) -> list:
    """Snapshots whose source is one of `source_disks` (disk URLs), oldest first, at most `cap`."""
    out: list = []
    for i in range(0, len(source_disks), 10):  # keeps each filter short
        expr = " OR ".join(f'(sourceDisk = "{d}")' for d in source_disks[i:i + 10])
        token = ""
        while len(out) < cap:
            pager = compute.call("list snapshots", snapshots().list, request={
                "project": project, "filter": expr, "max_results": min(500, cap), "page_token": token})
            page = next(iter(pager.pages))  # this call's page only: the next one is our own timed call
            out.extend(page.items)
            token = page.next_page_token
            if not token:
                break
    return sorted(out, key=lambda s: s.creation_timestamp)[:cap]


def delete_snapshot(project: str, name: str, request_id: str) -> bool:
    """True if deleted now, False if it was already gone."""
    from google.cloud import compute_v1

    req = compute_v1.DeleteSnapshotRequest(project=project, snapshot=name, request_id=request_id)
    op = absent_ok(compute.call, f"delete snapshot {name}", snapshots().delete_unary, request=req)
    if op is None:
        return False
    wait(f"delete snapshot {name}", op, project)
    return True
