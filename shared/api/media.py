"""`media`: generated images and videos of the caller. The file goes straight to
Cloud Storage through a signed upload URL; registering it then checks the stored
object (type and size) and records it. Or the function fetches it from a URL (the bot's
image and video providers answer with one) through shared/outbound.py. A share link gives one
item a stable public URL. Accepts `Authorization: Bot <token>`."""
from __future__ import annotations

import re
from typing import Annotated, cast

import flask
from google.api_core import exceptions as gexc
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from shared import bot_credentials, clock, outbound, repos
from shared.api.inputs import OutboundUrl, PageQuery, Strict, Url
from shared.errors import Conflict, Forbidden, Invalid, UpstreamFailed, not_found
from shared.http import Api, Request, page_of
from shared.media import settings, shares, sniff, storage
from shared.models import Media, MediaType

api = Api("media", "Generated images and videos in Cloud Storage",
          schemes={bot_credentials.SCHEME: bot_credentials.authenticate})

MimeType = Annotated[str, StringConstraints(pattern=r"^(image|video)/[a-z0-9][a-z0-9.+-]{0,99}$")]


def _check_type(type_: str, mime: str) -> None:
    if not mime.startswith(type_ + "/"):
        raise ValueError(f"mimeType {mime} is not an {type_}/* type")


# the same rule in the OpenAPI document: an image's mimeType is image/*, a video's video/*
TYPE_MATCHES_MIME = ConfigDict(json_schema_extra={"oneOf": [
    {"properties": {"type": {"const": t}, "mimeType": {"pattern": f"^{t}/"}}} for t in ("image", "video")]})


def _upload_schema(schema: dict, cls) -> None:
    """An upload's rules in the document: the mime type matches the type, the size its limit (settings)."""
    limits = settings.max_bytes()
    schema["oneOf"] = [{"properties": {"type": {"const": t}, "mimeType": {"pattern": f"^{t}/"},
                                       "size": {"maximum": limits[t]}}} for t in ("image", "video")]


class UploadBody(Strict):
    model_config = ConfigDict(json_schema_extra=_upload_schema)
    type: MediaType
    mimeType: MimeType
    size: int = Field(ge=1, description="bytes the upload will have at most")

    @model_validator(mode="after")
    def _bounded(self):
        _check_type(self.type, self.mimeType)
        return self


class RegisterBody(Strict):
    model_config = TYPE_MATCHES_MIME
    storageId: str = Field(min_length=1, max_length=300)
    type: MediaType
    mimeType: MimeType
    prompt: str = Field("", max_length=8000)
    driveUrl: Url | None = None

    @model_validator(mode="after")
    def _bounded(self):
        _check_type(self.type, self.mimeType)
        return self


class FromUrlBody(Strict):
    model_config = TYPE_MATCHES_MIME
    url: OutboundUrl = Field(description="https URL of the file (e.g. a provider's result)")
    type: MediaType
    mimeType: MimeType | None = Field(None, description="if given, the file must be of exactly this type")
    prompt: str = Field("", max_length=8000)
    driveUrl: Url | None = None

    @model_validator(mode="after")
    def _bounded(self):
        if self.mimeType:
            _check_type(self.type, self.mimeType)
        return self


class ListQuery(PageQuery):
    type: MediaType | None = None


# responses
class Upload(BaseModel):
    uploadId: str
    storageId: str = Field(description="register the upload under this id once the PUT succeeded")
    uploadUrl: str
    method: str
    headers: dict[str, str] = Field(description="send exactly these headers with the PUT")
    expiresAt: int


class MediaWithDownload(Media):
    downloadUrl: str
    downloadExpiresAt: int


class ShareLink(BaseModel):
    mediaId: str
    url: str = Field(description="public, stable until revoked; redirects to a short-lived download URL")
    createdAt: int


def _object_name(user_id: str, upload_id: str) -> str:
    return f"media/{user_id}/{upload_id}"


@api.route("POST", "/uploads", body=UploadBody, status=201, response=Upload, idempotent=True)
def create_upload(req: Request):
    """A signed URL to PUT one image or video into Cloud Storage (then register it)."""
    b = req.body
    limit = settings.get().max_bytes[b.type]
    if b.size > limit:
        raise Invalid("too_large", f"an {b.type} may have at most {limit} bytes")
    upload_id = repos.media.new_id()
    name = _object_name(req.caller.id, upload_id)
    signed = storage.upload_url(name, b.mimeType, b.size)
    return {"uploadId": upload_id, "storageId": name, "uploadUrl": signed.url, "method": signed.method,
            "headers": signed.headers, "expiresAt": signed.expires_at}


@api.route("POST", "/", body=RegisterBody, status=201, response=Media, idempotent=True)
def register(req: Request):
    """Record an uploaded object; its stored type and size are checked first."""
    b = req.body
    m = re.fullmatch(r"media/([^/]+)/([A-Za-z0-9]{1,64})", b.storageId)
    if m is None or m.group(1) != req.caller.id:
        raise Forbidden("forbidden", "storageId is not one of your uploads")
    found = storage.stat(b.storageId)
    if found is None:
        raise Conflict("not_uploaded", "nothing stored under storageId: PUT the file to its uploadUrl first")
    size, stored_type = found
    limit = settings.get().max_bytes[b.type]
    if stored_type != b.mimeType or size > limit or size == 0:
        storage.delete(b.storageId)  # an upload that broke the bounds is not kept
        raise Invalid("upload_rejected",
                      f"stored object is {stored_type or 'untyped'} of {size} bytes; expected {b.mimeType}, "
                      f"1..{limit} bytes")
    return _record(req, m.group(2), b.storageId, b.type, b.mimeType, b.prompt, b.driveUrl)


def _record(req: Request, media_id: str, storage_id: str, type_: str, mime: str, prompt: str,
            drive_url: str | None) -> Media:
    media = Media(_id=media_id, userId=req.caller.id, type=cast(MediaType, type_), prompt=prompt, storageId=storage_id,
                  driveUrl=drive_url if settings.get().drive_backup else None, mimeType=mime,
                  createdAt=clock.now_ms())
    try:
        repos.media.create(media)
    except gexc.AlreadyExists:
        raise Conflict("already_registered", "this upload is already registered") from None
    return media


def _fetch(url: str, type_: str) -> tuple[bytes, str]:
    """The file at `url` (guarded: shared/outbound.py) and the Content-Type it was served with."""
    s = settings.get()
    limit = min(s.max_bytes[type_], s.fetch_max_bytes)
    try:
        got = outbound.request("GET", url, headers={"Accept": f"{type_}/*"}, max_bytes=limit,
                               timeout_s=s.fetch_timeout_s, allow_http=True)  # http: the local stack only
    except outbound.UnsafeUrl as exc:
        raise Invalid("unsafe_url", f"url refused: {exc.reason}") from None
    except outbound.TooLarge:
        raise Invalid("too_large", f"an {type_} fetched from a URL may have at most {limit} bytes") from None
    except outbound.FetchFailed as exc:
        raise UpstreamFailed("fetch_failed", f"could not fetch url: {exc.reason}") from None
    if not 200 <= got.status < 300:  # the provider's 4xx: the URL is wrong or expired, retrying will not help
        kind = Invalid if 400 <= got.status < 500 else UpstreamFailed
        raise kind("fetch_failed", f"url answered HTTP {got.status}")
    return got.body, got.headers.get("content-type", "")


@api.route("POST", "/from-url", body=FromUrlBody, status=201, response=Media)
def from_url(req: Request):
    """Fetch an image or video from a URL into Cloud Storage and record it (the bot's providers answer with URLs)."""
    b = req.body
    data, served = _fetch(b.url, b.type)
    try:
        mime = sniff.media_type(b.type, b.mimeType, served, data)
    except ValueError as exc:
        raise Invalid("wrong_content_type", str(exc)) from None
    media_id = repos.media.new_id()
    name = _object_name(req.caller.id, media_id)
    storage.put(name, data, mime)
    try:
        return _record(req, media_id, name, b.type, mime, b.prompt, b.driveUrl)
    except BaseException:
        storage.delete(name)  # no object without its record
        raise


@api.route("GET", "/", query=ListQuery, response=page_of(Media))
def list_media(req: Request):
    """The caller's media, newest first, optionally only images or videos."""
    equals = {"userId": req.caller.id}
    if req.query.type:
        equals["type"] = req.query.type
    return repos.media.page(equals, (("createdAt", "DESCENDING"),), req.query.limit, req.query.cursor)


def _owned(req: Request) -> Media:
    media = repos.media.get(req.params["mediaId"])
    if media is None or not req.caller.can_access(media.userId):
        raise not_found("media")
    return media


@api.route("GET", "/{mediaId}", response=MediaWithDownload)
def get_media(req: Request):
    """One item with a short-lived signed download URL."""
    media = _owned(req)
    signed = storage.download_url(media.storageId)
    return {**media.to_api(), "downloadUrl": signed.url, "downloadExpiresAt": signed.expires_at}


@api.route("DELETE", "/{mediaId}", status=204)
def delete_media(req: Request):
    """Delete the item and its Cloud Storage object. Object first: if removing the record then fails,
    deleting again finishes the job; the other order could orphan an object nothing points to."""
    media = _owned(req)
    storage.delete(media.storageId)
    shares.revoke(media.id)  # before the record: a retry after a failure here still finds the item
    repos.media.delete(media.id)
    return None


def _share_link(req: Request, share: shares.MediaShare) -> dict:
    base = settings.get().functions_url
    base = f"{base}/media" if base else req.raw.url_root.rstrip("/")  # locally: where this request came in
    return {"mediaId": share.mediaId, "url": f"{base}/s/{share.token}.{share.ext}", "createdAt": share.createdAt}


@api.route("POST", "/{mediaId}/share", status=(201, 200), response=ShareLink)
def share(req: Request):
    """A public link to the item (with its file extension) for social tools; the same link until revoked."""
    share, created = shares.ensure(_owned(req))
    return _share_link(req, share), (201 if created else 200)


@api.route("DELETE", "/{mediaId}/share", status=204)
def unshare(req: Request):
    """Revoke the item's public link at once."""
    if not shares.revoke(_owned(req).id):
        raise not_found("share link")
    return None


@api.route("GET", "/s/{file}", access="public", status=302)
def open_share(req: Request):
    """Public: a share link redirects (302) to a fresh short-lived signed download URL; revoked or deleted: 404."""
    share = shares.find(req.params["file"])
    media = repos.media.get(share.mediaId) if share else None
    if media is None:
        raise not_found("shared media")
    signed = storage.download_url(media.storageId)
    # no-store: the signed URL expires, so a cached redirect would soon point nowhere
    return flask.Response(status=302, headers={"Location": signed.url, "Cache-Control": "no-store",
                                               "Referrer-Policy": "no-referrer"})
