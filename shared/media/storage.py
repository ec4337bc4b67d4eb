"""Cloud Storage for media: V4 signed upload/download URLs, object metadata, delete.

Signing: with MEDIA_SIGNING_KEY_FILE the URL is signed with that service-account
key; otherwise (Cloud Functions, no key file) through the IAM signBlob API as the
runtime service account, which needs roles/iam.serviceAccountTokenCreator on itself.
STORAGE_EMULATOR_HOST points the client (and the signed URLs) at the local stand-in.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache

from google.api_core import exceptions as gexc
from google.cloud import storage  # type: ignore[attr-defined]  # no type information

from shared import config, faults
from shared.media import settings

CALL_TIMEOUT_S = 20.0  # one metadata call; the budget cuts it shorter near the deadline


@lru_cache(maxsize=1)
def _client() -> storage.Client:
    return storage.Client(project=config.get().project)


def _bucket() -> storage.Bucket:
    return _client().bucket(settings.get().bucket)


def _signing() -> dict:
    key_file = settings.get().signing_key_file
    if key_file:
        return {"credentials": _key_credentials(key_file)}
    import google.auth
    import google.auth.transport.requests

    creds, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    creds.refresh(google.auth.transport.requests.Request())
    email = creds.service_account_email  # type: ignore[attr-defined]  # Compute's and service accounts' have it
    return {"service_account_email": email, "access_token": creds.token}


@lru_cache(maxsize=1)
def _key_credentials(path: str):
    from google.oauth2 import service_account

    return service_account.Credentials.from_service_account_file(path)


@dataclass
class SignedUrl:
    url: str
    method: str
    headers: dict[str, str]  # the client must send exactly these
    expires_at: int  # epoch ms


def _expiry(ttl_s: int) -> tuple[dt.timedelta, int]:
    now = dt.datetime.now(dt.timezone.utc)
    return dt.timedelta(seconds=ttl_s), int((now.timestamp() + ttl_s) * 1000)


def upload_url(name: str, content_type: str, max_bytes: int) -> SignedUrl:
    """A PUT URL for exactly this content type; Cloud Storage refuses bodies over max_bytes."""
    ttl, expires = _expiry(settings.get().upload_ttl_s)
    headers = {"Content-Type": content_type, "x-goog-content-length-range": f"0,{max_bytes}"}
    url = _bucket().blob(name).generate_signed_url(
        version="v4", method="PUT", expiration=ttl, content_type=content_type,
        headers={"x-goog-content-length-range": headers["x-goog-content-length-range"]}, **_signing())
    return SignedUrl(url, "PUT", headers, expires)


def download_url(name: str) -> SignedUrl:
    ttl, expires = _expiry(settings.get().download_ttl_s)
    url = _bucket().blob(name).generate_signed_url(version="v4", method="GET", expiration=ttl, **_signing())
    return SignedUrl(url, "GET", {}, expires)


def stat(name: str) -> tuple[int, str] | None:
    """(size, content type) of the object, or None if there is none."""
    blob = _bucket().get_blob(name, timeout=faults.timeout(CALL_TIMEOUT_S, "Cloud Storage"),
                              retry=faults.retry(CALL_TIMEOUT_S))
    return None if blob is None else (int(blob.size or 0), blob.content_type or "")


def delete(name: str) -> None:
    try:
        # retried like the library's DEFAULT_RETRY would (deleting a named object is idempotent), within the budget
        _bucket().blob(name).delete(timeout=faults.timeout(CALL_TIMEOUT_S, "Cloud Storage"),
                                    retry=faults.retry(CALL_TIMEOUT_S))
    except gexc.NotFound:
        pass  # already gone: deleting is idempotent


UPLOAD_TIMEOUT_S = 60.0  # one object of at most MEDIA_FETCH_MAX_BYTES


def put(name: str, data: bytes, content_type: str) -> None:
    """Store `data` as a new object (never over an existing one: if_generation_match=0). One
    request (the library's single-shot upload below its 8 MiB chunk size; resumable above), retried
    on transient errors since the precondition makes a repeat harmless."""
    blob = _bucket().blob(name)
    try:
        blob.upload_from_string(data, content_type=content_type, if_generation_match=0,
                                timeout=faults.timeout(UPLOAD_TIMEOUT_S, "Cloud Storage"),
                                retry=faults.retry(UPLOAD_TIMEOUT_S))
    except gexc.PreconditionFailed:
        # names are fresh ids: an object already there is this upload's own earlier, retried attempt
        if stat(name) != (len(data), content_type):
            raise
