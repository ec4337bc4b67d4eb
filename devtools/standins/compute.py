"""Local Compute Engine: the REST wire format of instances (insert/get/start/stop/reset/delete,
serial port output, setMetadata with fingerprints, setServiceAccount on a stopped instance), zone, region and
global operations (get/wait), and (compute_disks.py) the bots' disks, snapshots and snapshot schedules, for
google-cloud-compute's REST transport.

Operations finish `--op-latency` seconds after they are created. As on Compute, a repeated
call with the same `requestId` returns the first call's operation instead of acting again.
With `--pubsub-host`, an instance that boots with `openclaw-events-topic` metadata plays the
guest: it publishes the startup script's progress events to that topic, signed as the startup
script signs them (HMAC-SHA256 with the deployment's report key, which it reads from the Secret
Manager stand-in `--secrets-host` as the instance's own service account; a key it may not read
means unsigned reports, which provisioningEvents drops).

The metadata server: `GET /_metadata/{project}/{zone}/{name}/token` answers what a VM's
`.../instance/service-accounts/default/token` answers, an access token of the service account
attached to the instance (minted with `--token-key`, see access_tokens.py); tests use it to act
as a given VM.

Firewall rules (`global/firewalls` insert/get, global operations get/wait) are kept for the IAP
rule the deploy job makes in a customer's project. With `--iam-host`, a project the IAM stand-in
knows as a customer's (devtools/standins/iam.py `/_projects`) answers 403, as Compute does, to every
call whose permission the customer has not granted (or has withdrawn) to the runtime.

Usage: python -m devtools.standins.compute PORT [--op-latency S] [--pubsub-host HOST:PORT]
                                                [--secrets-host HOST:PORT] [--token-key KEY] [--iam-host HOST:PORT]
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import itertools
import json
import threading
import time
import urllib.request
from datetime import datetime, timezone

from werkzeug.wrappers import Request, Response

from devtools.standins import access_tokens
from devtools.standins.compute_disks import DisksMixin
from devtools.standins.restserver import HttpError, RestServer

BASE = "https://www.googleapis.com/compute/v1"
ZONE = r"/compute/v1/projects/(?P<project>[^/]+)/zones/(?P<zone>[^/]+)"
INSTANCE = ZONE + r"/instances/(?P<name>[^/]+)"
GLOBAL = r"/compute/v1/projects/(?P<project>[^/]+)/global"
PERMISSION = {  # operation -> the IAM permission Compute checks for it
    "instances.insert": "compute.instances.create", "instances.get": "compute.instances.get",
    "instances.start": "compute.instances.start", "instances.stop": "compute.instances.stop",
    "instances.reset": "compute.instances.reset", "instances.delete": "compute.instances.delete",
    "instances.setMetadata": "compute.instances.setMetadata",
    "instances.setServiceAccount": "compute.instances.setServiceAccount",
    "instances.setTags": "compute.instances.setTags",
    "instances.getSerialPortOutput": "compute.instances.getSerialPortOutput",
    "zoneOperations.get": "compute.zoneOperations.get", "zoneOperations.wait": "compute.zoneOperations.get",
    "firewalls.insert": "compute.firewalls.create", "firewalls.get": "compute.firewalls.get",
    "globalOperations.get": "compute.globalOperations.get", "globalOperations.wait": "compute.globalOperations.get",
}
WAIT_MAX_S = 10.0  # Compute's wait returns after at most ~2 minutes; shorter here
_ids = itertools.count(1000)


def rfc3339(t: float | None = None) -> str:
    return datetime.fromtimestamp(t or time.time(), timezone.utc).isoformat(timespec="milliseconds")


def fingerprint(items: list) -> str:
    return base64.b64encode(hashlib.sha256(json.dumps(items, sort_keys=True).encode()).digest()[:8]).decode()


class Compute(DisksMixin, RestServer):
    def __init__(self, op_latency: float, pubsub_host: str | None, secrets_host: str | None = None,
                 token_key: str = "", iam_host: str | None = None):
        super().__init__()
        self.iam_host = iam_host
        self.firewalls: dict[tuple, dict] = {}
        self.op_latency = op_latency
        self.pubsub_host = pubsub_host
        self.secrets_host = secrets_host
        self.token_key = token_key
        self.instances: dict[tuple, dict] = {}
        self.ops: dict[tuple, dict] = {}  # (project, zone, opname) -> operation (+ private keys)
        self.request_ids: dict[str, tuple] = {}
        self.inserts = 0
        self.busy: dict[str, list] = {}  # instance -> (start, end) of its calls and of its operations
        self.active_ops: dict[str, int] = {}
        self.max_active_ops: dict[str, int] = {}
        self.cond = threading.Condition(self.lock)
        self._init_disks()
        self._routes()
        self._disk_routes()

    def dispatch(self, request: Request) -> Response:
        """Compute checks the caller's permission in the project before anything else."""
        import re

        from devtools.standins.restserver import error_response

        m = re.match(r"^/compute/v1/projects/([^/]+)/", request.path)
        if m and self.iam_host:
            op = next((op for method, regex, op, _ in self.routes
                       if method == request.method and regex.match(request.path)), None)
            need = PERMISSION.get(op or "")
            if need:
                with urllib.request.urlopen(f"http://{self.iam_host}/_projects/{m.group(1)}", timeout=5) as resp:
                    grant = json.loads(resp.read())
                if grant is not None and need not in grant["permissions"]:
                    return error_response(403, f"Required '{need}' permission for '{request.path[12:]}'",
                                          "forbidden")
        return super().dispatch(request)

    # operations
    def _new_op(self, project, zone, name, kind, effect, request_id, fault, scope: str | None = None,
                target: str | None = None) -> dict:
        """An operation; `scope` "regions/<r>" or "global" for region and global operations (zone ones
        are keyed by the bare zone), `target` its targetLink when it is not an instance."""
        key = (project, zone, name)
        scope = scope or f"zones/{zone}"
        op_name = f"operation-{int(time.time() * 1000)}-{next(_ids)}"
        op = {
            "kind": "compute#operation", "id": str(next(_ids)), "name": op_name, "operationType": kind,
            "targetLink": target or f"{BASE}/projects/{project}/zones/{zone}/instances/{name}",
            "status": "RUNNING", "progress": 0, "insertTime": rfc3339(), "startTime": rfc3339(),
            "user": "local@example.com",
            "selfLink": f"{BASE}/projects/{project}/{scope}/operations/{op_name}",
            "_doneAt": time.time() + self.op_latency, "_effect": effect, "_instance": key,
            "_error": fault.message if fault and fault.mode == "op_error" else None,
        }
        if scope.startswith(("zones/", "regions/")):
            op[scope.split("/")[0][:-1]] = f"{BASE}/projects/{project}/{scope}"  # "zone" or "region"
        self.ops[(project, zone if scope.startswith("zones/") else scope, op_name)] = op
        if request_id:
            self.request_ids[request_id] = (project, zone, op_name)
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
                if op["operationType"] == "insert" and "/instances/" in op["targetLink"]:
                    self.instances.pop(op["_instance"], None)  # a failed insert leaves no instance
            else:
                op["_effect"]()
        self.cond.notify_all()

    def _replay(self, request: Request):
        rid = request.args.get("requestId")
        if rid and rid in self.request_ids:
            return self.public(self.ops[self.request_ids[rid]])
        return None

    def _instance(self, project, zone, name) -> dict:
        inst = self.instances.get((project, zone, name))
        if inst is None:
            raise HttpError(404, f"The resource 'projects/{project}/zones/{zone}/instances/{name}' was not found",
                            "notFound")
        return inst

    def _boot(self, inst: dict) -> None:
        inst.update(status="RUNNING", lastStartTimestamp=rfc3339())
        inst["_serial"] += (f"[{rfc3339()}] Booting Debian GNU/Linux 12\n"
                            f"[{rfc3339()}] google_metadata_script_runner: starting startup script\n")
        meta = {i["key"]: i["value"] for i in inst["metadata"].get("items", [])}
        topic = meta.get("openclaw-events-topic")
        if self.pubsub_host and topic:
            threading.Thread(target=self._guest, args=(topic, meta.get("openclaw-deployment-id", ""),
                                                       self.account(inst),
                                                       f"projects/{meta.get('openclaw-secrets-project', '')}/secrets/"
                                                       f"{meta.get('openclaw-report-key', '')}"),
                             daemon=True).start()

    @staticmethod
    def account(inst: dict) -> str | None:
        accounts = inst.get("serviceAccounts") or []
        return accounts[0].get("email") if accounts else None

    def read_secret(self, account: str | None, secret_name: str) -> str | None:
        """`gcloud secrets versions access latest` on the VM: as its own service account."""
        if not (self.secrets_host and account and not secret_name.endswith("/")):
            return None
        req = urllib.request.Request(
            f"http://{self.secrets_host}/v1/{secret_name}/versions/latest:access",
            headers={"Authorization": f"Bearer {access_tokens.mint(self.token_key, account)}"})
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return base64.b64decode(json.loads(resp.read())["payload"]["data"]).decode()
        except (OSError, ValueError, KeyError):
            return None  # refused (403) or absent: the script reports unsigned

    def _guest(self, topic: str, deployment_id: str, account: str | None, key_secret: str) -> None:
        """What the startup script reports from a real VM: progress, then readiness, each signed
        with the report key the VM's own identity reads."""
        key = self.read_secret(account, key_secret)
        for stage, message in (("installing", "installing OpenClaw"), ("ready", "bot is up")):
            time.sleep(self.op_latency)
            data = json.dumps({"deploymentId": deployment_id, "stage": stage, "message": message,
                               "time": int(time.time() * 1000)}).encode()
            msg = {"data": base64.b64encode(data).decode()}
            if key:
                msg["attributes"] = {"signature": hmac.new(bytes.fromhex(key), data, hashlib.sha256).hexdigest()}
            body = json.dumps({"messages": [msg]}).encode()
            req = urllib.request.Request(f"http://{self.pubsub_host}/v1/{topic}:publish", data=body,
                                         headers={"Content-Type": "application/json"}, method="POST")
            try:
                urllib.request.urlopen(req, timeout=5).close()
            except OSError:
                return  # the topic may be gone (test over); a real VM's publish would fail likewise

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

    def _routes(self) -> None:
        @self.route("POST", ZONE + "/instances", "instances.insert")
        def insert(request, fault, project, zone):
            body = request.get_json()
            name = body.get("name", "")
            started = time.time()
            try:
                with self.lock:
                    self._advance()
                    replay = self._replay(request)
                    if replay:
                        return replay
                    if not name or not body.get("machineType"):
                        raise HttpError(400, "Invalid value for field 'resource': name and machineType are required",
                                        "invalid")
                    key = (project, zone, name)
                    if key in self.instances:
                        raise HttpError(409, f"The resource 'projects/{project}/zones/{zone}/instances/{name}' "
                                             "already exists", "alreadyExists")
                    items = body.get("metadata", {}).get("items", [])
                    disks, make_disks = self.plan_disks(project, zone, name, body.get("disks", []))
                    inst = {
                        "kind": "compute#instance", "id": str(next(_ids)), "name": name, "status": "PROVISIONING",
                        "machineType": body["machineType"], "zone": f"{BASE}/projects/{project}/zones/{zone}",
                        "creationTimestamp": rfc3339(), "labels": body.get("labels", {}),
                        "networkInterfaces": [{**n, "networkIP": f"10.128.0.{len(self.instances) % 250 + 2}"}
                                              for n in body.get("networkInterfaces", [])],
                        "disks": disks, "serviceAccounts": body.get("serviceAccounts", []),
                        "tags": {**body.get("tags", {}),
                                 "fingerprint": fingerprint(body.get("tags", {}).get("items", []))},
                        "metadata": {"kind": "compute#metadata", "items": items, "fingerprint": fingerprint(items)},
                        "selfLink": f"{BASE}/projects/{project}/zones/{zone}/instances/{name}", "_serial": "",
                    }

                    def create():
                        self.inserts += 1
                        make_disks()
                        self._boot(inst)
                    self.instances[key] = inst  # visible (PROVISIONING) while the operation runs
                    op = self._new_op(project, zone, name, "insert", create, request.args.get("requestId"), fault)
                    return self.public(op)
            finally:
                self._timed(project, zone, name, started)

        @self.route("GET", INSTANCE, "instances.get")
        def get(request, fault, project, zone, name):
            with self.lock:
                self._advance()
                inst = self._instance(project, zone, name)
                return {k: v for k, v in inst.items() if not k.startswith("_")}

        def action(kind: str, need: tuple[str, ...], before: str | None, effect):
            def handler(request, fault, project, zone, name):
                started = time.time()
                try:
                    with self.lock:
                        self._advance()
                        replay = self._replay(request)
                        if replay:
                            return replay
                        inst = self._instance(project, zone, name)
                        if need and inst["status"] not in need:
                            raise HttpError(400, f"The instance is {inst['status']}: cannot {kind} it",
                                            "resourceNotReady")
                        if before:
                            inst["status"] = before
                        op = self._new_op(project, zone, name, kind, lambda: effect(project, zone, name, inst),
                                          request.args.get("requestId"), fault)
                        return self.public(op)
                finally:
                    self._timed(project, zone, name, started)
            return handler

        def do_stop(p, z, n, inst):
            inst.update(status="TERMINATED", lastStopTimestamp=rfc3339())

        def do_delete(p, z, n, inst):
            self.instances.pop((p, z, n), None)
            self.drop_disks(inst)

        self.route("POST", INSTANCE + "/start", "instances.start")(
            action("start", (), "STAGING", lambda p, z, n, i: self._boot(i)))
        self.route("POST", INSTANCE + "/stop", "instances.stop")(action("stop", (), "STOPPING", do_stop))
        self.route("POST", INSTANCE + "/reset", "instances.reset")(
            action("reset", ("RUNNING",), None, lambda p, z, n, i: self._boot(i)))
        self.route("DELETE", INSTANCE, "instances.delete")(action("delete", (), "STOPPING", do_delete))

        @self.route("POST", INSTANCE + "/setMetadata", "instances.setMetadata")
        def set_metadata(request, fault, project, zone, name):
            body = request.get_json()
            with self.lock:
                self._advance()
                replay = self._replay(request)
                if replay:
                    return replay
                inst = self._instance(project, zone, name)
                if body.get("fingerprint") != inst["metadata"]["fingerprint"]:
                    raise HttpError(412, "Supplied fingerprint does not match current metadata fingerprint.",
                                    "conditionNotMet")
                items = body.get("items", [])

                def apply():
                    inst["metadata"] = {"kind": "compute#metadata", "items": items, "fingerprint": fingerprint(items)}
                # the fingerprint changes at once, so a second writer with the old one is refused
                inst["metadata"]["fingerprint"] = fingerprint(items)
                return self.public(self._new_op(project, zone, name, "setMetadata", apply,
                                                request.args.get("requestId"), fault))

        @self.route("POST", INSTANCE + "/setServiceAccount", "instances.setServiceAccount")
        def set_service_account(request, fault, project, zone, name):
            body = request.get_json(silent=True) or {}
            with self.lock:
                self._advance()
                replay = self._replay(request)
                if replay:
                    return replay
                inst = self._instance(project, zone, name)
                if inst["status"] != "TERMINATED":  # as on Compute: only a stopped instance changes identity
                    raise HttpError(400, "The instance must be stopped to change its service account.",
                                    "resourceNotReady")

                def apply():
                    inst["serviceAccounts"] = [{"email": body.get("email", ""), "scopes": body.get("scopes", [])}]
                return self.public(self._new_op(project, zone, name, "setServiceAccount", apply,
                                                request.args.get("requestId"), fault))

        @self.route("POST", INSTANCE + "/setTags", "instances.setTags")
        def set_tags(request, fault, project, zone, name):
            body = request.get_json(silent=True) or {}
            with self.lock:
                self._advance()
                replay = self._replay(request)
                if replay:
                    return replay
                inst = self._instance(project, zone, name)
                if body.get("fingerprint") != inst["tags"]["fingerprint"]:
                    raise HttpError(412, "Supplied fingerprint does not match current tags fingerprint.",
                                    "conditionNotMet")
                items = body.get("items", [])
                inst["tags"] = {"items": items, "fingerprint": fingerprint(items)}  # the next writer needs this one
                return self.public(self._new_op(project, zone, name, "setTags", lambda: None,
                                                request.args.get("requestId"), fault))

        @self.route("GET", INSTANCE + "/serialPort", "instances.getSerialPortOutput")
        def serial(request, fault, project, zone, name):
            with self.lock:
                self._advance()
                text = self._instance(project, zone, name)["_serial"]
            start = int(request.args.get("start", "0") or 0)
            start = max(start, 0)
            return {"kind": "compute#serialPortOutput", "contents": text[start:], "start": str(start),
                    "next": str(len(text)), "selfLink": f"{BASE}/projects/{project}/zones/{zone}/instances/{name}"}

        def find_op(project, zone, operation) -> dict:
            op = self.ops.get((project, zone, operation))
            if op is None:
                raise HttpError(404, f"The resource 'projects/{project}/zones/{zone}/operations/{operation}' "
                                     "was not found", "notFound")
            return op

        def op_get(request, fault, project, operation, zone=None, region=None):
            with self.lock:
                self._advance()
                return self.public(find_op(project, zone or (f"regions/{region}" if region else "global"),
                                           operation))

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
            return self.public(op)

        @self.route("POST", GLOBAL + "/firewalls", "firewalls.insert")
        def firewall_insert(request, fault, project):
            body = request.get_json(silent=True) or {}
            with self.lock:
                replay = self._replay(request)
                if replay:
                    return replay
                name = body.get("name", "")
                if not name or not body.get("allowed"):
                    raise HttpError(400, "Invalid value for field 'resource': name and allowed are required", "invalid")
                if (project, name) in self.firewalls:
                    raise HttpError(409, f"The resource 'projects/{project}/global/firewalls/{name}' already exists",
                                    "alreadyExists")
                self.firewalls[(project, name)] = {
                    "kind": "compute#firewall", "id": str(next(_ids)), "creationTimestamp": rfc3339(),
                    "network": body.get("network", f"{BASE}/projects/{project}/global/networks/default"),
                    "direction": body.get("direction", "INGRESS"), "priority": body.get("priority", 1000),
                    **{k: v for k, v in body.items() if k not in ("kind", "id")},
                    "selfLink": f"{BASE}/projects/{project}/global/firewalls/{name}"}
                op_name = f"operation-{int(time.time() * 1000)}-{next(_ids)}"
                op = {"kind": "compute#operation", "id": str(next(_ids)), "name": op_name, "operationType": "insert",
                      "targetLink": f"{BASE}/projects/{project}/global/firewalls/{name}", "status": "DONE",
                      "progress": 100, "insertTime": rfc3339(), "endTime": rfc3339(),
                      "selfLink": f"{BASE}/projects/{project}/global/operations/{op_name}",
                      "_doneAt": time.time(), "_instance": (project, "global", name)}
                self.ops[(project, "global", op_name)] = op  # done at once; the global operation routes find it
                if request.args.get("requestId"):
                    self.request_ids[request.args["requestId"]] = (project, "global", op_name)
                return self.public(op)

        @self.route("GET", GLOBAL + r"/firewalls/(?P<name>[^/]+)", "firewalls.get")
        def firewall_get(request, fault, project, name):
            with self.lock:
                rule = self.firewalls.get((project, name))
            if rule is None:
                raise HttpError(404, f"The resource 'projects/{project}/global/firewalls/{name}' was not found",
                                "notFound")
            return rule

        op_path = r"/operations/(?P<operation>[^/]+)"
        for scope, pattern in (("zone", ZONE), ("region", r"/compute/v1/projects/(?P<project>[^/]+)/regions/"
                                                          r"(?P<region>[^/]+)"),
                               ("global", r"/compute/v1/projects/(?P<project>[^/]+)/global")):
            self.route("GET", pattern + op_path, f"{scope}Operations.get")(op_get)
            self.route("POST", pattern + op_path + "/wait", f"{scope}Operations.wait")(op_wait)

    def control_extra(self, request: Request) -> Response:
        handled = self.control_disks(request)
        if handled is not None:
            return handled
        if request.path.startswith("/_metadata/") and request.path.endswith("/token"):
            project, zone, name = request.path.split("/")[2:5]
            with self.lock:
                account = self.account(self._instance(project, zone, name))
            if account is None:
                return Response(json.dumps({"error": "no service account"}), status=404,
                                mimetype="application/json")
            return Response(json.dumps({"access_token": access_tokens.mint(self.token_key, account),
                                        "expires_in": 3599, "token_type": "Bearer"}),
                            mimetype="application/json")
        if request.path == "/_state":
            with self.lock:
                self._advance()
                state = {"inserts": self.inserts,
                         "instances": {"/".join(k): v["status"] for k, v in self.instances.items()},
                         "busySeconds": self.busy_seconds(), "maxActiveOps": self.max_active_ops,
                         "firewalls": {"/".join(k): v for k, v in self.firewalls.items()},
                         "disks": {"/".join(k): v.get("resourcePolicies", []) for k, v in self.disks.items()},
                         "snapshots": sorted(n for (_, n) in self.snapshots),
                         "policies": sorted("/".join(k) for k in self.policies)}
            return Response(json.dumps(state), mimetype="application/json")
        if request.path == "/_serial" and request.method == "POST":
            body = request.get_json()  # {project, zone, name, text}: what the guest prints
            with self.lock:
                self._instance(body["project"], body["zone"], body["name"])["_serial"] += body["text"]
            return Response("{}", mimetype="application/json")
        return super().control_extra(request)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--op-latency", type=float, default=0.05)
    parser.add_argument("--pubsub-host")
    parser.add_argument("--secrets-host")
    parser.add_argument("--token-key", default="")
    parser.add_argument("--iam-host")
    args = parser.parse_args()
    Compute(args.op_latency, args.pubsub_host, args.secrets_host, args.token_key, args.iam_host).serve(args.port)


if __name__ == "__main__":
    main()
