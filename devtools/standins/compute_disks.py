"""Persistent disks, snapshots and snapshot-schedule resource policies of the local Compute Engine
(mixed into devtools/standins/compute.py), in the REST wire format google-cloud-compute speaks:

  disks.get, disks.createSnapshot, disks.addResourcePolicies, disks.removeResourcePolicies (zone operations)
  snapshots.get, snapshots.list (filter, paging), snapshots.delete (global operations)
  resourcePolicies.insert, resourcePolicies.get (region operations)
  an instance's boot disk made from `initializeParams.sourceImage` or `.sourceSnapshot`, named after the
  instance, deleted with it when `autoDelete`

As on Compute: a disk may carry at most one snapshot schedule; a policy must be in the disk's region;
a snapshot of a missing disk, or a disk from a missing snapshot, is refused (404); names are unique
(409). Scheduled snapshots are made when a test says the schedule fired (`POST /_schedules/run`),
each labelled as the policy's `snapshotProperties` say and `autoCreated`; the same sweep deletes
scheduled snapshots older than their policy's `maxRetentionDays` (also after the disk is gone when
`onSourceDiskDelete` is APPLY_RETENTION_POLICY), never a snapshot made by hand. Time can be moved
on (`POST /_clock {"advanceS": N}`) so retention is testable. A disk's content is a dict of files
(`PUT/GET /_disks/<project>/<zone>/<name>`: what the bot wrote); a snapshot copies it and a disk made
from the snapshot starts with it.
"""
from __future__ import annotations

import copy
import json
import re
import secrets
import time
from datetime import datetime, timezone

from werkzeug.wrappers import Request, Response

from devtools.standins.compute_ops import BASE, PROJECT, or_404, public
from devtools.standins.restserver import HttpError

DISK = PROJECT + r"/zones/(?P<zone>[^/]+)/disks/(?P<name>[^/]+)"
SNAPSHOT = PROJECT + r"/global/snapshots/(?P<name>[^/]+)"
NAME = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")  # a resource's name, as Compute takes it
DAY_S = 86_400


def _last(link: str) -> str:
    return link.rstrip("/").rsplit("/", 1)[-1]


def _region(zone: str) -> str:
    return zone.rsplit("-", 1)[0]


_TERM = re.compile(r'\s*\(?\s*([A-Za-z_.]+)\s*(=|!=|eq|ne)\s*"?([^")]*)"?\s*\)?\s*')


def matches(item: dict, expr: str) -> bool:
    """Compute's list filter: `field = "v"` / `!=` (exact) or `eq` / `ne` (RE2, whole value),
    terms in parentheses joined by AND (the default) or OR; `labels.<key>` reaches a label."""
    if not expr.strip():
        return True
    for alternative in re.split(r"\)\s+OR\s+\(", expr.strip()):
        ok = True
        for term in re.split(r"\)\s*(?:AND\s+)?\(", alternative.strip()):
            m = _TERM.fullmatch(term)
            if not m:
                raise HttpError(400, f"Invalid value for field 'filter': '{expr}'. Invalid list filter expression.",
                                "invalid")
            field, op, value = m.groups()
            got = item
            for part in field.split("."):
                got = got.get(part) if isinstance(got, dict) else None
            got = "" if got is None else str(got).lower() if isinstance(got, bool) else str(got)
            hit = got == value if op in ("=", "!=") else re.fullmatch(value, got) is not None
            ok = ok and (hit if op in ("=", "eq") else not hit)
        if ok:
            return True
    return False


class DisksMixin:
    """State and routes; expects compute_ops.Operations (lock, mutating, _new_op, _advance) beside it."""

    def _init_disks(self) -> None:
        self.disks: dict[tuple, dict] = {}  # (project, zone, name) -> disk (+ "_files")
        self.snapshots: dict[tuple, dict] = {}  # (project, name) -> snapshot (+ "_files")
        self.policies: dict[tuple, dict] = {}  # (project, region, name) -> resource policy
        self.offset_s = 0.0

    def now(self) -> float:
        return time.time() + self.offset_s

    def stamp(self) -> str:
        return datetime.fromtimestamp(self.now(), timezone.utc).isoformat(timespec="milliseconds")

    # instances' boot disks (called by instances.insert / delete)
    def plan_disks(self, project: str, zone: str, instance: str, attached: list[dict]):
        """What an insert will attach, checked now (missing snapshot: 404, name taken: 409), and the
        function that creates the disks when the operation completes."""
        planned, out = [], []
        for i, a in enumerate(attached):
            params = a.get("initializeParams")
            if not params:
                out.append(a)
                continue
            name = params.get("diskName") or instance
            if (project, zone, name) in self.disks:
                raise HttpError(409, f"The resource 'projects/{project}/zones/{zone}/disks/{name}' already exists",
                                "alreadyExists")
            source = params.get("sourceSnapshot")
            snap = None
            if source:
                m = re.search(r"(?:projects/([^/]+)/)?global/snapshots/([^/]+)$", source)
                snap = self.snapshots.get((m.group(1) or project, m.group(2))) if m else None
                if snap is None or snap["status"] != "READY":
                    raise HttpError(404, f"The resource '{source}' was not found", "notFound")
            link = f"{BASE}/projects/{project}/zones/{zone}/disks/{name}"
            disk = {
                "kind": "compute#disk", "id": str(secrets.randbits(60)), "name": name, "status": "READY",
                "creationTimestamp": self.stamp(), "zone": f"{BASE}/projects/{project}/zones/{zone}",
                "sizeGb": str(params.get("diskSizeGb") or (snap or {}).get("diskSizeGb") or 10),
                "type": f"{BASE}/projects/{project}/zones/{zone}/diskTypes/"
                        f"{_last(params.get('diskType', 'pd-standard'))}",
                "users": [f"{BASE}/projects/{project}/zones/{zone}/instances/{instance}"],
                "labels": params.get("labels", {}), "selfLink": link,
                "_files": copy.deepcopy(snap["_files"]) if snap else {},
            }
            if snap:
                disk.update(sourceSnapshot=snap["selfLink"], sourceSnapshotId=snap["id"])
            else:
                disk["sourceImage"] = params.get("sourceImage", "")
            if params.get("resourcePolicies"):
                disk["resourcePolicies"] = [self._policy_link(project, zone, p) for p in params["resourcePolicies"]]
            planned.append(((project, zone, name), disk))
            out.append({"kind": "compute#attachedDisk", "type": "PERSISTENT", "mode": "READ_WRITE", "source": link,
                        "deviceName": a.get("deviceName") or f"persistent-disk-{i}", "index": i,
                        "boot": bool(a.get("boot")), "autoDelete": bool(a.get("autoDelete")),
                        "diskSizeGb": disk["sizeGb"]})

        def create():
            for key, disk in planned:
                self.disks[key] = disk
        return out, create

    def drop_disks(self, inst: dict) -> None:
        for a in inst.get("disks", []):
            if a.get("autoDelete") and a.get("source"):
                m = re.search(r"projects/([^/]+)/zones/([^/]+)/disks/([^/]+)$", a["source"])
                if m:
                    self.disks.pop(m.groups(), None)

    def _disk(self, project, zone, name) -> dict:
        return or_404(self.disks.get((project, zone, name)), f"projects/{project}/zones/{zone}/disks/{name}")

    def _policy_link(self, project: str, zone: str, link: str) -> str:
        m = re.search(r"(?:projects/([^/]+)/)?regions/([^/]+)/resourcePolicies/([^/]+)$", link)
        if not m:
            raise HttpError(400, f"Invalid value for field 'resourcePolicies': '{link}'", "invalid")
        p, region, name = m.group(1) or project, m.group(2), m.group(3)
        if region != _region(zone):
            raise HttpError(400, f"Resource policy '{name}' must be in the same region as the disk", "invalid")
        if (p, region, name) not in self.policies:
            raise HttpError(404, f"The resource 'projects/{p}/regions/{region}/resourcePolicies/{name}' "
                                 "was not found", "notFound")
        return self.policies[(p, region, name)]["selfLink"]

    def _snapshot(self, project, name) -> dict:
        return or_404(self.snapshots.get((project, name)), f"projects/{project}/global/snapshots/{name}")

    def _make_snapshot(self, project: str, disk: dict, name: str, labels: dict, locations: list,
                       policy: dict | None) -> dict:
        snap = {
            "kind": "compute#snapshot", "id": str(secrets.randbits(60)), "name": name,
            "creationTimestamp": self.stamp(), "status": "READY", "sourceDisk": disk["selfLink"],
            "sourceDiskId": disk["id"], "diskSizeGb": disk["sizeGb"], "storageBytes": str(len(json.dumps(
                disk["_files"]))), "storageBytesStatus": "UP_TO_DATE", "storageLocations": locations or ["us"],
            "labels": labels, "labelFingerprint": "42WmSpB8rSM=", "autoCreated": policy is not None,
            "snapshotType": "STANDARD", "selfLink": f"{BASE}/projects/{project}/global/snapshots/{name}",
            "_files": copy.deepcopy(disk["_files"]), "_created": self.now(),
        }
        if policy is not None:
            snap["sourceSnapshotSchedulePolicy"] = policy["selfLink"]
            snap["sourceSnapshotSchedulePolicyId"] = policy["id"]
        self.snapshots[(project, name)] = snap
        return snap

    # the schedule firing and its retention (what Compute does on its own)
    def run_schedules(self) -> dict:
        made, expired = [], []
        for (project, zone, _name), disk in list(self.disks.items()):
            for link in disk.get("resourcePolicies", []):
                policy = next((p for p in self.policies.values() if p["selfLink"] == link), None)
                sched = (policy or {}).get("snapshotSchedulePolicy")
                if not sched:
                    continue
                props = sched.get("snapshotProperties", {})
                name = f"{disk['name'][:40]}-{_region(zone)}-" \
                       f"{datetime.fromtimestamp(self.now(), timezone.utc):%Y%m%d%H%M%S}-{secrets.token_hex(4)}"
                made.append(self._make_snapshot(project, disk, name, props.get("labels", {}),
                                                props.get("storageLocations", []), policy)["name"])
        live = {d["selfLink"] for d in self.disks.values()}
        for key, snap in list(self.snapshots.items()):
            policy = next((p for p in self.policies.values()
                           if p["selfLink"] == snap.get("sourceSnapshotSchedulePolicy")), None)
            if not snap["autoCreated"] or policy is None:
                continue
            keep = policy["snapshotSchedulePolicy"].get("retentionPolicy", {})
            if snap["sourceDisk"] not in live and keep.get("onSourceDiskDelete") != "APPLY_RETENTION_POLICY":
                continue  # KEEP_AUTO_SNAPSHOTS (the default): kept for good once the disk is gone
            if self.now() - snap["_created"] > int(keep.get("maxRetentionDays", 14)) * DAY_S:
                del self.snapshots[key]
                expired.append(snap["name"])
        return {"created": made, "expired": expired}

    def control_disks(self, request: Request) -> Response | None:
        if request.path == "/_schedules/run" and request.method == "POST":
            with self.lock:
                self._advance()
                return Response(json.dumps(self.run_schedules()), mimetype="application/json")
        if request.path == "/_clock" and request.method == "POST":
            with self.lock:
                self.offset_s += float((request.get_json() or {}).get("advanceS", 0))
                return Response(json.dumps({"offsetS": self.offset_s}), mimetype="application/json")
        if request.path.startswith("/_disks/"):
            key = tuple(request.path.split("/")[2:5])
            with self.lock:
                self._advance()
                disk = self.disks.get(key)
                if disk is None:
                    return Response(json.dumps({"error": "no such disk"}), status=404, mimetype="application/json")
                if request.method == "PUT":
                    disk["_files"].update(request.get_json())
                return Response(json.dumps(disk["_files"]), mimetype="application/json")
        return None

    def _disk_routes(self) -> None:
        @self.route("GET", DISK, "disks.get")
        def disk_get(request, fault, project, zone, name):
            with self.lock:
                self._advance()
                return public(self._disk(project, zone, name))

        @self.mutating("POST", DISK + "/createSnapshot", "disks.createSnapshot", find=self._disk)
        def create_snapshot(request, fault, project, zone, name, found):
            body = request.get_json(silent=True) or {}
            snap_name = body.get("name") or ""
            if not NAME.fullmatch(snap_name):
                raise HttpError(400, f"Invalid value for field 'resource.name': '{snap_name}'", "invalid")
            if (project, snap_name) in self.snapshots:
                raise HttpError(409, f"The resource 'projects/{project}/global/snapshots/{snap_name}' already exists",
                                "alreadyExists")
            snap = self._make_snapshot(project, found, snap_name, body.get("labels", {}),
                                       body.get("storageLocations", []), None)
            snap["status"] = "CREATING"  # READY when the operation completes; gone if it fails

            def ready():
                snap["status"] = "READY"
            op = self._new_op(request, fault, (project, zone, name), "createSnapshot", ready,
                              target=found["selfLink"])
            if op["_error"]:
                del self.snapshots[(project, snap_name)]
            return op

        def policy_change(kind: str, add: bool):
            def handler(request, fault, project, zone, name, found):
                body = request.get_json(silent=True) or {}
                links = [self._policy_link(project, zone, p) for p in body.get("resourcePolicies", [])]
                current = found.get("resourcePolicies", [])
                if add:
                    if set(links) & set(current):
                        raise HttpError(400, "The disk already has this resource policy", "invalid")
                    if current and links:  # one snapshot schedule per disk
                        raise HttpError(400, "A disk can have only one snapshot schedule policy attached", "invalid")
                    new = current + links
                else:
                    new = [p for p in current if p not in links]

                def apply():
                    found["resourcePolicies"] = new
                return self._new_op(request, fault, (project, zone, name), kind, apply, target=found["selfLink"])
            return handler

        for kind, add in (("addResourcePolicies", True), ("removeResourcePolicies", False)):
            self.mutating("POST", f"{DISK}/{kind}", f"disks.{kind}", find=self._disk)(policy_change(kind, add))

        @self.route("GET", SNAPSHOT, "snapshots.get")
        def snapshot_get(request, fault, project, name):
            with self.lock:
                self._advance()
                return public(self._snapshot(project, name))

        @self.route("GET", PROJECT + r"/global/snapshots", "snapshots.list")
        def snapshot_list(request, fault, project):
            size = min(int(request.args.get("maxResults") or 500), 500)
            start = int(request.args.get("pageToken") or 0)
            with self.lock:
                self._advance()
                items = sorted((s for (p, _), s in self.snapshots.items() if p == project),
                               key=lambda s: (s["_created"], s["name"]))
                items = [public(s) for s in items if matches(s, request.args.get("filter", ""))]
            body = {"kind": "compute#snapshotList", "id": f"projects/{project}/global/snapshots",
                    "items": items[start:start + size],
                    "selfLink": f"{BASE}/projects/{project}/global/snapshots"}
            if start + size < len(items):
                body["nextPageToken"] = str(start + size)
            return body

        @self.mutating("DELETE", SNAPSHOT, "snapshots.delete", find=self._snapshot)
        def snapshot_delete(request, fault, project, name, found):
            def delete():
                self.snapshots.pop((project, name), None)
            return self._new_op(request, fault, (project, "global", name), "delete", delete, scope="global",
                                target=found["selfLink"])

        @self.mutating("POST", PROJECT + r"/regions/(?P<region>[^/]+)/resourcePolicies", "resourcePolicies.insert")
        def policy_insert(request, fault, project, region):
            body = request.get_json(silent=True) or {}
            name = body.get("name", "")
            if not NAME.fullmatch(name):
                raise HttpError(400, f"Invalid value for field 'resource.name': '{name}'", "invalid")
            if (project, region, name) in self.policies:
                raise HttpError(409, f"The resource 'projects/{project}/regions/{region}/resourcePolicies/"
                                     f"{name}' already exists", "alreadyExists")
            sched = body.get("snapshotSchedulePolicy")
            if sched is not None:
                days = int(sched.get("retentionPolicy", {}).get("maxRetentionDays", 0) or 0)
                if days < 1 or not sched.get("schedule"):
                    raise HttpError(400, "snapshotSchedulePolicy needs a schedule and maxRetentionDays >= 1",
                                    "invalid")
            link = f"{BASE}/projects/{project}/regions/{region}/resourcePolicies/{name}"
            policy = {**body, "kind": "compute#resourcePolicy", "id": str(secrets.randbits(60)),
                      "creationTimestamp": self.stamp(), "region": f"{BASE}/projects/{project}/regions/{region}",
                      "selfLink": link, "status": "READY"}

            def create():
                self.policies[(project, region, name)] = policy
            return self._new_op(request, fault, (project, f"regions/{region}", name), "insert", create,
                                scope=f"regions/{region}", target=link)

        @self.route("GET", PROJECT + r"/regions/(?P<region>[^/]+)/resourcePolicies/(?P<name>[^/]+)",
                    "resourcePolicies.get")
        def policy_get(request, fault, project, region, name):
            with self.lock:
                self._advance()
                return public(or_404(self.policies.get((project, region, name)),
                                     f"projects/{project}/regions/{region}/resourcePolicies/{name}"))
