"""API key values in Secret Manager, one secret per (deployment, key name). Only the VM (through
its own service account, shared/deploy/identity.py) and this module ever see a value.

Each secret's own IAM policy names the one account that may read it: `grant` adds
roles/secretmanager.secretAccessor for the deployment's VM identity on that secret only
(read-modify-write with the policy's etag, retried when another writer won). No project-level
grant lets a bot read secrets, so the VM of one deployment cannot read another's."""
from __future__ import annotations

from functools import lru_cache

from google.api_core import exceptions as gexc

from shared import config

ACCESSOR = "roles/secretmanager.secretAccessor"


def _endpoint() -> str | None:
    return config.env("SECRET_MANAGER_API_ENDPOINT")  # a local Secret Manager; None = the real API


def _project() -> str:
    return config.env("SECRETS_PROJECT") or config.get().project


@lru_cache(maxsize=1)
def client():
    from google.cloud import secretmanager_v1

    endpoint = _endpoint()
    if not endpoint:
        return secretmanager_v1.SecretManagerServiceClient(transport="rest")
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials

    return secretmanager_v1.SecretManagerServiceClient(
        transport="rest", credentials=AnonymousCredentials(), client_options=ClientOptions(api_endpoint=endpoint))


def secret_id(deployment_id: str, key_name: str) -> str:
    return f"oc-{deployment_id}-{key_name}"


def secret_name(deployment_id: str, key_name: str) -> str:
    return f"projects/{_project()}/secrets/{secret_id(deployment_id, key_name)}"


def put(deployment_id: str, key_name: str, value: str) -> None:
    """Create the secret if needed, then add the value as its newest version (with a checksum).
    When the deployment already has its VM identity, that account (only) may read the secret."""
    import google_crc32c
    from google.cloud import secretmanager_v1

    timeout = _timeout()
    try:
        client().create_secret(
            parent=f"projects/{_project()}", secret_id=secret_id(deployment_id, key_name),
            secret=secretmanager_v1.Secret(replication={"automatic": {}},
                                           labels={"openclaw-deployment": deployment_id.lower()[:63],
                                                   "openclaw-key": key_name}),
            timeout=timeout)
    except gexc.Conflict:  # already exists (the REST transport maps 409 to Conflict)
        pass
    data = value.encode()
    client().add_secret_version(
        parent=secret_name(deployment_id, key_name),
        payload=secretmanager_v1.SecretPayload(data=data, data_crc32c=google_crc32c.value(data)), timeout=timeout)
    from shared.deploy import identity

    ident = identity.get(deployment_id)
    if ident is not None:
        grant(deployment_id, key_name, ident.email)


def grant(deployment_id: str, key_name: str, account: str) -> bool:
    """Let `account` (and, through this binding, no one else) read this one secret; False if it
    already could. Other bindings on the secret are kept."""
    member = f"serviceAccount:{account}"
    name, timeout = secret_name(deployment_id, key_name), _timeout()
    for _ in range(5):
        policy = client().get_iam_policy(request={"resource": name}, timeout=timeout)
        binding = next((b for b in policy.bindings if b.role == ACCESSOR), None)
        if binding is not None and member in binding.members:
            return False
        if binding is None:
            policy.bindings.add(role=ACCESSOR, members=[member])
        else:
            binding.members.append(member)
        try:
            client().set_iam_policy(request={"resource": name, "policy": policy}, timeout=timeout)
            return True
        except (gexc.Conflict, gexc.Aborted):  # etag: another writer changed the policy since the read
            continue
    raise gexc.Aborted(f"the IAM policy of {name} kept changing")


def access(deployment_id: str, key_name: str) -> str:
    resp = client().access_secret_version(name=secret_name(deployment_id, key_name) + "/versions/latest",
                                          timeout=_timeout())
    return resp.payload.data.decode()


def delete(deployment_id: str, key_name: str) -> bool:
    """Delete the secret with all its versions; False when it was already gone."""
    try:
        client().delete_secret(name=secret_name(deployment_id, key_name), timeout=_timeout())
        return True
    except gexc.NotFound:
        return False


def _timeout() -> float:
    """One call's timeout: DEPLOY_CALL_TIMEOUT_S, cut to what is left of the request's budget
    (shared/faults.py; BudgetExhausted when nothing is). The client library's own retries (access,
    delete) share it: google-api-core turns it into a deadline across the tries."""
    from shared import config, faults

    return faults.timeout(float(config.env_int("DEPLOY_CALL_TIMEOUT_S", 30, hi=120)), "Secret Manager")
