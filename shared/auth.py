"""Who is calling: bearer token -> identity provider subject -> `users` document.

Providers: Firebase ID tokens (shared/firebase_tokens.py) or Clerk session tokens (RS256,
the issuer's JWKS). The subject is stored as `users.clerkId`. The first
authenticated call creates the user; later calls refresh `lastSeenAt` at most
once a minute. Unsigned tokens (the Auth emulator's) only with APP_ENV local or deploy-check.
Google service accounts (Cloud Tasks, Cloud Scheduler) are identified by shared/google_identity.py.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import lru_cache

import flask
from google.api_core import exceptions as gexc

from shared import clock, config, logs
from shared.errors import Forbidden, Unauthenticated, Unavailable
from shared.models import User
from shared.repos import users as users_repo

log = logs.get("auth")
SEEN_EVERY_MS = 60_000


@dataclass(frozen=True)
class Identity:
    subject: str
    email: str
    name: str
    picture: str
    email_verified: bool = False  # the provider's `email_verified` claim


@dataclass
class Caller:
    user: User
    acted_for: set[str] = field(default_factory=set)  # other users whose resources this request reached (audit)

    @property
    def id(self) -> str:
        return self.user.id

    @property
    def is_admin(self) -> bool:
        return self.user.role == "admin"

    def can_access(self, owner_id: str) -> bool:
        if owner_id == self.user.id:
            return True
        if self.is_admin:
            self.acted_for.add(owner_id)  # an admin on another user's resource: the audit log names them
            return True
        return False


def _unauthorized(message: str) -> Unauthenticated:
    return Unauthenticated("unauthenticated", message, challenge="Bearer")


def _header_alg(token: str) -> str | None:
    import jwt

    try:
        return jwt.get_unverified_header(token).get("alg")
    except jwt.InvalidTokenError:
        return None


def _verify_firebase(token: str) -> Identity:
    from shared import firebase_tokens

    try:
        claims = firebase_tokens.verify(token, config.get().project)
    except firebase_tokens.KeysUnavailable:  # Google's keys out of reach: not the caller's fault
        raise Unavailable("unavailable", "the token signing keys could not be fetched; try again",
                          retry_after=5) from None
    except firebase_tokens.InvalidToken as exc:
        raise _unauthorized(f"invalid token: {exc}") from None
    return Identity(claims["sub"], claims.get("email", ""), claims.get("name", ""), claims.get("picture", ""),
                    claims.get("email_verified") is True)


@lru_cache(maxsize=1)
def _jwks_client():
    import jwt

    return jwt.PyJWKClient(config.get().clerk_jwks_url, cache_keys=True, lifespan=3600, timeout=5)


def _verify_clerk(token: str) -> Identity:
    import jwt

    cfg = config.get()
    try:
        key = _jwks_client().get_signing_key_from_jwt(token).key
        claims = jwt.decode(token, key, algorithms=["RS256"], issuer=cfg.clerk_issuer,
                            options={"require": ["exp", "iat", "sub", "iss"]}, leeway=5)
    except jwt.PyJWKClientConnectionError:  # Clerk's key set out of reach (5 s timeout): try again
        raise Unavailable("unavailable", "the token signing keys could not be fetched; try again",
                          retry_after=5) from None
    except jwt.PyJWKClientError as exc:
        raise _unauthorized(f"signing key not found: {exc}") from None
    except jwt.InvalidTokenError as exc:
        raise _unauthorized(f"invalid token: {exc}") from None
    azp = claims.get("azp")
    if azp and cfg.cors_origins and "*" not in cfg.cors_origins and azp.rstrip("/") not in cfg.cors_origins:
        raise _unauthorized("token issued for another origin")
    return Identity(claims["sub"], claims.get("email", ""), claims.get("name", ""), claims.get("picture", ""),
                    claims.get("email_verified") is True)


def verify(token: str) -> Identity:
    cfg = config.get()
    if _header_alg(token) in (None, "none") and not cfg.emulators_allowed:
        # the Auth emulator issues unsigned tokens only
        raise _unauthorized("unsigned tokens are accepted only with the Auth emulator (APP_ENV local or deploy-check)")
    if cfg.auth_provider == "clerk":
        return _verify_clerk(token)
    return _verify_firebase(token)


def user_id_for(subject: str) -> str:
    """Document id of a user created here: derived from the subject, so two first calls race to one create."""
    return "u_" + hashlib.sha256(subject.encode()).hexdigest()[:24]


def load_user(identity: Identity) -> User:
    """The caller's user: by subject, else by a linked identity (shared/accounts.py: a new sign-in
    method with the verified e-mail of an existing user), else a new user."""
    from shared import accounts

    user = users_repo.first(clerkId=identity.subject)  # imported users keep their old ids
    if user is None:
        user = accounts.linked_user(identity)
    now = clock.now_ms()
    if user is None:
        admin = accounts.is_configured_admin(identity.email, identity.email_verified)
        user = User(_id=user_id_for(identity.subject), clerkId=identity.subject, email=identity.email,
                    emailVerified=identity.email_verified, name=identity.name, pictureUrl=identity.picture,
                    role="admin" if admin else "user", lastSeenAt=now, createdAt=now)
        try:
            users_repo.create(user)
            log.info("user created", extra={"userId": user.id, "admin": admin})
        except gexc.AlreadyExists:
            user = users_repo.require(user.id)
        return user
    fields = accounts.refresh(user, identity)
    if now - user.lastSeenAt >= SEEN_EVERY_MS:
        fields["lastSeenAt"] = now
    if fields:
        users_repo.update(user.id, fields)
        user = user.model_copy(update=fields)
    return user


def authenticate(request: flask.Request, access: str, allow_suspended: bool) -> Caller | None:
    header = request.headers.get("Authorization", "")
    if not header:
        if access == "public":
            return None
        raise _unauthorized("sign in: send Authorization: Bearer <token>")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("Authorization must be 'Bearer <token>'")
    caller = Caller(load_user(verify(token.strip())))
    if caller.user.status == "suspended" and not allow_suspended:
        raise Forbidden("suspended", "this account is suspended")
    if access == "admin" and not caller.is_admin:
        raise Forbidden("forbidden", "admins only")
    return caller
