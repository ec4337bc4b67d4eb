"""Configuration of the knowledge domain (read once)."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from shared import config

MAX_TEXT_CHARS = 100_000  # hard cap of one ingest (the request model's bound)
MAX_CHUNKS = 200  # one ingest is one Firestore batch (atomic): see store.WRITE_BATCH


@dataclass(frozen=True)
class Settings:
    chunk_chars: int
    overlap_chars: int
    dedupe_similarity: float  # cosine at or above which two chunks count as the same
    dedupe_stored: bool  # also compare new chunks with the user's stored ones nearest to them


@lru_cache(maxsize=1)
def get() -> Settings:
    chunk = config.env_int("KNOWLEDGE_CHUNK_CHARS", 1200, lo=200, hi=8000)
    overlap = config.env_int("KNOWLEDGE_CHUNK_OVERLAP", 200, lo=0, hi=chunk // 2)
    return Settings(
        chunk_chars=chunk,
        overlap_chars=overlap,
        dedupe_similarity=config.env_float("KNOWLEDGE_DEDUPE_SIMILARITY", 0.97, lo=0.5, hi=1.0),
        dedupe_stored=config.env_choice("KNOWLEDGE_DEDUPE_STORED", "on", ("on", "off")) == "on",
    )


@dataclass(frozen=True)
class ReembedSettings:
    """The re-embedding job (shared/knowledge/reembed.py): its queue and worker, batch size, and how
    long a run waits before switching anyone (an ingest that began before the run started, and so
    writes the old version only, has ended by then: the functions' timeout is 60 s)."""
    queue: str
    worker_url: str | None
    invoker_sa: str | None
    batch: int
    settle_ms: int
    lease_ms: int


@lru_cache(maxsize=1)
def reembed() -> ReembedSettings:
    return ReembedSettings(
        queue=config.env("KNOWLEDGE_REEMBED_QUEUE", "knowledge-reembed"),
        worker_url=config.setting("KNOWLEDGE_REEMBED_WORKER_URL", config.https_url),
        invoker_sa=config.setting("TASKS_INVOKER_SA", config.service_account),
        batch=config.env_int("KNOWLEDGE_REEMBED_BATCH", 100, lo=1, hi=500),
        settle_ms=config.env_int("KNOWLEDGE_REEMBED_SETTLE_S", 90, lo=0, hi=3600) * 1000,
        lease_ms=config.env_int("KNOWLEDGE_REEMBED_LEASE_S", 120, lo=1, hi=3600) * 1000,
    )


def reset() -> None:
    get.cache_clear()
    reembed.cache_clear()
