"""Live views of a deployment's VM: its state from Compute Engine (cached briefly, and used to
correct a stored status that disagrees) and its serial console (secrets masked)."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from shared import clock, db, logs, repos
from shared.deploy import compute, settings
from shared.deploy.compute import ComputeError
from shared.deploy.jobs import ACTIVE, lock_ref
from shared.deploy.redact import redact
from shared.errors import NotFound, Unavailable, UpstreamFailed
from shared.models import Deployment

log = logs.get("deploy.live")
CACHE = "vmStatusCache"  # internal: {data, fetchedAt} per deployment, shared by function instances
STOPPED = ("TERMINATED", "STOPPED", "SUSPENDED")


@dataclass
class _Entry:
    data: dict
    fetched_at: float  # monotonic


_memory: dict[str, _Entry] = {}
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock_for(dep_id: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(dep_id, threading.Lock())


def _unavailable(exc: ComputeError) -> Unavailable | UpstreamFailed:
    return (Unavailable if exc.transient else UpstreamFailed)("compute_unavailable", str(exc))


def _fetch(dep: Deployment) -> dict:
    inst = compute.get_instance(dep.gcpProject, dep.zone, dep.vmName)
    if inst is None:
        return {"vmStatus": "NOT_FOUND"}
    nic = inst.network_interfaces[0] if inst.network_interfaces else None
    return {"vmStatus": inst.status, "internalIp": nic.network_i_p if nic else None,
            "createdAt": inst.creation_timestamp or None, "lastStartAt": inst.last_start_timestamp or None,
            "lastStopAt": inst.last_stop_timestamp or None}


def _cached(dep_id: str, ttl_s: float) -> dict | None:
    entry = _memory.get(dep_id)
    if entry and time.monotonic() - entry.fetched_at < ttl_s:
        return entry.data
    snap = db.client().collection(CACHE).document(dep_id).get()
    if snap.exists and clock.now_ms() - snap.get("fetchedAt") < ttl_s * 1000:
        data = snap.get("data")
        _memory[dep_id] = _Entry(data, time.monotonic() - (clock.now_ms() - snap.get("fetchedAt")) / 1000)
        return data
    return None


def vm_state(dep: Deployment) -> tuple[dict, bool]:
    """(state, from cache). One Compute call per deployment per TTL, per function instance at most
    (a lock makes concurrent polls wait for the one fetch), and across instances via Firestore."""
    ttl = settings.get().status_ttl_s
    data = _cached(dep.id, ttl)
    if data is not None:
        return data, True
    with _lock_for(dep.id):
        data = _cached(dep.id, ttl)
        if data is not None:
            return data, True
        try:
            data = _fetch(dep)
        except ComputeError as exc:
            raise _unavailable(exc) from None
        now = clock.now_ms()
        db.client().collection(CACHE).document(dep.id).set({"data": data, "fetchedAt": now})
        if len(_memory) > 5000:  # an instance serves many deployments over its life: stay bounded
            _memory.clear()
        _memory[dep.id] = _Entry(data, time.monotonic())
        return data, False


def expected_status(vm_status: str, current: str) -> str | None:
    """The status the VM's state implies, when the stored one clearly disagrees (else None)."""
    if vm_status == "NOT_FOUND":
        return "error" if current in ("running", "stopped", "provisioning") else None
    if vm_status in STOPPED:
        return "stopped" if current in ("running", "provisioning") else None
    if vm_status == "RUNNING":
        return "running" if current == "stopped" else None  # provisioning: the bot may still be installing
    return None


@db.transactional
def _correct(tx, dep_id: str, seen: str, to: str) -> bool:
    """Only while no job is active (a job owns the status) and nobody changed it meanwhile."""
    dep = repos.deployments.get(dep_id, tx)
    lock = lock_ref(dep_id).get(transaction=tx)
    job = repos.deploy_jobs.get(lock.get("jobId"), tx) if lock.exists and lock.get("jobId") else None
    if dep is None or dep.status != seen or (job is not None and job.status in ACTIVE):
        return False
    repos.deployments.update(dep_id, {"status": to}, tx)
    return True


def status(dep: Deployment) -> dict:
    data, cached = vm_state(dep)
    # every field present (null when the VM does not exist or nothing was corrected): the contract
    out = {**dict.fromkeys(("internalIp", "createdAt", "lastStartAt", "lastStopAt", "corrected")), **data,
           "deploymentStatus": dep.status, "cached": cached}
    to = expected_status(data["vmStatus"], dep.status)
    if to and _correct(dep.id, dep.status, to):
        log.warning("deployment status corrected from the VM's state",
                    extra={"deploymentId": dep.id, "from": dep.status, "to": to, "vmStatus": data["vmStatus"]})
        out.update(deploymentStatus=to, corrected={"from": dep.status, "to": to})
    return out


def serial_output(dep: Deployment, since: int | None) -> dict:
    """The newest part of serial port 1 (at most LOGS_MAX_CHARS), from `since` when given, masked."""
    limit = settings.get().logs_max_chars
    from google.cloud import compute_v1

    request = compute_v1.GetSerialPortOutputInstanceRequest(
        project=dep.gcpProject, zone=dep.zone, instance=dep.vmName, port=1, start=since or 0)
    try:
        out = compute.call("read serial console", compute.instances().get_serial_port_output, request=request)
    except ComputeError as exc:
        if exc.status == 404:
            raise NotFound("vm_not_found", f"VM {dep.vmName} does not exist") from None
        raise _unavailable(exc) from None
    text, start, nxt = out.contents, out.start, out.next_
    truncated = len(text) > limit
    if truncated:  # keep the newest part, from a line start, so no secret is cut in half before masking
        cut = len(text) - limit
        newline = text.find("\n", cut)
        cut = newline + 1 if 0 <= newline < len(text) - 1 else cut
        text, start = text[cut:], start + cut
    return {"contents": redact(text), "start": start, "next": nxt, "truncated": truncated}
