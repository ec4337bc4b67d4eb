"""Local IAM admin API: the REST wire format of projects.serviceAccounts create/get/delete
(https://iam.googleapis.com/v1/...), with the per-project service-account quota (100 on Google
by default; `--quota`), so the spreading of bot identities over projects can be tested.

Request bodies and answers follow the REST reference: create takes
`{"accountId": ..., "serviceAccount": {"displayName": ..., "description": ...}}` (accountId 6-30
characters, `[a-z]([-a-z0-9]*[a-z0-9])`) and answers the ServiceAccount (`name`
`projects/P/serviceAccounts/EMAIL`, `projectId`, `uniqueId`, `email`, `displayName`, `etag`,
`oauth2ClientId`); get/delete take `projects/P/serviceAccounts/{EMAIL or uniqueId}` (`projects/-`
as well); a second create of one id answers 409 ALREADY_EXISTS; a full project 429
RESOURCE_EXHAUSTED.

It also plays the two other IAM-policy surfaces the deploy code calls with the same credentials:
- Cloud Resource Manager v3 for customer projects: `GET /v3/projects/{id}` (the Project: `name`,
  `projectId`, `state`, `labels`) and `POST /v3/projects/{id}:testIamPermissions`
  (`{"permissions": [...]}` -> `{"permissions": [the subset granted]}`, `{}` when none, as Google
  answers). A project a test registered (`POST /_projects {"projectId", "labels", "permissions"}`)
  is a customer's: the runtime (a call without a token) holds only the permissions listed there, and
  `POST /_projects/{id}/withdraw {"permissions": [...]}` takes some back, as removing a role binding
  would. Service-account calls in such a project need their IAM permission (403 otherwise); the
  Compute stand-in asks `GET /_projects/{id}` for its own calls. A project nobody registered is an
  operator project: everything allowed there, and Resource Manager answers 403 for it (the runtime
  is not asked about those).
- IAP tunnel instance policies (`POST /v1/projects/P/iap_tunnel/zones/Z/instances/I:getIamPolicy`,
  `:setIamPolicy`): version 3 policies with conditions and etags (a stale etag: 409 ABORTED).

Usage: python -m devtools.standins.iam PORT [--quota N]
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import itertools
import json
import re

from werkzeug.wrappers import Request, Response

from devtools.standins.restserver import HttpError, RestServer

ACCOUNT_ID = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])$")
_ids = itertools.count(100000000000000000000)


class Iam(RestServer):
    def __init__(self, quota: int):
        super().__init__()
        self.quota = quota
        self.accounts: dict[str, dict] = {}  # email -> ServiceAccount
        self.projects: dict[str, dict] = {}  # customer projects: {"labels", "permissions": set}
        self.iap: dict[str, dict] = {}  # tunnel instance resource -> policy
        self._routes()
        self._rm_routes()

    def require(self, project: str, permission: str, resource: str) -> None:
        """Outside the operator's projects the runtime holds only what the customer granted."""
        with self.lock:
            known = self.projects.get(project)
            if known is not None and permission not in known["permissions"]:
                raise HttpError(403, f"Permission '{permission}' denied on resource '{resource}' "
                                     "(or it may not exist).",
                                "forbidden")

    def _rm_routes(self) -> None:
        @self.route("GET", r"/v3/projects/(?P<project>[^/:]+)", "projects.get")
        def project_get(request, fault, project):
            with self.lock:
                known = self.projects.get(project)
                if known is None or "resourcemanager.projects.get" not in known["permissions"]:
                    raise HttpError(403, "The caller does not have permission", "forbidden")
                number = str(int(hashlib.sha256(project.encode()).hexdigest(), 16) % 10**12)
                return {"name": f"projects/{number}", "parent": "organizations/1", "projectId": project,
                        "state": "ACTIVE", "displayName": project, "labels": dict(known["labels"]),
                        "etag": base64.b64encode(number.encode()[:8]).decode()}

        @self.route("POST", r"/v3/projects/(?P<project>[^/:]+):testIamPermissions", "projects.testIamPermissions")
        def test_permissions(request, fault, project):
            asked = (request.get_json(silent=True) or {}).get("permissions")
            if not isinstance(asked, list) or not all(isinstance(p, str) for p in asked):
                raise HttpError(400, "Invalid JSON payload: permissions must be a list of strings.", "badRequest")
            with self.lock:
                known = self.projects.get(project)
                if known is None:
                    raise HttpError(403, "The caller does not have permission", "forbidden")
                granted = [p for p in asked if p in known["permissions"]]
            return {"permissions": granted} if granted else {}

        TUNNEL = r"/v1/(?P<resource>projects/(?P<project>[^/]+)/iap_tunnel/zones/[^/]+/instances/[^/:]+)"

        @self.route("POST", TUNNEL + ":getIamPolicy", "iap.getIamPolicy")
        def iap_get(request, fault, resource, project):
            self.require(project, "iap.tunnelInstances.getIamPolicy", resource)
            with self.lock:
                return self.iap.get(resource) or {"version": 1, "etag": "ACAB"}

        @self.route("POST", TUNNEL + ":setIamPolicy", "iap.setIamPolicy")
        def iap_set(request, fault, resource, project):
            self.require(project, "iap.tunnelInstances.setIamPolicy", resource)
            policy = (request.get_json(silent=True) or {}).get("policy") or {}
            with self.lock:
                current = self.iap.get(resource) or {"etag": "ACAB"}
                if policy.get("etag") != current["etag"]:
                    raise HttpError(409, "There were concurrent policy changes.", "aborted")
                conditional = any(b.get("condition") for b in policy.get("bindings", []))
                if conditional and policy.get("version") != 3:
                    raise HttpError(400, "Conditions need policy version 3.", "badRequest")
                stored = {**policy, "etag": base64.b64encode(hashlib.sha256(
                    json.dumps(policy, sort_keys=True).encode()).digest()[:8]).decode()}
                self.iap[resource] = stored
                return stored

    def _find(self, project: str, ref: str) -> dict:
        acct = self.accounts.get(ref) or next((a for a in self.accounts.values() if a["uniqueId"] == ref), None)
        if acct is None or project not in ("-", acct["projectId"]):
            raise HttpError(404, f"Unknown service account: projects/{project}/serviceAccounts/{ref}", "notFound")
        return acct

    def _routes(self) -> None:
        @self.route("POST", r"/v1/projects/(?P<project>[^/]+)/serviceAccounts", "serviceAccounts.create")
        def create(request, fault, project):
            body = request.get_json(silent=True) or {}
            account_id = body.get("accountId", "")
            if not (6 <= len(account_id) <= 30 and ACCOUNT_ID.match(account_id)):
                raise HttpError(400, "Invalid account id: 6-30 characters, [a-z]([-a-z0-9]*[a-z0-9]).", "invalid")
            email = f"{account_id}@{project}.iam.gserviceaccount.com"
            self.require(project, "iam.serviceAccounts.create", f"projects/{project}")
            sa = body.get("serviceAccount") or {}
            with self.lock:
                if email in self.accounts:
                    raise HttpError(409, f"Service account {account_id} already exists within project "
                                         f"projects/{project}.", "alreadyExists")
                if sum(a["projectId"] == project for a in self.accounts.values()) >= self.quota:
                    raise HttpError(429, "Maximum number of service accounts on project reached.",
                                    "rateLimitExceeded")
                uid = str(next(_ids))
                acct = {"name": f"projects/{project}/serviceAccounts/{email}", "projectId": project,
                        "uniqueId": uid, "email": email, "displayName": sa.get("displayName", ""),
                        "description": sa.get("description", ""),
                        "etag": base64.b64encode(uid.encode()[:8]).decode(), "oauth2ClientId": uid}
                self.accounts[email] = acct
                return {k: v for k, v in acct.items() if v != ""}

        ONE = r"/v1/projects/(?P<project>[^/]+)/serviceAccounts/(?P<ref>[^/:]+)"

        @self.route("GET", ONE, "serviceAccounts.get")
        def get(request, fault, project, ref):
            with self.lock:
                return {k: v for k, v in self._find(project, ref).items() if v != ""}

        @self.route("DELETE", ONE, "serviceAccounts.delete")
        def delete(request, fault, project, ref):
            self.require(self._find(project, ref)["projectId"], "iam.serviceAccounts.delete", ref)
            with self.lock:
                del self.accounts[self._find(project, ref)["email"]]
            return {}

    def control_extra(self, request: Request) -> Response:
        if request.path == "/_state":
            with self.lock:
                state = {"accounts": sorted(self.accounts), "iap": self.iap}
            return Response(json.dumps(state), mimetype="application/json")
        if request.path == "/_projects" and request.method == "POST":  # a customer project and its grant
            body = request.get_json()
            with self.lock:
                self.projects[body["projectId"]] = {"labels": body.get("labels") or {},
                                                    "permissions": set(body.get("permissions") or ())}
            return Response("{}", mimetype="application/json")
        if request.path == "/_projects" and request.method == "DELETE":
            with self.lock:
                self.projects.clear()
            return Response("{}", mimetype="application/json")
        if request.path.startswith("/_projects/"):
            project, _, verb = request.path.removeprefix("/_projects/").partition("/")
            with self.lock:
                known = self.projects.get(project)
                if verb == "withdraw" and known is not None:  # a role binding removed by the customer
                    known["permissions"] -= set(request.get_json().get("permissions") or ())
                out = None if known is None else {"labels": known["labels"],
                                                  "permissions": sorted(known["permissions"])}
            return Response(json.dumps(out), mimetype="application/json")
        return super().control_extra(request)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--quota", type=int, default=100)
    args = parser.parse_args()
    Iam(args.quota).serve(args.port)


if __name__ == "__main__":
    main()
