"""`navLinks`: links of the site's header, footer and sidebar; admins write them."""
from __future__ import annotations

from pydantic import Field

from shared import db, repos
from shared.api.inputs import Flag, Href, ShortText, Strict
from shared.errors import Forbidden, Invalid, not_found
from shared.http import Api, Request, list_of, precondition
from shared.models import NavLink, NavSection

api = Api("navLinks", "Navigation links of the public site")
ORDER = (("sortOrder", "ASCENDING"),)


class LinkCreate(Strict):
    label: ShortText
    href: Href
    section: NavSection
    placement: str = Field("", max_length=100)
    visible: bool = True
    sortOrder: int = Field(0, ge=0, le=100_000)


class LinkUpdate(Strict):
    label: ShortText | None = None
    href: Href | None = None
    section: NavSection | None = None
    placement: str | None = Field(None, max_length=100)
    visible: bool | None = None
    sortOrder: int | None = Field(None, ge=0, le=100_000)


class LinkQuery(Strict):
    section: NavSection
    all: Flag = Field(False, description="admin: include hidden links")


class Reorder(Strict):
    section: NavSection
    ids: list[str] = Field(min_length=1, max_length=200, description="every link of the section, in the new order")


@api.route("GET", "/", access="public", query=LinkQuery, response=list_of(NavLink))
def list_links(req: Request):
    """Visible links of a section by sortOrder (admins may ask for hidden ones too)."""
    q = req.query
    if q.all:
        if not req.by_admin:
            raise Forbidden("forbidden", "only admins see hidden links")
        return {"items": repos.nav_links.all({"section": q.section}, ORDER)}
    return {"items": repos.nav_links.all({"section": q.section, "visible": True}, ORDER)}


@api.route("POST", "/", access="admin", body=LinkCreate, status=201, response=NavLink, idempotent=True)
def create_link(req: Request):
    """Admin: add a link."""
    return repos.nav_links.create(NavLink(_id=repos.nav_links.new_id(), **req.body.model_dump()))


@db.transactional
def _reorder(tx, body: Reorder) -> None:
    current = {link.id for link in repos.nav_links.all({"section": body.section}, ORDER, tx=tx)}
    if len(set(body.ids)) != len(body.ids) or set(body.ids) != current:
        raise Invalid("invalid_order", "ids must list every link of the section exactly once",
                      {"expected": sorted(current)})
    for n, link_id in enumerate(body.ids):
        repos.nav_links.update(link_id, {"sortOrder": n * 10}, tx)


@api.route("POST", "/reorder", access="admin", body=Reorder, response=list_of(NavLink))
def reorder_links(req: Request):
    """Admin: set the order of a section's links in one transaction."""
    _reorder(req.body)
    return {"items": repos.nav_links.all({"section": req.body.section}, ORDER)}


@api.route("GET", "/{linkId}", access="public", response=NavLink, etag=True)
def get_link(req: Request):
    """One visible link (admins also see hidden ones)."""
    link = repos.nav_links.get(req.params["linkId"])
    if link is None or not (link.visible or req.by_admin):
        raise not_found(f"link {req.params['linkId']!r}")
    return link


def _link(tx, req: Request) -> NavLink:
    link = repos.nav_links.require(req.params["linkId"], tx)
    precondition(req, link)
    return link


@api.route("PATCH", "/{linkId}", access="admin", body=LinkUpdate, response=NavLink, etag=True)
@db.transactional
def update_link(tx, req: Request):
    """Admin: change a link."""
    return repos.nav_links.patch(_link(tx, req), req.body.changes(), tx)


@api.route("DELETE", "/{linkId}", access="admin", status=204, etag=True)
@db.transactional
def delete_link(tx, req: Request):
    """Admin: remove a link."""
    repos.nav_links.delete(_link(tx, req).id, tx)
