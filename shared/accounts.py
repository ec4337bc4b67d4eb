"""Accounts: several sign-in identities for one user, and the admins named by configuration.

Linking. A user is found by `users.clerkId` (their first identity). A new identity (another Firebase
uid: e.g. Google after e-mail/password) whose token carries a *verified* e-mail (`email_verified`)
equal to the e-mail of an existing user that was verified too is linked to that user, so their
deployments, subscription, knowledge and media stay theirs. Never on an unverified e-mail on either
side: otherwise whoever first signed up with someone else's address, unverified, would receive that
person's later sign-ins (or the other way round). The link is the internal document
`userIdentities/{user_id_for(subject)}` = {userId, subject, email, linkedAt}; its id is derived from
the subject, so concurrent first calls of the new identity write one link. Several users with the
same verified e-mail (made before linking existed): the oldest wins.

Admins. ADMIN_EMAILS (shared/config.py) names e-mails whose verified owners are admins: the first
admins of an installation. They are made admin when they sign in, and an admin cannot demote them
(409 `configured_admin`): remove the address from the configuration first.
"""
from __future__ import annotations

from google.api_core import exceptions as gexc

from shared import clock, config, db, logs
from shared.models import User
from shared.repos import users as users_repo

log = logs.get("accounts")
LINKS = "userIdentities"
CANDIDATES = 10  # users read per e-mail when linking (same address on several old accounts)


def is_configured_admin(email: str, verified: bool) -> bool:
    return bool(verified and email) and email.strip().lower() in config.get().admin_emails


def _link_ref(subject: str):
    from shared.auth import user_id_for

    return db.client().collection(LINKS).document(user_id_for(subject))


def _by_verified_email(email: str) -> User | None:
    found: dict[str, User] = {}
    for variant in {email, email.strip().lower()}:
        for snap in users_repo.query({"email": variant}).limit(CANDIDATES).stream():
            user = users_repo.of(snap)
            if user.emailVerified:
                found[user.id] = user
    return min(found.values(), key=lambda u: (u.createdAt, u.id), default=None)


def linked_user(identity) -> User | None:
    """The user an identity not yet known by subject belongs to: its link, or a new link by verified
    e-mail; None when it is a new user."""
    ref = _link_ref(identity.subject)
    snap = ref.get()
    if snap.exists:
        return users_repo.get(snap.get("userId"))
    if not (identity.email_verified and identity.email):
        return None
    user = _by_verified_email(identity.email)
    if user is None:
        return None
    try:
        ref.create({"userId": user.id, "subject": identity.subject, "email": identity.email.lower(),
                    "linkedAt": clock.now_ms()})
        log.info("identity linked by verified e-mail", extra={"userId": user.id})
    except gexc.AlreadyExists:  # a concurrent first call linked it: follow that link
        return users_repo.get(ref.get().get("userId"))
    return user


def refresh(user: User, identity) -> dict:
    """Fields of `user` to update after this sign-in: the e-mail now verified, a configured admin."""
    fields: dict = {}
    same_email = identity.email and identity.email.strip().lower() == user.email.strip().lower()
    if same_email and identity.email_verified and not user.emailVerified:
        fields["emailVerified"] = True
    if user.role != "admin" and same_email and is_configured_admin(identity.email, identity.email_verified):
        fields["role"] = "admin"
        log.info("configured admin promoted", extra={"userId": user.id})
    return fields


def is_protected_admin(user: User) -> bool:
    """A configured admin (verified e-mail in ADMIN_EMAILS): no one demotes them through the API."""
    return is_configured_admin(user.email, user.emailVerified)
