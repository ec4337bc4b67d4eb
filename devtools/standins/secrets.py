"""Local Secret Manager: the REST wire format of secrets create/get/delete, addVersion and
versions access, for google-cloud-secret-manager's REST transport. Payload checksums
(dataCrc32c) are checked and returned as Secret Manager does.

Usage: python -m devtools.standins.secrets PORT
"""
from __future__ import annotations

import base64
import json
import sys
from datetime import datetime, timezone

import google_crc32c
from werkzeug.wrappers import Request, Response

from devtools.standins.restserver import HttpError, RestServer

SECRET = r"/v1/projects/(?P<project>[^/]+)/secrets/(?P<secret>[A-Za-z0-9_-]+)"


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Secrets(RestServer):
    def __init__(self):
        super().__init__()
        self.secrets: dict[str, dict] = {}  # name -> {"meta": Secret, "versions": [bytes]}
        self._routes()

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
            body = request.get_json(silent=True) or {}
            if "replication" not in body:
                raise HttpError(400, "Secret.replication is required", "invalid")
            with self.lock:
                if name in self.secrets:
                    raise HttpError(409, f"Secret [{name}] already exists.", "alreadyExists")
                meta = {"name": name, "replication": body["replication"], "labels": body.get("labels", {}),
                        "createTime": now()}
                self.secrets[name] = {"meta": meta, "versions": []}
            return meta

        @self.route("GET", SECRET, "secrets.get")
        def get(request, fault, project, secret):
            with self.lock:
                return self._get(project, secret)["meta"]

        @self.route("DELETE", SECRET, "secrets.delete")
        def delete(request, fault, project, secret):
            with self.lock:
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
                entry = self._get(project, secret)
                entry["versions"].append(data)
                n = len(entry["versions"])
            return {"name": f"projects/{project}/secrets/{secret}/versions/{n}", "createTime": now(),
                    "state": "ENABLED"}

        @self.route("GET", SECRET + r"/versions/(?P<version>latest|\d+):access", "secrets.access")
        def access(request, fault, project, secret, version):
            with self.lock:
                versions = self._get(project, secret)["versions"]
                n = len(versions) if version == "latest" else int(version)
                if not 1 <= n <= len(versions):
                    raise HttpError(404, f"Secret version [{version}] not found.", "notFound")
                data = versions[n - 1]
            return {"name": f"projects/{project}/secrets/{secret}/versions/{n}",
                    "payload": {"data": base64.b64encode(data).decode(),
                                "dataCrc32c": str(google_crc32c.value(data))}}

    def control_extra(self, request: Request) -> Response:
        if request.path == "/_state":
            with self.lock:
                names = {n: len(e["versions"]) for n, e in self.secrets.items()}
            return Response(json.dumps({"secrets": names}), mimetype="application/json")
        return super().control_extra(request)


if __name__ == "__main__":
    Secrets().serve(int(sys.argv[1]))
