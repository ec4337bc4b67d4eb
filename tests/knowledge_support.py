"""Fixtures of the knowledge and media tests: the Cloud Storage stand-in and the
OpenAI-format embeddings server (started once, on top of the session stack),
and helpers for deployments and bot credentials."""
from __future__ import annotations

import os

import httpx
import pytest


def reset_caches() -> None:
    from shared import embeddings, outbound
    from shared.knowledge import settings as kb_settings
    from shared.media import settings as media_settings
    from shared.media import storage

    kb_settings.reset()
    media_settings.reset()
    for cached in (embeddings.settings, embeddings.get, embeddings.for_version, storage._client, outbound.settings):
        cached.cache_clear()


@pytest.fixture(scope="session")
def kb_stack(stack):
    stack.storage()
    stack.embeddings()
    stack.secrets()  # bot credentials: the token the VM reads lives in Secret Manager
    os.environ["MEDIA_MAX_IMAGE_BYTES"] = "4096"  # small bounds keep the bound checks cheap
    os.environ["MEDIA_MAX_VIDEO_BYTES"] = "65536"
    os.environ["OUTBOUND_ALLOW_LOOPBACK"] = "on"  # media from a URL: the files are served on 127.0.0.1
    stack.apply_env()
    reset_caches()
    yield stack


@pytest.fixture
def kb(kb_stack, api, callers):
    """`api` with the stand-ins up and the storage bucket emptied."""
    httpx.get(f"{kb_stack.env['STORAGE_EMULATOR_HOST']}/wipe?keep-buckets=true").raise_for_status()
    return api


def make_deployment(user_id: str, dep_id: str = "dep1") -> str:
    from shared import clock, repos
    from shared.models import Deployment

    repos.deployments.set(Deployment(_id=dep_id, userId=user_id, gcpProject="p", zone="us-central1-a",
                                     vmName=f"vm-{dep_id}", status="running", botName="Bot", primaryModel="m",
                                     createdAt=clock.now_ms()))
    return dep_id


def bot(token: str) -> dict:
    return {"Authorization": f"Bot {token}"}
