"""Customer projects: a deployment may run in the customer's own Google Cloud project (any project
not in DEPLOY_ALLOWED_PROJECTS) once the customer has
  1. labelled the project `openclaw-owner=<their owner label>` (proof that the person asking controls
     the project: without it, anyone could name a project another customer opened to this service's
     one deployer account), and
  2. granted the deployer account (the functions' runtime service account) the roles below.

Both are checked with Cloud Resource Manager v3 before anything is queued (`projects.get` for the label,
`projects.testIamPermissions` for the grant: it answers the subset of the asked permissions the caller
holds, so what is missing is exact) and again by every deploy job, which stops cleanly when the grant
was withdrawn meanwhile (shared/deploy/customer.py).

REST over the same authorised session as the IAM admin calls (shared/deploy/identity.py); locally the
IAM stand-in (devtools/standins/iam.py) answers these paths too.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from shared.deploy import settings
from shared.deploy.compute import ComputeError
from shared.errors import Conflict, Unavailable

RESOURCE_MANAGER_API = "https://cloudresourcemanager.googleapis.com"
OWNER_LABEL = "openclaw-owner"

# what the deploy jobs do in a customer project -> the predefined role that grants it
DEPLOY_PERMISSIONS: dict[str, str] = {
    **dict.fromkeys((
        "resourcemanager.projects.get",
        "compute.instances.create", "compute.instances.get", "compute.instances.delete", "compute.instances.start",
        "compute.instances.stop", "compute.instances.reset", "compute.instances.setMetadata",
        "compute.instances.setServiceAccount", "compute.instances.setLabels", "compute.instances.setTags",
        "compute.instances.getSerialPortOutput", "compute.disks.create", "compute.subnetworks.use",
        "compute.zoneOperations.get"), "roles/compute.instanceAdmin.v1"),
    **dict.fromkeys(("compute.firewalls.create", "compute.firewalls.get", "compute.globalOperations.get"),
                    "roles/compute.securityAdmin"),
    **dict.fromkeys(("iam.serviceAccounts.create", "iam.serviceAccounts.get", "iam.serviceAccounts.delete"),
                    "roles/iam.serviceAccountAdmin"),
    "iam.serviceAccounts.actAs": "roles/iam.serviceAccountUser",
}
# opening the bot's dashboard: a short-lived IAP tunnel grant on the one instance (shared/deploy/dashboard.py)
DASHBOARD_PERMISSIONS: dict[str, str] = dict.fromkeys(
    ("iap.tunnelInstances.getIamPolicy", "iap.tunnelInstances.setIamPolicy"), "roles/iap.admin")


def owner_label(user_id: str) -> str:
    """The label value that ties a project to one user (label values: [a-z0-9_-], <= 63)."""
    return "u" + hashlib.sha256(user_id.encode()).hexdigest()[:24]


def is_customer(project: str) -> bool:
    """A project of the customer's own: not one of the operator's. Locally, with no list, none is."""
    allowed = settings.get().allowed_projects
    return bool(allowed) and project not in allowed


def _call(what: str, method: str, path: str, body: dict | None = None) -> dict:
    from shared.deploy import identity

    base = (settings.get().iam_endpoint or RESOURCE_MANAGER_API).rstrip("/")
    return identity.request(what, "Resource Manager", base, method, path, body)


@dataclass(frozen=True)
class Grant:
    project: str
    missing: tuple[str, ...]

    @property
    def roles(self) -> list[str]:
        table = {**DEPLOY_PERMISSIONS, **DASHBOARD_PERMISSIONS}
        return sorted({table[p] for p in self.missing})

    def commands(self) -> list[str]:
        member = f"serviceAccount:{settings.get().deployer_account}"
        return [f"gcloud projects add-iam-policy-binding {self.project} --member={member} --role={r} --condition=None"
                for r in self.roles]

    def describe(self) -> str:
        return (f"the deployer account {settings.get().deployer_account} lacks {', '.join(self.missing)} in project "
                f"{self.project}; grant {', '.join(self.roles)}")

    def error(self) -> Conflict:
        return Conflict("grant_missing", f"{self.describe()} (see details.commands)", {
            "project": self.project, "member": f"serviceAccount:{settings.get().deployer_account}",
            "missingPermissions": list(self.missing), "roles": self.roles, "commands": self.commands()})


def missing(project: str, wanted: dict[str, str]) -> Grant:
    """Which of `wanted` the deployer account lacks in `project` (testIamPermissions). A project that
    does not exist, or where the account holds nothing at all, answers 403/404: everything is missing."""
    asked = sorted(wanted)
    try:
        got = _call("check the grant", "POST", f"v3/projects/{project}:testIamPermissions", {"permissions": asked})
    except ComputeError as exc:
        if exc.status in (403, 404):
            return Grant(project, tuple(asked))
        raise
    granted = set(got.get("permissions") or ())  # an empty answer is `{}`: nothing granted
    return Grant(project, tuple(p for p in asked if p not in granted))


def labels(project: str) -> dict | None:
    """The project's labels; None when the deployer may not read the project."""
    try:
        return _call("read the project", "GET", f"v3/projects/{project}").get("labels") or {}
    except ComputeError as exc:
        if exc.status in (403, 404):
            return None
        raise


def require(project: str, user_id: str) -> None:
    """Before queueing anything for a customer project: 409 naming what the customer must still do."""
    try:
        grant = missing(project, DEPLOY_PERMISSIONS)
        found = labels(project) if "resourcemanager.projects.get" not in grant.missing else None
    except ComputeError as exc:
        raise Unavailable("unavailable", f"could not check project {project}: {exc}") from None
    if grant.missing:
        raise grant.error()
    want = owner_label(user_id)
    if found is None or found.get(OWNER_LABEL) != want:
        raise Conflict("project_not_verified",
                       f"project {project} must carry the label {OWNER_LABEL}={want} (it proves the project is yours)",
                       {"project": project, "label": {OWNER_LABEL: want},
                   "commands": [f"gcloud alpha projects update {project} --update-labels={OWNER_LABEL}={want}"]})
