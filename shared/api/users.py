"""`users`: the caller's own profile, and admin management of users.

`?include=deployments,subscription` on the admin reads adds, per user, their newest deployments
(at most INCLUDE_DEPLOYMENTS, `moreDeployments` says whether there are more) and their subscription:
one bounded query each per user, run concurrently (docs/COSTS.md, "Request costs").
"""
from __future__ import annotations

import contextvars
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated

from pydantic import Field, StringConstraints

from shared import accounts, db, repos
from shared.api.inputs import PageQuery, ShortText, Strict, Url
from shared.errors import Conflict
from shared.http import Api, Request, page_of, precondition
from shared.models import Deployment, Role, Subscription, User, UserStatus

api = Api("users", "Profiles and user administration")


class ProfileUpdate(Strict):
    name: ShortText | None = None
    pictureUrl: Url | None = None


class UserAdminUpdate(Strict):
    role: Role | None = None
    status: UserStatus | None = None


INCLUDE_DEPLOYMENTS = 10  # per user: a dashboard row, not an export
Include = Annotated[str, StringConstraints(pattern=r"^(deployments|subscription)(,(deployments|subscription))?$")]


class IncludeQuery(Strict):
    include: Include | None = Field(None, description="comma list: deployments, subscription")


class UserListQuery(PageQuery, IncludeQuery):
    role: Role | None = None
    status: UserStatus | None = None


class UserView(User):
    """A user; with `include`, their newest deployments and their subscription."""
    etag_ignores = (*User.etag_ignores, "deployments", "moreDeployments", "subscription")  # the user's own tag
    deployments: list[Deployment] | None = None
    moreDeployments: bool | None = Field(None, description=f"more than the {INCLUDE_DEPLOYMENTS} deployments shown")
    subscription: Subscription | None = None


def _related(user: User, include: set[str]) -> dict:
    out = {**user.to_api(), "deployments": None, "moreDeployments": None, "subscription": None}  # always sent
    if "deployments" in include:
        q = repos.deployments.query({"userId": user.id}, (("createdAt", "DESCENDING"),))
        deps = [repos.deployments.of(s) for s in q.limit(INCLUDE_DEPLOYMENTS + 1).stream()]
        out["deployments"] = [d.to_api() for d in deps[:INCLUDE_DEPLOYMENTS]]
        out["moreDeployments"] = len(deps) > INCLUDE_DEPLOYMENTS
    if "subscription" in include:
        sub = repos.subscriptions.first(userId=user.id)
        out["subscription"] = sub.to_api() if sub else None
    return out


def with_related(users: list[User], include: str | None) -> list[dict]:
    wanted = set((include or "").split(",")) - {""}
    if not wanted:
        return [{**u.to_api(), "deployments": None, "moreDeployments": None, "subscription": None} for u in users]
    with ThreadPoolExecutor(max_workers=8) as pool:  # each in a copy of this context: the request's budget
        return list(pool.map(lambda u: contextvars.copy_context().run(_related, u, wanted), users))


@api.route("GET", "/me", allow_suspended=True, response=User, etag=True)
def get_me(req: Request):
    """The caller's profile (also for suspended users)."""
    return req.caller.user


@db.transactional
def _update(tx, req: Request, user_id: str, fields: dict) -> User:
    """Read, compare with If-Match and write in one transaction (the profile, and admins' edits)."""
    user = repos.users.require(user_id, tx)
    precondition(req, user)
    if fields.get("role") == "user" and accounts.is_protected_admin(user):
        raise Conflict("configured_admin", "this admin is named in ADMIN_EMAILS: remove it there first")
    return repos.users.patch(user, fields, tx)


@api.route("PATCH", "/me", body=ProfileUpdate, response=User, etag=True)
def update_me(req: Request):
    """Change the caller's name or picture."""
    return _update(req, req.caller.id, req.body.changes())


@api.route("GET", "/", access="admin", query=UserListQuery, response=page_of(UserView))
def list_users(req: Request):
    """Admin: list users, newest first, filtered by role and/or status; `include=deployments,subscription`
    adds each user's newest deployments and subscription."""
    q = req.query
    equals = {k: v for k, v in (("role", q.role), ("status", q.status)) if v is not None}
    page = repos.users.page(equals, (("createdAt", "DESCENDING"),), q.limit, q.cursor)
    return {"items": with_related(page.items, q.include), "nextCursor": page.cursor}


@api.route("GET", "/{userId}", access="admin", query=IncludeQuery, response=UserView, etag=True)
def get_user(req: Request):
    """Admin: one user (`include=deployments,subscription` as in the list); its ETag is the user's own."""
    return UserView.model_validate(with_related([repos.users.require(req.params["userId"])], req.query.include)[0])


@api.route("PATCH", "/{userId}", access="admin", body=UserAdminUpdate, response=User, etag=True)
def update_user(req: Request):
    """Admin: change a user's role or status (never your own demotion or suspension)."""
    target = req.params["userId"]
    fields = req.body.changes()
    if target == req.caller.id and (fields.get("role", "admin") != "admin"
                                    or fields.get("status", "active") != "active"):
        raise Conflict("self_lockout", "an admin cannot demote or suspend itself")
    return _update(req, target, fields)
