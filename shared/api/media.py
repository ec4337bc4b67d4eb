"""`media`: generated images and videos of the caller. The file goes straight to
Cloud Storage through a signed upload URL; registering it then checks the stored
object (type and size) and records it. Accepts `Authorization: Bot <token>`."""
from __future__ import annotations

import re
from typing import Annotated

from google.api_core import exceptions as gexc
from pydantic import Field, StringConstraints, model_validator

from shared import bot_credentials, clock, repos
from shared.api.inputs import PageQuery, Strict, Url
from shared.errors import ApiError, not_found
from shared.http import Api, Reply, Request, page_of
from shared.media import settings, storage
from shared.models import Media, MediaType

api = Api("media", "Generated images and videos in Cloud Storage",
          schemes={bot_credentials.SCHEME: bot_credentials.authenticate})

MimeType = Annotated[str, StringConstraints(pattern=r"^(image|video)/[a-z0-9][a-z0-9.+-]{0,99}$")]


def _check_type(type_: str, mime: str) -> None:
    if not mime.startswith(type_ + "/"):
        raise ValueError(f"mimeType {mime} is not an {type_}/* type")


class UploadBody(Strict):
    type: MediaType
    mimeType: MimeType
    size: int = Field(ge=1, description="bytes the upload will have at most")

    @model_validator(mode="after")
    def _bounded(self):
        _check_type(self.type, self.mimeType)
        return self


class RegisterBody(Strict):
    storageId: str = Field(min_length=1, max_length=300)
    type: MediaType
    mimeType: MimeType
    prompt: str = Field("", max_length=8000)
    driveUrl: Url | None = None

    @model_validator(mode="after")
    def _bounded(self):
        _check_type(self.type, self.mimeType)
        return self


class ListQuery(PageQuery):
    type: MediaType | None = None


# responses
class Upload(Reply):
    uploadId: str
    storageId: str = Field(description="register the upload under this id once the PUT succeeded")
    uploadUrl: str
    method: str
    headers: dict[str, str] = Field(description="send exactly these headers with the PUT")
    expiresAt: int


class MediaWithDownload(Media):
    downloadUrl: str
    downloadExpiresAt: int


def _object_name(user_id: str, upload_id: str) -> str:
    return f"media/{user_id}/{upload_id}"


@api.route("POST", "/uploads", body=UploadBody, status=201, response=Upload)
def create_upload(req: Request):
    """A signed URL to PUT one image or video into Cloud Storage (then register it)."""
    b = req.body
    limit = settings.get().max_bytes[b.type]
    if b.size > limit:
        raise ApiError(422, "too_large", f"an {b.type} may have at most {limit} bytes")
    upload_id = repos.media.new_id()
    name = _object_name(req.caller.id, upload_id)
    signed = storage.upload_url(name, b.mimeType, b.size)
    return {"uploadId": upload_id, "storageId": name, "uploadUrl": signed.url, "method": signed.method,
            "headers": signed.headers, "expiresAt": signed.expires_at}


@api.route("POST", "/", body=RegisterBody, status=201, response=Media)
def register(req: Request):
    """Record an uploaded object; its stored type and size are checked first."""
    b = req.body
    m = re.fullmatch(r"media/([^/]+)/([A-Za-z0-9]{1,64})", b.storageId)
    if m is None or m.group(1) != req.caller.id:
        raise ApiError(403, "forbidden", "storageId is not one of your uploads")
    found = storage.stat(b.storageId)
    if found is None:
        raise ApiError(409, "not_uploaded", "nothing stored under storageId: PUT the file to its uploadUrl first")
    size, stored_type = found
    limit = settings.get().max_bytes[b.type]
    if stored_type != b.mimeType or size > limit or size == 0:
        storage.delete(b.storageId)  # an upload that broke the bounds is not kept
        raise ApiError(422, "upload_rejected",
                       f"stored object is {stored_type or 'untyped'} of {size} bytes; expected {b.mimeType}, "
                       f"1..{limit} bytes")
    media = Media(_id=m.group(2), userId=req.caller.id, type=b.type, prompt=b.prompt, storageId=b.storageId,
                  driveUrl=b.driveUrl if settings.get().drive_backup else None, mimeType=b.mimeType,
                  createdAt=clock.now_ms())
    try:
        repos.media.create(media)
    except gexc.AlreadyExists:
        raise ApiError(409, "already_registered", "this upload is already registered") from None
    return media


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
    repos.media.delete(media.id)
    return None
