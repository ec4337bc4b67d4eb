"""Local Compute Engine: the REST wire format of instances (insert/get/start/stop/reset/delete,
serial port output, setMetadata with fingerprints, setServiceAccount on a stopped instance), zone, region and
global operations (get/wait), and (compute_disks.py) the bots' disks, snapshots and snapshot schedules, for
google-cloud-compute's REST transport.

Operations (compute_ops.py) finish `--op-latency` seconds after they are created. As on Compute, a
repeated call with the same `requestId` returns the first call's operation instead of acting again.
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
import json
import re
import threading
import time
import urllib.request

from werkzeug.wrappers import Request, Response

from devtools.standins import access_tokens
from devtools.standins.compute_disks import DisksMixin
from devtools.standins.compute_ops import BASE, PROJECT, Operations, new_id, or_404, public, rfc3339
from devtools.standins.restserver import HttpError, error_response

ZONE = PROJECT + r"/zones/(?P<zone>[^/]+)"
INSTANCE = ZONE + r"/instances/(?P<name>[^/]+)"
GLOBAL = PROJECT + "/global"
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


def fingerprint(items: list) -> str:
    return base64.b64encode(hashlib.sha256(json.dumps(items, sort_keys=True).encode()).digest()[:8]).decode()


class Compute(DisksMixin, Operations):
    def __init__(self, op_latency: float, pubsub_host: str | None, secrets_host: str | None = None,
                 token_key: str = "", iam_host: str | None = None):
        super().__init__(op_latency)
        self.iam_host = iam_host
        self.firewalls: dict[tuple, dict] = {}
        self.pubsub_host = pubsub_host
        self.secrets_host = secrets_host
        self.token_key = token_key
        self.instances: dict[tuple, dict] = {}
        self.inserts = 0
        self._init_disks()
        self._routes()
        self._disk_routes()

    def dispatch(self, request: Request) -> Response:
        """Compute checks the caller's permission in the project before anything else."""
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

    def _instance(self, project, zone, name) -> dict:
        return or_404(self.instances.get((project, zone, name)), f"projects/{project}/zones/{zone}/instances/{name}")

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

    def _routes(self) -> None:
        @self.mutating("POST", ZONE + "/instances", "instances.insert", timed=True)
        def insert(request, fault, project, zone):
            body = request.get_json()
            name = body.get("name", "")
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
                "kind": "compute#instance", "id": new_id(), "name": name, "status": "PROVISIONING",
                "machineType": body["machineType"], "zone": f"{BASE}/projects/{project}/zones/{zone}",
                "creationTimestamp": rfc3339(), "labels": body.get("labels", {}),
                "networkInterfaces": [{**n, "networkIP": f"10.128.0.{len(self.instances) % 250 + 2}"}
                                      for n in body.get("networkInterfaces", [])],
                "disks": disks, "serviceAccounts": body.get("serviceAccounts", []),
                "tags": {**body.get("tags", {}), "fingerprint": fingerprint(body.get("tags", {}).get("items", []))},
                "metadata": {"kind": "compute#metadata", "items": items, "fingerprint": fingerprint(items)},
                "selfLink": f"{BASE}/projects/{project}/zones/{zone}/instances/{name}", "_serial": "",
            }

            def create():
                self.inserts += 1
                make_disks()
                self._boot(inst)
            self.instances[key] = inst  # visible (PROVISIONING) while the operation runs
            return self._new_op(request, fault, key, "insert", create,
                                undo=lambda: self.instances.pop(key, None))  # a failed insert leaves no instance

        @self.route("GET", INSTANCE, "instances.get")
        def get(request, fault, project, zone, name):
            with self.lock:
                self._advance()
                return public(self._instance(project, zone, name))

        def action(kind: str, need: tuple[str, ...], before: str | None, effect):
            def handler(request, fault, project, zone, name, found):
                if need and found["status"] not in need:
                    raise HttpError(400, f"The instance is {found['status']}: cannot {kind} it", "resourceNotReady")
                if before:
                    found["status"] = before
                return self._new_op(request, fault, (project, zone, name), kind,
                                    lambda: effect(project, zone, name, found))
            return handler

        def do_stop(p, z, n, inst):
            inst.update(status="TERMINATED", lastStopTimestamp=rfc3339())

        def do_delete(p, z, n, inst):
            self.instances.pop((p, z, n), None)
            self.drop_disks(inst)

        for method, suffix, kind, need, before, effect in (
                ("POST", "/start", "start", (), "STAGING", lambda p, z, n, i: self._boot(i)),
                ("POST", "/stop", "stop", (), "STOPPING", do_stop),
                ("POST", "/reset", "reset", ("RUNNING",), None, lambda p, z, n, i: self._boot(i)),
                ("DELETE", "", "delete", (), "STOPPING", do_delete)):
            self.mutating(method, INSTANCE + suffix, f"instances.{kind}", find=self._instance, timed=True)(
                action(kind, need, before, effect))

        @self.mutating("POST", INSTANCE + "/setMetadata", "instances.setMetadata", find=self._instance)
        def set_metadata(request, fault, project, zone, name, found):
            body = request.get_json()
            if body.get("fingerprint") != found["metadata"]["fingerprint"]:
                raise HttpError(412, "Supplied fingerprint does not match current metadata fingerprint.",
                                "conditionNotMet")
            items = body.get("items", [])

            def apply():
                found["metadata"] = {"kind": "compute#metadata", "items": items, "fingerprint": fingerprint(items)}
            # the fingerprint changes at once, so a second writer with the old one is refused
            found["metadata"]["fingerprint"] = fingerprint(items)
            return self._new_op(request, fault, (project, zone, name), "setMetadata", apply)

        @self.mutating("POST", INSTANCE + "/setServiceAccount", "instances.setServiceAccount", find=self._instance)
        def set_service_account(request, fault, project, zone, name, found):
            body = request.get_json(silent=True) or {}
            if found["status"] != "TERMINATED":  # as on Compute: only a stopped instance changes identity
                raise HttpError(400, "The instance must be stopped to change its service account.",
                                "resourceNotReady")

            def apply():
                found["serviceAccounts"] = [{"email": body.get("email", ""), "scopes": body.get("scopes", [])}]
            return self._new_op(request, fault, (project, zone, name), "setServiceAccount", apply)

        @self.mutating("POST", INSTANCE + "/setTags", "instances.setTags", find=self._instance)
        def set_tags(request, fault, project, zone, name, found):
            body = request.get_json(silent=True) or {}
            if body.get("fingerprint") != found["tags"]["fingerprint"]:
                raise HttpError(412, "Supplied fingerprint does not match current tags fingerprint.",
                                "conditionNotMet")
            items = body.get("items", [])
            found["tags"] = {"items": items, "fingerprint": fingerprint(items)}  # the next writer needs this one
            return self._new_op(request, fault, (project, zone, name), "setTags", lambda: None)

        @self.route("GET", INSTANCE + "/serialPort", "instances.getSerialPortOutput")
        def serial(request, fault, project, zone, name):
            with self.lock:
                self._advance()
                text = self._instance(project, zone, name)["_serial"]
            start = int(request.args.get("start", "0") or 0)
            start = max(start, 0)
            return {"kind": "compute#serialPortOutput", "contents": text[start:], "start": str(start),
                    "next": str(len(text)), "selfLink": f"{BASE}/projects/{project}/zones/{zone}/instances/{name}"}

        @self.mutating("POST", GLOBAL + "/firewalls", "firewalls.insert")
        def firewall_insert(request, fault, project):
            body = request.get_json(silent=True) or {}
            name = body.get("name", "")
            if not name or not body.get("allowed"):
                raise HttpError(400, "Invalid value for field 'resource': name and allowed are required", "invalid")
            if (project, name) in self.firewalls:
                raise HttpError(409, f"The resource 'projects/{project}/global/firewalls/{name}' already exists",
                                "alreadyExists")
            link = f"{BASE}/projects/{project}/global/firewalls/{name}"
            self.firewalls[(project, name)] = {
                "kind": "compute#firewall", "id": new_id(), "creationTimestamp": rfc3339(),
                "network": body.get("network", f"{BASE}/projects/{project}/global/networks/default"),
                "direction": body.get("direction", "INGRESS"), "priority": body.get("priority", 1000),
                **{k: v for k, v in body.items() if k not in ("kind", "id")}, "selfLink": link}
            # done at once; the global operation routes find it
            return self._new_op(request, None, (project, "global", name), "insert", lambda: None, scope="global",
                                target=link, done=True)

        @self.route("GET", GLOBAL + r"/firewalls/(?P<name>[^/]+)", "firewalls.get")
        def firewall_get(request, fault, project, name):
            with self.lock:
                return or_404(self.firewalls.get((project, name)), f"projects/{project}/global/firewalls/{name}")

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
