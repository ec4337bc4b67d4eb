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


def _float(name: str, default: float, lo: float, hi: float) -> float:
    raw = config.env(name, str(default))
    try:
        value = float(raw)
    except ValueError:
        raise config.ConfigError(f"environment variable {name} must be a number, got {raw!r}") from None
    if not lo <= value <= hi:
        raise config.ConfigError(f"environment variable {name} must be in [{lo}, {hi}], got {value}")
    return value


@lru_cache(maxsize=1)
def get() -> Settings:
    chunk = config.env_int("KNOWLEDGE_CHUNK_CHARS", 1200, lo=200, hi=8000)
    overlap = config.env_int("KNOWLEDGE_CHUNK_OVERLAP", 200, lo=0, hi=chunk // 2)
    return Settings(
        chunk_chars=chunk,
        overlap_chars=overlap,
        dedupe_similarity=_float("KNOWLEDGE_DEDUPE_SIMILARITY", 0.97, 0.5, 1.0),
        dedupe_stored=config.env_choice("KNOWLEDGE_DEDUPE_STORED", "on", ("on", "off")) == "on",
    )
