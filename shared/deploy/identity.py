"""One Google service account per bot: the VM of deployment D runs as `ocb-<hash(D)>@<project>`,
created by the deploy job before the VM and deleted with the deployment. It is granted
roles/secretmanager.secretAccessor on D's own secrets only (secret-level IAM, shared/deploy/secrets.py)
and roles/pubsub.publisher on the reports topic (what it publishes is still only believed when
signed with D's report key, shared/deploy/events.py) and roles/storage.objectViewer on the bucket of
the bot plugin its startup script installs. No project-level role names it.

Service accounts count against a per-project quota (100 by default). The account is created in
the deployment's own project when there is room, else in the next project of
DEPLOY_ALLOWED_PROJECTS that has room (the VM then uses an account of another project, which the
organisation policy `iam.disableCrossProjectServiceAccountUsage` must allow). Where it lives is
kept in the internal collection `botIdentities` (document id = deployment id).

The IAM admin API is called over REST (https://iam.googleapis.com/v1, or IAM_API_ENDPOINT locally):
google-cloud-iam's iam_admin_v1 ships only gRPC transports (it could not reach a local REST
stand-in) and costs ~0.3 s of import, for three calls.
"""
from __future__ import annotations

import hashlib
from functools import lru_cache

from shared import clock, config
from shared.db import Repo
from shared.deploy import settings
from shared.deploy.compute import ComputeError
from shared.models import Doc, Deployment

IAM_API = "https://iam.googleapis.com"


class BotIdentity(Doc):
    collection = "botIdentities"  # document id = deployment id
    deploymentId: str
    email: str
    project: str
    createdAt: int


identities = Repo(BotIdentity)


def account_id(deployment_id: str) -> str:
    """6-30 characters, [a-z]([-a-z0-9]*[a-z0-9]): a hash, since deployment ids are longer and mixed case."""
    return "ocb-" + hashlib.sha256(deployment_id.encode()).hexdigest()[:24]


def email_in(deployment_id: str, project: str) -> str:
    return f"{account_id(deployment_id)}@{project}.iam.gserviceaccount.com"


@lru_cache(maxsize=1)
def _session():
    import requests

    if settings.get().iam_endpoint:
        return requests.Session()  # the local stand-in: no credentials
    import google.auth
    from google.auth.transport.requests import AuthorizedSession

    creds, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    return AuthorizedSession(creds)


def _call(what: str, method: str, path: str, body: dict | None = None):
    return request(what, "IAM", (settings.get().iam_endpoint or IAM_API).rstrip("/"), method, f"v1/{path}", body)


def request(what: str, service: str, base: str, method: str, path: str, body: dict | None = None) -> dict:
    """One REST call to a Google API (IAM, Resource Manager, IAP) with the runtime's credentials;
    errors become ComputeError (5xx and 408 transient)."""
    import requests

    try:
        resp = _session().request(method, f"{base}/{path}", json=body, timeout=settings.get().call_timeout_s)
    except requests.RequestException as exc:
        raise ComputeError(f"{what}: {service} unreachable ({type(exc).__name__})", True) from None
    if resp.status_code >= 400:
        try:
            message = resp.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = resp.text[:200]
        raise ComputeError(f"{what}: {service} said {resp.status_code} {message}",
                           resp.status_code >= 500 or resp.status_code == 408, resp.status_code)
    return resp.json() if resp.content else {}


def _quota_full(exc: ComputeError) -> bool:
    return exc.status == 429 or "maximum number of service accounts" in str(exc).lower()


def get(deployment_id: str) -> BotIdentity | None:
    return identities.get(deployment_id)


def ensure(dep: Deployment) -> tuple[BotIdentity, bool]:
    """The deployment's service account, created if needed; (identity, created now)."""
    known = identities.get(dep.id)
    from shared.deploy import projects as customer_projects

    # a customer's own project keeps its bot's account: the operator's projects are not its spill-over
    own = customer_projects.is_customer(dep.gcpProject)
    spill = [] if own else [p for p in settings.get().allowed_projects if p != dep.gcpProject]
    projects = [known.project] if known else [dep.gcpProject] + spill
    full = []
    for project in projects:
        body = {"accountId": account_id(dep.id),
                "serviceAccount": {"displayName": f"OpenClaw bot {dep.id}"[:100],
                                   "description": f"VM identity of deployment {dep.id} (one per bot)"}}
        created = True
        try:
            sa = _call("create the bot's service account", "POST", f"projects/{project}/serviceAccounts", body)
        except ComputeError as exc:
            if exc.status == 409:  # made by an earlier attempt of this job
                sa, created = {"email": email_in(dep.id, project)}, False
            elif _quota_full(exc) and not known:
                full.append(project)
                continue
            else:
                raise
        ident = BotIdentity(_id=dep.id, deploymentId=dep.id, email=sa["email"], project=project,
                            createdAt=known.createdAt if known else clock.now_ms())
        identities.set(ident)
        return ident, created
    if own:
        raise ComputeError(f"your project {dep.gcpProject} has no room for another service account (its quota is "
                           "full): delete unused accounts there or ask Google for a higher quota", False, 429)
    raise ComputeError(f"no project has room for another service account (full: {', '.join(full)}); "
                       "add a project to DEPLOY_ALLOWED_PROJECTS or raise the service-account quota", False, 429)


def delete(deployment_id: str) -> bool:
    """Delete the deployment's service account; False when there was none."""
    known = identities.get(deployment_id)
    if known is None:
        return False
    try:
        _call("delete the bot's service account", "DELETE", f"projects/{known.project}/serviceAccounts/{known.email}")
    except ComputeError as exc:
        if exc.status != 404:
            raise
    identities.delete(deployment_id)
    return True


PUBLISHER = "roles/pubsub.publisher"


def _topic_policy(account: str, add: bool) -> None:
    """Add or remove the account as publisher on the reports topic (read-modify-write with etag).
    The Pub/Sub emulator has no IAM; there publishing is open and only the reports' signatures count."""
    from google.api_core import exceptions as gexc

    if config.emulator_host("PUBSUB"):
        return
    client = _publisher()
    topic, member = settings.get().events_topic, f"serviceAccount:{account}"
    for _ in range(5):
        policy = client.get_iam_policy(request={"resource": topic}, timeout=settings.get().call_timeout_s)
        binding = next((b for b in policy.bindings if b.role == PUBLISHER), None)
        present = binding is not None and member in binding.members
        if present == add:
            return
        if add and binding is None:
            policy.bindings.add(role=PUBLISHER, members=[member])
        elif add:
            binding.members.append(member)
        else:
            binding.members.remove(member)
        try:
            client.set_iam_policy(request={"resource": topic, "policy": policy}, timeout=settings.get().call_timeout_s)
            return
        except (gexc.Aborted, gexc.Conflict, gexc.FailedPrecondition):
            continue
    raise gexc.Aborted(f"the IAM policy of {topic} kept changing")


@lru_cache(maxsize=1)
def _publisher():
    from google.cloud import pubsub_v1

    return pubsub_v1.PublisherClient()


def grant_publisher(account: str) -> None:
    _topic_policy(account, True)


def revoke_publisher(account: str) -> None:
    _topic_policy(account, False)


READER = "roles/storage.objectViewer"


def _plugin_bucket_policy(account: str, add: bool) -> None:
    """Add or remove the account as reader of the bucket holding the bot plugin (BOT_PLUGIN_URL),
    read-modify-write with the policy's etag. Nothing to do without a plugin (local) or under the
    Storage emulator, which has no IAM. The bucket's policy, like the topic's, holds up to 1,500 principals."""
    from google.api_core import exceptions as gexc

    url = settings.get().bot_plugin_url
    if not url or config.emulator_host("STORAGE"):
        return
    bucket = _storage().bucket(url.removeprefix("gs://").split("/", 1)[0])
    member, timeout = f"serviceAccount:{account}", settings.get().call_timeout_s
    for _ in range(5):
        policy = bucket.get_iam_policy(requested_policy_version=3, timeout=timeout)
        binding = next((b for b in policy.bindings if b["role"] == READER and not b.get("condition")), None)
        present = binding is not None and member in binding["members"]
        if present == add:
            return
        if add and binding is None:
            policy.bindings.append({"role": READER, "members": {member}})
        elif add:
            binding["members"].add(member)
        else:
            binding["members"].discard(member)
        try:
            bucket.set_iam_policy(policy, timeout=timeout)
            return
        except (gexc.PreconditionFailed, gexc.Conflict):
            continue
    raise gexc.Aborted(f"the IAM policy of {bucket.name} kept changing")


@lru_cache(maxsize=1)
def _storage():
    from google.cloud import storage

    return storage.Client()


def grant_plugin_reader(account: str) -> None:
    _plugin_bucket_policy(account, True)


def revoke_plugin_reader(account: str) -> None:
    _plugin_bucket_policy(account, False)
