"""Per-deployment bot credentials: the OpenClaw bot on a deployment's VM calls
the `knowledge` and `media` functions with `Authorization: Bot <token>`.

One credential per deployment, always the same in both places it lives: the token in Secret
Manager (`oc-<deploymentId>-openclaw-bot-token`, the newest version is what the VM reads) and its
SHA-256 in Firestore (the token is 256 random bits, so a fast hash is enough; the internal
collection `botCredentials`, one document per deployment). `issue` (first issue and rotation,
from the deploy job or the owner's route), `revoke` and the deploy job's `ensure` write both:

- A writer first takes the credential's lease (a transaction on the Firestore document): one
  writer at a time per deployment, so two issues can never leave Secret Manager and Firestore
  holding different tokens. Firestore is written first (the new hash becomes current, the old one
  stays valid for OVERLAP_MS), then the new version goes to Secret Manager; if that fails, the
  Firestore change is undone and the call fails (the old token keeps working).
- Rotation does not break the running bot: the VM re-reads its token secret every 2 minutes
  (startup script), and the previous token is still accepted for OVERLAP_MS (10 minutes), so calls
  in flight, and calls made before the VM's next read, succeed.
- The deploy job never replaces a credential someone issued (`ensure`): it keeps the active one
  when Secret Manager holds it, waits while another writer holds the lease, and issues only when
  there is none (or it was revoked), conditionally on the document being unchanged since it looked.
- Revoking takes effect at once (no overlap) and deletes the token secret.

It acts as the deployment's owner and is never an admin. Only functions whose Api lists the
`Bot` scheme accept it: knowledge and media (every route), and costs (its summary only, through
`only_on`).
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass

from google.cloud import firestore

from shared import clock, db, repos
from shared.auth import Caller
from shared.db import Repo, valid_id
from shared.errors import Conflict, DomainError, Forbidden, Unauthenticated
from shared.models import Doc

PREFIX = "ocb"
SCHEME = "Bot"
TOKEN_KEY = "openclaw-bot-token"  # the secret's key name (shared/deploy/startup.py names it in the VM's config)
OVERLAP_MS = 10 * 60 * 1000  # after a rotation the previous token still works this long
LEASE_MS = 60_000  # a writer's hold on the credential (longer than its two calls' timeouts)
WAIT_S = 10.0  # how long an issue waits for another writer's lease before giving up (Busy: 409)


class BotCredential(Doc):
    collection = "botCredentials"  # document id = deployment id
    deploymentId: str
    userId: str
    tokenHash: str
    createdAt: int
    revokedAt: int | None = None
    previousHash: str | None = None  # the token before the last rotation ...
    previousValidUntil: int | None = None  # ... accepted until then (epoch ms)
    leaseId: str | None = None  # a writer (issue/revoke) holds the credential ...
    leaseUntil: int | None = None  # ... until then

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


class Busy(Exception):
    """Another writer holds the credential's lease."""


class Changed(Exception):
    """The credential is not what the caller expected any more (someone else issued or revoked)."""


def _secrets():
    from shared.deploy import secrets as sm  # lazily: Secret Manager's client only when writing

    return sm


def _held(cred: BotCredential | None, now: int) -> bool:
    return bool(cred and cred.leaseId and (cred.leaseUntil or 0) > now)


@db.transactional
def _take(tx, deployment_id: str, user_id: str, lease: str, expect: str | None) -> BotCredential | None:
    """Take the lease; `expect` (a tokenHash, "" for none/revoked) must match when given."""
    cred = credentials.get(deployment_id, tx)
    now = clock.now_ms()
    if _held(cred, now):
        raise Busy()
    if expect is not None:
        current = cred.tokenHash if cred is not None and cred.revokedAt is None else ""
        if current != expect:
            raise Changed()
    if cred is None:  # a placeholder that verifies nothing until the first token is committed
        credentials.create(BotCredential(_id=deployment_id, deploymentId=deployment_id, userId=user_id,
                                         tokenHash="", createdAt=now, revokedAt=now,
                                         leaseId=lease, leaseUntil=now + LEASE_MS), tx)
        return None
    credentials.update(deployment_id, {"leaseId": lease, "leaseUntil": now + LEASE_MS}, tx)
    return cred


@db.transactional
def _commit(tx, deployment_id: str, lease: str, fields: dict, release: bool = True) -> None:
    cred = credentials.get(deployment_id, tx)
    if cred is None or cred.leaseId != lease:
        raise Changed()  # our lease ran out and someone else took over: never write over them
    credentials.update(deployment_id, {**fields, **({"leaseId": None, "leaseUntil": None} if release else {})}, tx)


def _lease(deployment_id: str, user_id: str, expect: str | None, wait_s: float) -> tuple[str, BotCredential | None]:
    """Take the credential's lease, waiting up to wait_s for another writer's (polling with plain
    reads, so waiting writers do not contend with the holder's transactions)."""
    import random

    lease, deadline = uuid.uuid4().hex, time.monotonic() + wait_s
    while True:
        if not _held(credentials.get(deployment_id), clock.now_ms()):
            try:
                return lease, _take(deployment_id, user_id, lease, expect)
            except Busy:
                pass
            except Conflict:  # contention: lost the race for the lease
                pass
        if time.monotonic() >= deadline:
            raise Busy()
        time.sleep(0.05 + random.random() * 0.1)


def _finish(deployment_id: str, lease: str, fields: dict) -> None:
    """The last commit of a writer (it releases the lease): retried on contention."""
    for attempt in range(5):
        try:
            return _commit(deployment_id, lease, fields)
        except Conflict:  # contention
            if attempt == 4:
                raise
            time.sleep(0.05 * (attempt + 1))


def issue(deployment_id: str, user_id: str, *, expect: str | None = None, wait_s: float = WAIT_S) -> str:
    """Issue or rotate the deployment's credential; returns the token, which is stored only in
    Secret Manager (for the VM). The previous token stays valid for OVERLAP_MS. Raises Busy when
    another writer holds the credential, Changed when `expect` no longer matches."""
    lease, old = _lease(deployment_id, user_id, expect, wait_s)
    token = f"{PREFIX}.{deployment_id}.{secrets.token_urlsafe(32)}"
    now = clock.now_ms()
    before = old.model_dump(include={"tokenHash", "createdAt", "revokedAt", "previousHash", "previousValidUntil",
                                     "userId"}) if old else None
    active_old = old is not None and old.revokedAt is None and old.tokenHash
    try:
        _commit(deployment_id, lease, {
            "userId": user_id, "tokenHash": _hash(token), "createdAt": now, "revokedAt": None,
            "previousHash": old.tokenHash if active_old else None,
            "previousValidUntil": now + OVERLAP_MS if active_old else None},
            release=False)  # still ours until Secret Manager has it
        _secrets().put(deployment_id, TOKEN_KEY, token)
    except Exception:
        try:  # undo: the old token stays the credential (the VM still reads it)
            _finish(deployment_id, lease, before or {"tokenHash": "", "revokedAt": now})
        except (Changed, DomainError):
            pass  # the lease runs out by itself; the next writer finds the state as it is
        raise
    _finish(deployment_id, lease, {})
    return token


def revoke(deployment_id: str) -> bool:
    """Revoke the deployment's credential at once (no overlap) and delete the token the VM reads;
    False if there was no active one."""
    from google.api_core import exceptions as gexc

    cred = credentials.get(deployment_id)
    if cred is None or cred.revokedAt is not None:
        return False
    lease, cred = _lease(deployment_id, cred.userId, None, WAIT_S)
    if cred is None or cred.revokedAt is not None:
        _finish(deployment_id, lease, {})
        return False
    _finish(deployment_id, lease, {"revokedAt": clock.now_ms(), "previousHash": None, "previousValidUntil": None})
    try:
        _secrets().delete(deployment_id, TOKEN_KEY)
    except gexc.NotFound:
        pass
    return True


def ensure(deployment_id: str, user_id: str) -> bool:
    """The deploy job: make sure the deployment has an active credential whose token Secret Manager
    holds, without ever replacing one that was issued (by the owner or an earlier job). Returns
    True when it issued one. Raises Busy while another writer holds the credential."""
    from google.api_core import exceptions as gexc

    for _ in range(5):
        cred = credentials.get(deployment_id)
        now = clock.now_ms()
        if _held(cred, now):
            raise Busy()
        active = cred is not None and cred.revokedAt is None and bool(cred.tokenHash)
        if active:
            try:
                if hmac.compare_digest(_hash(_secrets().access(deployment_id, TOKEN_KEY)), cred.tokenHash):
                    return False  # the VM reads the active credential: keep it
            except gexc.NotFound:
                pass
        try:  # none, revoked, or one the VM cannot read (its secret is gone): issue, unless it changed
            issue(deployment_id, user_id, expect=cred.tokenHash if active else "", wait_s=0)
            return True
        except Changed:
            continue  # someone issued or revoked meanwhile: look again
    raise Busy()


def status(deployment_id: str) -> BotCredential | None:
    return credentials.get(deployment_id)


def _unauthorized(message: str) -> Unauthenticated:
    return Unauthenticated("unauthenticated", message, challenge=SCHEME)


def verify(token: str) -> BotCredential:
    prefix, _, rest = token.partition(".")
    deployment_id, _, secret = rest.rpartition(".")  # the secret (base64url) has no dots
    if prefix != PREFIX or not secret or not valid_id(deployment_id):  # an id Firestore refuses: not ours
        raise _unauthorized("not a bot credential")
    cred = credentials.get(deployment_id)
    if cred is None:
        raise _unauthorized("unknown bot credential")
    digest = _hash(token)
    current = bool(cred.tokenHash) and hmac.compare_digest(cred.tokenHash, digest)
    previous = bool(cred.previousHash) and hmac.compare_digest(cred.previousHash, digest) \
        and (cred.previousValidUntil or 0) > clock.now_ms()
    if not (current or previous):
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
        raise Forbidden("forbidden", "admins only")
    user = repos.users.get(cred.userId)
    if user is None:
        raise _unauthorized("the credential's owner no longer exists")
    if user.status == "suspended" and not route.allow_suspended:
        raise Forbidden("suspended", "this account is suspended")
    return BotCaller(user=user, deployment_id=cred.deploymentId)


def only_on(*paths: str):
    """A `schemes` entry accepting the credential on these route paths of the Api only."""
    def check(token: str, route) -> BotCaller:
        caller = authenticate(token, route)
        if route.path not in paths:
            raise Forbidden("forbidden", "bot credentials may not call this")
        return caller
    return check


def require_human(caller: Caller) -> None:
    """For routes a bot must not call (e.g. minting credentials)."""
    if isinstance(caller, BotCaller):
        raise Forbidden("forbidden", "bot credentials may not call this")
