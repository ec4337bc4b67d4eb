"""`users`: the caller's own profile, and admin management of users."""
from __future__ import annotations

from shared import db, repos
from shared.api.inputs import PageQuery, ShortText, Strict, Url
from shared.errors import ApiError
from shared.http import Api, Request, page_of, precondition
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


@api.route("GET", "/me", allow_suspended=True, response=User, etag=True)
def get_me(req: Request):
    """The caller's profile (also for suspended users)."""
    return req.caller.user


@db.transactional
def _update(tx, req: Request, user_id: str, fields: dict) -> User:
    """Read, compare with If-Match and write in one transaction."""
    user = repos.users.require(user_id, tx)
    precondition(req, user)
    if fields:
        repos.users.update(user_id, fields, tx)
    return user.model_copy(update=fields)


@api.route("PATCH", "/me", body=ProfileUpdate, response=User, etag=True)
def update_me(req: Request):
    """Change the caller's name or picture."""
    return _update(req, req.caller.id, req.body.model_dump(exclude_none=True))


@api.route("GET", "/", access="admin", query=UserListQuery, response=page_of(User))
def list_users(req: Request):
    """Admin: list users, newest first, filtered by role and/or status."""
    q = req.query
    equals = {k: v for k, v in (("role", q.role), ("status", q.status)) if v is not None}
    return repos.users.page(equals, (("createdAt", "DESCENDING"),), q.limit, q.cursor)


@api.route("GET", "/{userId}", access="admin", response=User, etag=True)
def get_user(req: Request):
    """Admin: one user."""
    return repos.users.require(req.params["userId"])


@api.route("PATCH", "/{userId}", access="admin", body=UserAdminUpdate, response=User, etag=True)
def update_user(req: Request):
    """Admin: change a user's role or status (never your own demotion or suspension)."""
    target = req.params["userId"]
    fields = req.body.model_dump(exclude_none=True)
    if target == req.caller.id and (fields.get("role", "admin") != "admin" or fields.get("status", "active") != "active"):
        raise ApiError(409, "self_lockout", "an admin cannot demote or suspend itself")
    return _update(req, target, fields)  # 404 if there is no such user
