"""`cmsPages`: public pages of the site, by slug; admins write them."""
from __future__ import annotations

import re

from google.api_core import exceptions as gexc
from pydantic import Field

from shared import clock, db, repos
from shared.api.inputs import SLUG_PATTERN, Flag, PageQuery, ShortText, Strict
from shared.errors import Invalid, not_found
from shared.http import Api, Request, page_of, precondition
from shared.models import CmsPage

api = Api("cmsPages", "CMS pages of the public site")
MAX_BODY_CHARS = 100_000
_slug = re.compile(SLUG_PATTERN)


class PageWrite(Strict):
    title: ShortText
    body: str = Field(max_length=MAX_BODY_CHARS, description="markdown")
    published: bool = False


class PageListQuery(PageQuery):
    published: Flag | None = None


def valid_slug(slug: str) -> str:
    if len(slug) > 100 or not _slug.match(slug):
        raise Invalid("invalid_slug", "slug must be lowercase letters, digits and single hyphens")
    return slug


@api.route("GET", "/", access="admin", query=PageListQuery, response=page_of(CmsPage))
def list_pages(req: Request):
    """Admin: all pages (drafts too), most recently updated first."""
    q = req.query
    equals = {} if q.published is None else {"published": q.published}
    return repos.cms_pages.page(equals, (("updatedAt", "DESCENDING"),), q.limit, q.cursor)


@api.route("GET", "/{slug}", access="public", response=CmsPage, etag=True)
def get_page(req: Request):
    """A published page; admins also see drafts."""
    page = repos.cms_pages.first(slug=req.params["slug"])
    if page is None or not (page.published or req.by_admin):
        raise not_found(f"page {req.params['slug']!r}")
    return page


def _upsert(doc_id: str, slug: str, body: PageWrite) -> tuple[CmsPage, bool]:
    """Create, or replace the fields a PUT carries, each one atomic write and no read-modify-write:
    concurrent PUTs of a page never contend (the last one wins, as PUT means), createdAt stays."""
    now = clock.now_ms()
    page = CmsPage(_id=doc_id, slug=slug, createdAt=now, updatedAt=now, **body.model_dump())
    try:
        return repos.cms_pages.create(page), True
    except gexc.AlreadyExists:
        repos.cms_pages.update(doc_id, {**body.model_dump(), "updatedAt": now})  # 404 if deleted meanwhile
        return repos.cms_pages.require(doc_id), False


@db.transactional
def _replace_if_match(tx, req: Request) -> CmsPage:
    """A PUT with If-Match: read, compare and write in one transaction (the page must exist)."""
    page = repos.cms_pages.first(tx, slug=req.params["slug"])
    precondition(req, page)
    assert page is not None  # with If-Match, a missing page failed the precondition
    return repos.cms_pages.patch(page, {**req.body.model_dump(), "updatedAt": clock.now_ms()}, tx)


@api.route("PUT", "/{slug}", access="admin", body=PageWrite, status=(200, 201), response=CmsPage, etag=True)
def put_page(req: Request):
    """Admin: create the page at this slug, or replace its title, body and published flag
    (with If-Match: only the page as read, 412 if it changed)."""
    slug = valid_slug(req.params["slug"])
    if req.if_match is not None:
        return _replace_if_match(req), 200
    imported = repos.cms_pages.first(slug=slug)  # pages imported from the old backend keep their ids
    page, created = _upsert(imported.id if imported else slug, slug, req.body)
    return page, (201 if created else 200)


@api.route("DELETE", "/{slug}", access="admin", status=204, etag=True)
@db.transactional
def delete_page(tx, req: Request):
    """Admin: delete a page."""
    page = repos.cms_pages.first(tx, slug=req.params["slug"])
    if page is None:
        raise not_found(f"page {req.params['slug']!r}")
    precondition(req, page)
    repos.cms_pages.delete(page.id, tx)
    return None
