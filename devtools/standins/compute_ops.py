"""Long-running operations of the local Compute Engine, shared by its instances (compute.py) and its
disks, snapshots and resource policies (compute_disks.py): zone, region and global operations
(get/wait) that finish `op_latency` seconds after they are created, and `mutating`, the one preamble
of every route that changes something. As on Compute, a repeated call with the same `requestId`
answers the first call's operation instead of acting again.
"""
from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone

from werkzeug.wrappers import Request

from devtools.standins.restserver import Fault, HttpError, RestServer

BASE = "https://www.googleapis.com/compute/v1"
PROJECT = r"/compute/v1/projects/(?P<project>[^/]+)"
WAIT_MAX_S = 10.0  # Compute's wait returns after at most ~2 minutes; shorter here
_ids = itertools.count(1000)


def new_id() -> str:
    return str(next(_ids))


def rfc3339(t: float | None = None) -> str:
    return datetime.fromtimestamp(t or time.time(), timezone.utc).isoformat(timespec="milliseconds")


def or_404(item: dict | None, path: str) -> dict:
    """A resource looked up, or Compute's 404 for the one at `path` (projects/...)."""
    if item is None:
        raise HttpError(404, f"The resource '{path}' was not found", "notFound")
    return item


def public(item: dict) -> dict:
    """A resource as the API shows it: without the stand-in's own `_` keys."""
    return {k: v for k, v in item.items() if not k.startswith("_")}


class Operations(RestServer):
    def __init__(self, op_latency: float):
        super().__init__()
        self.op_latency = op_latency
        self.ops: dict[tuple, dict] = {}  # (project, zone | "regions/<r>" | "global", opname) -> operation
        self.request_ids: dict[str, tuple] = {}
        self.busy: dict[str, list] = {}  # resource -> (start, end) of its calls and of its operations
        self.active_ops: dict[str, int] = {}
        self.max_active_ops: dict[str, int] = {}
        self.cond = threading.Condition(self.lock)
        self._operation_routes()

    def mutating(self, method: str, pattern: str, op: str, *, find: Callable[..., dict] | None = None,
                 timed: bool = False):
        """Register a route that changes something. Under the lock, after finishing the operations
        that are due: a `requestId` seen before answers its first operation; else `find(**path
        params)` (a 404 when missing) is handed to the handler as `found`, and what the handler
        returns (an operation) is answered without its private keys. `timed`: the call counts in its
        instance's busy time (the path's name, or for an insert the body's)."""
        def register(fn: Callable) -> Callable:
            def handler(request: Request, fault: Fault | None, **params):
                started = time.time()
                try:
                    with self.lock:
                        self._advance()
                        replay = self._replay(request)
                        if replay:
                            return replay
                        found = {"found": find(**params)} if find else {}
                        return public(fn(request, fault, **params, **found))
                finally:
                    if timed:
                        name = params.get("name") or (request.get_json(silent=True) or {}).get("name", "")
                        self._timed(params["project"], params["zone"], name, started)
            self.route(method, pattern, op)(handler)
            return fn
        return register

    def _new_op(self, request: Request, fault: Fault | None, key: tuple[str, str, str], kind: str,
                effect: Callable[[], None], *, scope: str | None = None, target: str | None = None,
                undo: Callable[[], None] | None = None, done: bool = False) -> dict:
        """An operation on `key` (project, zone, name); `scope` "regions/<r>" or "global" for region
        and global operations (zone ones are keyed by the bare zone), `target` its targetLink when it
        is not an instance. It runs `effect` when it completes, or `undo` when it fails (the fault
        `op_error`); `done`: complete at once (the effect is the caller's), not counted as running."""
        project, zone, name = key
        scope = scope or f"zones/{zone}"
        op_name = f"operation-{int(time.time() * 1000)}-{new_id()}"
        op = {
            "kind": "compute#operation", "id": new_id(), "name": op_name, "operationType": kind,
            "targetLink": target or f"{BASE}/projects/{project}/zones/{zone}/instances/{name}",
            "status": "RUNNING", "progress": 0, "insertTime": rfc3339(), "startTime": rfc3339(),
            "user": "local@example.com",
            "selfLink": f"{BASE}/projects/{project}/{scope}/operations/{op_name}",
            "_doneAt": time.time() + (0 if done else self.op_latency), "_effect": effect, "_undo": undo,
            "_instance": key, "_error": fault.message if fault and fault.mode == "op_error" else None,
        }
        if scope.startswith(("zones/", "regions/")):
            op[scope.split("/")[0][:-1]] = f"{BASE}/projects/{project}/{scope}"  # "zone" or "region"
        op_key = (project, zone if scope.startswith("zones/") else scope, op_name)
        self.ops[op_key] = op
        if request.args.get("requestId"):
            self.request_ids[request.args["requestId"]] = op_key
        if done:
            op.update(status="DONE", progress=100, endTime=rfc3339())
            return op
        label = "/".join(key)
        self.active_ops[label] = self.active_ops.get(label, 0) + 1
        self.max_active_ops[label] = max(self.max_active_ops.get(label, 0), self.active_ops[label])
        return op

    def _advance(self) -> None:
        """Finish every operation whose time has come (called under the lock)."""
        now = time.time()
        for op in self.ops.values():
            if op["status"] == "DONE" or op["_doneAt"] > now:
                continue
            op.update(status="DONE", progress=100, endTime=rfc3339())
            label = "/".join(op["_instance"])
            self.busy.setdefault(label, []).append((op["_doneAt"] - self.op_latency, op["_doneAt"]))
            self.active_ops[label] -= 1
            if op["_error"]:
                op["error"] = {"errors": [{"code": "ZONE_RESOURCE_POOL_EXHAUSTED", "message": op["_error"]}]}
                op["httpErrorStatusCode"], op["httpErrorMessage"] = 503, "SERVICE UNAVAILABLE"
                if op["_undo"]:
                    op["_undo"]()
            else:
                op["_effect"]()
        self.cond.notify_all()

    def _replay(self, request: Request) -> dict | None:
        rid = request.args.get("requestId")
        if rid and rid in self.request_ids:
            return public(self.ops[self.request_ids[rid]])
        return None

    def _timed(self, project, zone, name, started: float) -> None:
        with self.lock:
            self.busy.setdefault(f"{project}/{zone}/{name}", []).append((started, time.time()))

    def busy_seconds(self) -> dict[str, float]:
        """Per instance, the time Compute itself took: the union of its calls and its operations."""
        out = {}
        for label, spans in self.busy.items():
            total, end = 0.0, 0.0
            for a, b in sorted(spans):
                if b > end:
                    total += b - max(a, end)
                    end = b
            out[label] = total
        return out

    def _operation_routes(self) -> None:
        def find_op(project, zone, operation) -> dict:
            return or_404(self.ops.get((project, zone, operation)),
                          f"projects/{project}/zones/{zone}/operations/{operation}")

        def op_get(request, fault, project, operation, zone=None, region=None):
            with self.lock:
                self._advance()
                return public(find_op(project, zone or (f"regions/{region}" if region else "global"), operation))

        def op_wait(request, fault, project, operation, zone=None, region=None):
            started = time.time()
            deadline = time.time() + WAIT_MAX_S
            with self.lock:
                op = find_op(project, zone or (f"regions/{region}" if region else "global"), operation)
                while True:
                    self._advance()
                    if op["status"] == "DONE" or time.time() >= deadline:
                        break
                    self.cond.wait(min(max(op["_doneAt"] - time.time(), 0.001), deadline - time.time()))
            self._timed(*op["_instance"], started)
            return public(op)

        op_path = r"/operations/(?P<operation>[^/]+)"
        for scope, pattern in (("zone", PROJECT + r"/zones/(?P<zone>[^/]+)"),
                               ("region", PROJECT + r"/regions/(?P<region>[^/]+)"), ("global", PROJECT + "/global")):
            self.route("GET", pattern + op_path, f"{scope}Operations.get")(op_get)
            self.route("POST", pattern + op_path + "/wait", f"{scope}Operations.wait")(op_wait)
