"""`apiKeys` (apiKeyRegistry): a deployment's API keys. The value goes to Secret Manager only;
Firestore keeps `maskedValue` (first4****last4). The raw value is never returned or logged."""
from __future__ import annotations

from google.api_core import exceptions as gexc
from pydantic import Field, SecretStr, create_model

from shared import db, logs, repos
from shared.api.inputs import Strict
from shared.deploy import access, catalog, configs, secrets
from shared.deploy.redact import mask
from shared.errors import Unavailable, not_found
from shared.http import Api, Reply, Request, list_of
from shared.models import ApiKey

api = Api("apiKeys", "API keys of a deployment's bot (values in Secret Manager)")
log = logs.get("deploy.apikeys")


class ByDeployment(Strict):
    deploymentId: str = Field(min_length=1, max_length=128)


class KeyWrite(Strict):
    value: SecretStr = Field(max_length=512)  # SecretStr: never printed by reprs or validation errors


def key_bodies() -> tuple[str, dict]:
    """The document's body per key name (Route.variants): the value's shape, as catalog.validate_key checks it."""
    shapes = {shape: create_model("KeyWriteGeneric" if shape == catalog.GENERIC_KEY else f"KeyWrite_{name}",
                                  __base__=Strict, value=(str, Field(pattern=shape, max_length=512)))
              for name, shape in reversed(catalog.KEY_NAMES.items())}
    return "keyName", {name: shapes[shape] for name, shape in catalog.KEY_NAMES.items()}


class KeyNames(Reply):
    keyNames: list[str]


def _unavailable(exc: Exception) -> Unavailable:
    log.error("Secret Manager call failed", extra={"code": getattr(exc, "code", None), "error": type(exc).__name__})
    return Unavailable("secrets_unavailable", "the secret store is unavailable; try again")


def _secret_errors():
    import requests

    return gexc.GoogleAPICallError, requests.exceptions.RequestException  # API errors; timeouts, resets


@api.route("GET", "/names", access="public", response=KeyNames)
def names(req: Request):
    """The key names a deployment can have."""
    return {"keyNames": list(catalog.KEY_NAMES)}


@api.route("GET", "/", query=ByDeployment, response=list_of(ApiKey))
def list_for(req: Request):
    """A deployment's keys (masked)."""
    dep = access.owned(req.query.deploymentId, req.caller)
    return {"items": repos.api_keys.all({"deploymentId": dep.id}, cap=100)}


@db.transactional
def _register(tx, item: ApiKey) -> bool:
    if repos.deployments.get(item.deploymentId, tx) is None:
        return False
    repos.api_keys.set(item, tx)
    return True


@api.route("PUT", "/{deploymentId}/{keyName}", body=KeyWrite, response=ApiKey, variants=key_bodies)
def put(req: Request):
    """Set a key: the value to Secret Manager (a new version), the masked value to Firestore."""
    dep = access.owned(req.params["deploymentId"], req.caller)
    key_name = req.params["keyName"]
    value = catalog.validate_key(key_name, req.body.value.get_secret_value().strip())
    try:
        secrets.put(dep.id, key_name, value)
    except _secret_errors() as exc:
        raise _unavailable(exc) from None
    item = ApiKey(_id=f"{dep.id}_{key_name}", deploymentId=dep.id, userId=dep.userId, keyName=key_name,
                  maskedValue=mask(value))
    if not _register(item):  # deleted meanwhile: take the secret back out
        secrets.delete(dep.id, key_name)
        raise not_found(f"deployment {dep.id!r}")
    log.info("api key set", extra={"deploymentId": dep.id, "keyName": key_name})
    return item


@api.route("DELETE", "/{deploymentId}/{keyName}", status=204)
def delete(req: Request):
    """Remove a key: the secret (all versions), then the registry entry."""
    dep = access.owned(req.params["deploymentId"], req.caller)
    doc_id = f"{dep.id}_{req.params['keyName']}"
    if repos.api_keys.get(doc_id) is None:
        raise not_found(f"key {req.params['keyName']!r}")
    configs.key_unused(dep.id, req.params["keyName"])  # an enabled plugin needs it: 409
    try:
        secrets.delete(dep.id, req.params["keyName"])
    except _secret_errors() as exc:
        raise _unavailable(exc) from None
    repos.api_keys.delete(doc_id)
