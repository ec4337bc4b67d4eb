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

Usage: python -m devtools.standins.iam PORT [--quota N]
"""
from __future__ import annotations

import argparse
import base64
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
        self._routes()

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
            with self.lock:
                del self.accounts[self._find(project, ref)["email"]]
            return {}

    def control_extra(self, request: Request) -> Response:
        if request.path == "/_state":
            with self.lock:
                state = {"accounts": sorted(self.accounts)}
            return Response(json.dumps(state), mimetype="application/json")
        return super().control_extra(request)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--quota", type=int, default=100)
    args = parser.parse_args()
    Iam(args.quota).serve(args.port)


if __name__ == "__main__":
    main()
