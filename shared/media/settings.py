"""Configuration of the media domain (read once)."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from shared import config


@dataclass(frozen=True)
class Settings:
    bucket: str
    max_bytes: dict  # per media type
    upload_ttl_s: int
    download_ttl_s: int
    signing_key_file: str | None  # a service-account key; without it URLs are signed through IAM signBlob
    drive_backup: bool  # keep `driveUrl` (the bot backs media up to Google Drive)
    fetch_max_bytes: int  # POST /from-url holds the file in memory: at most this (and the type's bound)
    fetch_timeout_s: int  # the whole download, redirects included
    functions_url: str | None  # base of share links (`<it>/media/s/<token>.<ext>`); locally: the request's


def max_bytes() -> dict:
    """Per media type (also what the OpenAPI document says an upload's `size` may be)."""
    return {"image": config.env_int("MEDIA_MAX_IMAGE_BYTES", 20 * 2**20, lo=1, hi=2**30),
            "video": config.env_int("MEDIA_MAX_VIDEO_BYTES", 500 * 2**20, lo=1, hi=5 * 2**30)}


@lru_cache(maxsize=1)
def get() -> Settings:
    return Settings(
        bucket=config.env("MEDIA_BUCKET", required=True),
        max_bytes=max_bytes(),
        upload_ttl_s=config.env_int("MEDIA_UPLOAD_URL_TTL_S", 900, lo=60, hi=7 * 24 * 3600),
        download_ttl_s=config.env_int("MEDIA_DOWNLOAD_URL_TTL_S", 300, lo=10, hi=7 * 24 * 3600),
        signing_key_file=config.env("MEDIA_SIGNING_KEY_FILE"),
        drive_backup=config.env_choice("MEDIA_DRIVE_BACKUP", "off", ("on", "off")) == "on",
        fetch_max_bytes=config.env_int("MEDIA_FETCH_MAX_BYTES", 64 * 2**20, lo=1, hi=256 * 2**20),
        fetch_timeout_s=config.env_int("MEDIA_FETCH_TIMEOUT_S", 45, lo=1, hi=300),
        functions_url=(config.setting("FUNCTIONS_URL", config.https_url) or "").rstrip("/") or None,
    )


def reset() -> None:
    get.cache_clear()
