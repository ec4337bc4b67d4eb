"""Per-deployment bot credentials: the OpenClaw bot on a deployment's VM calls
the `knowledge` and `media` functions with `Authorization: Bot <token>`.

A credential is created when the deployment is deployed (`issue`, which returns
the token once), stored only as its SHA-256 (the token is 256 random bits, so a
fast hash is enough), and revoked by `revoke` (on delete or by the owner). It
acts as the deployment's owner and is never an admin. Only functions whose Api
lists the `Bot` scheme accept it, so it grants knowledge and media calls only.
The internal collection `botCredentials` holds one document per deployment.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from google.cloud import firestore

from shared import clock, repos
from shared.auth import Caller
from shared.db import Repo, valid_id
from shared.errors import ApiError
from shared.models import Doc

PREFIX = "ocb"
SCHEME = "Bot"


class BotCredential(Doc):
    collection = "botCredentials"  # document id = deployment id
    deploymentId: str
    userId: str
    tokenHash: str
    createdAt: int
    revokedAt: int | None = None

    def to_api(self):
        return {"deploymentId": self.deploymentId, "userId": self.userId, "createdAt": self.createdAt,
                "revokedAt": self.revokedAt, "active": self.revokedAt is None}


credentials = Repo(BotCredential)


@dataclass
class BotCaller(Caller):
    """The deployment owner, as seen through the bot's credential: never an admin."""

    deployment_id: str = ""

    @property
    def is_admin(self) -> bool:
        return False


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue(deployment_id: str, user_id: str, tx: firestore.Transaction | None = None) -> str:
    """Create (or rotate) the deployment's credential; returns the token, which is not stored."""
    token = f"{PREFIX}.{deployment_id}.{secrets.token_urlsafe(32)}"
    credentials.set(BotCredential(_id=deployment_id, deploymentId=deployment_id, userId=user_id,
                                  tokenHash=_hash(token), createdAt=clock.now_ms()), tx)
    return token


def revoke(deployment_id: str, tx: firestore.Transaction | None = None) -> bool:
    """Revoke the deployment's credential; False if there was no active one."""
    cred = credentials.get(deployment_id, tx)
    if cred is None or cred.revokedAt is not None:
        return False
    credentials.update(deployment_id, {"revokedAt": clock.now_ms()}, tx)
    return True


def status(deployment_id: str) -> BotCredential | None:
    return credentials.get(deployment_id)


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthenticated", message, headers={"WWW-Authenticate": SCHEME})


def verify(token: str) -> BotCredential:
    prefix, _, rest = token.partition(".")
    deployment_id, _, secret = rest.rpartition(".")  # the secret (base64url) has no dots
    if prefix != PREFIX or not secret or not valid_id(deployment_id):  # an id Firestore refuses: not ours
        raise _unauthorized("not a bot credential")
    cred = credentials.get(deployment_id)
    if cred is None or not hmac.compare_digest(cred.tokenHash, _hash(token)):
        raise _unauthorized("unknown bot credential")
    if cred.revokedAt is not None:
        raise _unauthorized("bot credential revoked")
    deployment = repos.deployments.get(deployment_id)
    if deployment is None or deployment.userId != cred.userId:
        raise _unauthorized("the credential's deployment no longer exists")
    return cred


def authenticate(token: str, route) -> BotCaller:
    """`Api(schemes={"Bot": authenticate})`: the deployment owner as a non-admin caller."""
    cred = verify(token)
    if route.access == "admin":
        raise ApiError(403, "forbidden", "admins only")
    user = repos.users.get(cred.userId)
    if user is None:
        raise _unauthorized("the credential's owner no longer exists")
    if user.status == "suspended" and not route.allow_suspended:
        raise ApiError(403, "suspended", "this account is suspended")
    return BotCaller(user=user, deployment_id=cred.deploymentId)


def require_human(caller: Caller) -> None:
    """For routes a bot must not call (e.g. minting credentials)."""
    if isinstance(caller, BotCaller):
        raise ApiError(403, "forbidden", "bot credentials may not call this")
