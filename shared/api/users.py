"""`users`: the caller's own profile, and admin management of users."""
from __future__ import annotations

from shared import repos
from shared.api.inputs import PageQuery, ShortText, Strict, Url
from shared.errors import ApiError
from shared.http import Api, Request, page_of
from shared.models import Role, User, UserStatus

api = Api("users", "Profiles and user administration")


class ProfileUpdate(Strict):
    name: ShortText | None = None
    pictureUrl: Url | None = None


class UserAdminUpdate(Strict):
    role: Role | None = None
    status: UserStatus | None = None


class UserListQuery(PageQuery):
    role: Role | None = None
    status: UserStatus | None = None


@api.route("GET", "/me", allow_suspended=True, response=User)
def get_me(req: Request):
    """The caller's profile (also for suspended users)."""
    return req.caller.user


@api.route("PATCH", "/me", body=ProfileUpdate, response=User)
def update_me(req: Request):
    """Change the caller's name or picture."""
    fields = req.body.model_dump(exclude_none=True)
    if fields:
        repos.users.update(req.caller.id, fields)
    return repos.users.require(req.caller.id)


@api.route("GET", "/", access="admin", query=UserListQuery, response=page_of(User))
def list_users(req: Request):
    """Admin: list users, newest first, filtered by role and/or status."""
    q = req.query
    equals = {k: v for k, v in (("role", q.role), ("status", q.status)) if v is not None}
    return repos.users.page(equals, (("createdAt", "DESCENDING"),), q.limit, q.cursor)


@api.route("GET", "/{userId}", access="admin", response=User)
def get_user(req: Request):
    """Admin: one user."""
    return repos.users.require(req.params["userId"])


@api.route("PATCH", "/{userId}", access="admin", body=UserAdminUpdate, response=User)
def update_user(req: Request):
    """Admin: change a user's role or status (never your own demotion or suspension)."""
    target = req.params["userId"]
    fields = req.body.model_dump(exclude_none=True)
    if target == req.caller.id and (fields.get("role", "admin") != "admin" or fields.get("status", "active") != "active"):
        raise ApiError(409, "self_lockout", "an admin cannot demote or suspend itself")
    if fields:
        repos.users.update(target, fields)  # 404 if there is no such user
    return repos.users.require(target)
