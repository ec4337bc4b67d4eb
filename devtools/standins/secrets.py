"""Local Secret Manager: the REST wire format of secrets create/get/delete, addVersion and
versions access, and the secret-level IAM policy (getIamPolicy/setIamPolicy with etags), for
google-cloud-secret-manager's REST transport. Payload checksums (dataCrc32c) are checked and
returned as Secret Manager does.

Callers: a request without a bearer token is the operator's runtime account (secretmanager.admin
in production: it may do everything). A request with an access token minted by the Compute
stand-in's metadata server (devtools/standins/access_tokens.py, `--token-key`) is that VM's
service account: it may only access versions of secrets whose own policy grants it
roles/secretmanager.secretAccessor, as on Google (no project-level grant exists for the bots).

Usage: python -m devtools.standins.secrets PORT [--token-key KEY]
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
from datetime import datetime, timezone

import google_crc32c
from werkzeug.wrappers import Request, Response

from devtools.standins import access_tokens
from devtools.standins.restserver import HttpError, RestServer

SECRET = r"/v1/projects/(?P<project>[^/]+)/secrets/(?P<secret>[A-Za-z0-9_-]+)"


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


ACCESSOR = "roles/secretmanager.secretAccessor"
READ_ROLES = (ACCESSOR, "roles/secretmanager.admin", "roles/owner")


def etag(policy: dict) -> str:
    body = json.dumps(policy.get("bindings", []), sort_keys=True).encode()
    return base64.b64encode(hashlib.sha256(body).digest()[:8]).decode()


class Secrets(RestServer):
    def __init__(self, token_key: str = ""):
        super().__init__()
        self.token_key = token_key
        self.secrets: dict[str, dict] = {}  # name -> {"meta": Secret, "versions": [bytes], "policy": Policy}
        self.denied: list[dict] = []  # refused calls by a VM identity: {"account", "secret", "method"}
        self._routes()

    def caller(self, request: Request) -> str | None:
        """None: the runtime (no token); else the service account the access token belongs to."""
        auth = request.headers.get("Authorization", "")
        if not auth:
            return None
        account = access_tokens.resolve(self.token_key, auth.removeprefix("Bearer ").strip())
        if account is None:
            raise HttpError(401, "Request had invalid authentication credentials.", "authError")
        return account

    def require(self, request: Request, project: str, secret: str, permission: str) -> None:
        """Only the runtime administers secrets; a VM identity may only access versions of a
        secret whose policy names it."""
        account = self.caller(request)
        if account is None:
            return
        name = f"projects/{project}/secrets/{secret}"
        entry = self.secrets.get(name)
        member = f"serviceAccount:{account}"
        if permission == "secretmanager.versions.access" and entry is not None and any(
                b["role"] in READ_ROLES and member in b.get("members", [])
                for b in entry["policy"].get("bindings", [])):
            return
        self.denied.append({"account": account, "secret": name, "permission": permission})
        raise HttpError(403, f"Permission '{permission}' denied for resource '{name}' (or it may not exist).",
                        "forbidden")

    def _get(self, project: str, secret: str) -> dict:
        name = f"projects/{project}/secrets/{secret}"
        if name not in self.secrets:
            raise HttpError(404, f"Secret [{name}] not found or has no versions.", "notFound")
        return self.secrets[name]

    def _routes(self) -> None:
        @self.route("POST", r"/v1/projects/(?P<project>[^/]+)/secrets", "secrets.create")
        def create(request, fault, project):
            secret_id = request.args.get("secretId", "")
            if not secret_id or len(secret_id) > 255 or not all(c.isalnum() or c in "_-" for c in secret_id):
                raise HttpError(400, "secretId must be 1-255 letters, digits, '-' or '_'", "invalid")
            name = f"projects/{project}/secrets/{secret_id}"
            if self.caller(request) is not None:
                raise HttpError(403, f"Permission 'secretmanager.secrets.create' denied for resource "
                                     f"'projects/{project}'.", "forbidden")
            body = request.get_json(silent=True) or {}
            if "replication" not in body:
                raise HttpError(400, "Secret.replication is required", "invalid")
            with self.lock:
                if name in self.secrets:
                    raise HttpError(409, f"Secret [{name}] already exists.", "alreadyExists")
                meta = {"name": name, "replication": body["replication"], "labels": body.get("labels", {}),
                        "createTime": now()}
                self.secrets[name] = {"meta": meta, "versions": [], "policy": {"version": 1, "bindings": []}}
            return meta

        @self.route("GET", SECRET, "secrets.get")
        def get(request, fault, project, secret):
            with self.lock:
                self.require(request, project, secret, "secretmanager.secrets.get")
                return self._get(project, secret)["meta"]

        @self.route("DELETE", SECRET, "secrets.delete")
        def delete(request, fault, project, secret):
            with self.lock:
                self.require(request, project, secret, "secretmanager.secrets.delete")
                self._get(project, secret)
                del self.secrets[f"projects/{project}/secrets/{secret}"]
            return {}

        @self.route("POST", SECRET + ":addVersion", "secrets.addVersion")
        def add_version(request, fault, project, secret):
            payload = (request.get_json(silent=True) or {}).get("payload", {})
            try:
                data = base64.b64decode(payload.get("data", ""), validate=True)
            except ValueError:
                raise HttpError(400, "payload.data is not base64", "invalid") from None
            crc = payload.get("dataCrc32c")
            if crc is not None and int(crc) != google_crc32c.value(data):
                raise HttpError(400, "Checksum mismatch: the payload was corrupted in transit", "invalid")
            with self.lock:
                self.require(request, project, secret, "secretmanager.versions.add")
                entry = self._get(project, secret)
                entry["versions"].append(data)
                n = len(entry["versions"])
            return {"name": f"projects/{project}/secrets/{secret}/versions/{n}", "createTime": now(),
                    "state": "ENABLED"}

        @self.route("GET", SECRET + r"/versions/(?P<version>latest|\d+):access", "secrets.access")
        def access(request, fault, project, secret, version):
            with self.lock:
                self.require(request, project, secret, "secretmanager.versions.access")
                versions = self._get(project, secret)["versions"]
                n = len(versions) if version == "latest" else int(version)
                if not 1 <= n <= len(versions):
                    raise HttpError(404, f"Secret version [{version}] not found.", "notFound")
                data = versions[n - 1]
            return {"name": f"projects/{project}/secrets/{secret}/versions/{n}",
                    "payload": {"data": base64.b64encode(data).decode(),
                                "dataCrc32c": str(google_crc32c.value(data))}}

        @self.route("GET", SECRET + ":getIamPolicy", "secrets.getIamPolicy")
        def get_iam_policy(request, fault, project, secret):
            with self.lock:
                self.require(request, project, secret, "secretmanager.secrets.getIamPolicy")
                policy = self._get(project, secret)["policy"]
                return {**policy, "etag": etag(policy)}

        @self.route("POST", SECRET + ":setIamPolicy", "secrets.setIamPolicy")
        def set_iam_policy(request, fault, project, secret):
            policy = (request.get_json(silent=True) or {}).get("policy")
            if not isinstance(policy, dict):
                raise HttpError(400, "policy is required", "invalid")
            for b in policy.get("bindings", []):
                if not str(b.get("role", "")).startswith("roles/") or not all(
                        str(m).split(":", 1)[0] in ("user", "serviceAccount", "group", "domain")
                        for m in b.get("members", [])):
                    raise HttpError(400, f"Invalid binding {b}", "invalid")
            with self.lock:
                self.require(request, project, secret, "secretmanager.secrets.setIamPolicy")
                entry = self._get(project, secret)
                if policy.get("etag") and policy["etag"] != etag(entry["policy"]):
                    raise HttpError(409, "There were concurrent policy changes. Please retry the whole "
                                         "read-modify-write with exponential backoff.", "aborted")
                entry["policy"] = {"version": 1, "bindings": [
                    {"role": b["role"], "members": sorted(set(b.get("members", [])))}
                    for b in policy.get("bindings", []) if b.get("members")]}
                return {**entry["policy"], "etag": etag(entry["policy"])}

    def control_extra(self, request: Request) -> Response:
        if request.path == "/_state":
            with self.lock:
                names = {n: len(e["versions"]) for n, e in self.secrets.items()}
                policies = {n: e["policy"].get("bindings", []) for n, e in self.secrets.items()}
                state = {"secrets": names, "policies": policies, "denied": list(self.denied)}
            return Response(json.dumps(state), mimetype="application/json")
        return super().control_extra(request)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--token-key", default="")
    args = parser.parse_args()
    Secrets(args.token_key).serve(args.port)


if __name__ == "__main__":
    main()
