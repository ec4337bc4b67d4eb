"""Text embeddings behind one interface, so another provider can be configured.

`get()` returns the configured `Embedder`. The OpenAI one uses the official
client (imported only when something is embedded: it costs ~1 s of cold start),
batches inputs (the API takes up to 2048 per request) and asks for exactly
`dimensions` floats. An OpenAI-compatible provider is configured with
OPENAI_BASE_URL. Errors become domain errors (shared/errors.py): RateLimited, Unavailable, else UpstreamFailed.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Protocol

from shared import config, faults
from shared.errors import RateLimited, Unavailable, UpstreamFailed

if TYPE_CHECKING:  # numpy is loaded by the first embedding, not at a function's start
    import numpy as np

DIMENSIONS = 1536  # SCHEMA.md: knowledge.embedding is a 1536-dimension vector


class Embedder(Protocol):
    model: str
    dimensions: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """One row per text, shape (len(texts), dimensions), float32."""


@dataclass(frozen=True)
class Settings:
    provider: str
    model: str
    dimensions: int  # the configured model's output size; a change is applied by the re-embedding job
    api_key: str | None
    base_url: str | None
    batch_size: int
    timeout_s: int


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings(
        provider=config.env_choice("EMBEDDINGS_PROVIDER", "openai", ("openai",)),
        model=config.env("EMBEDDINGS_MODEL", "text-embedding-3-small"),
        dimensions=config.env_int("EMBEDDINGS_DIMENSIONS", DIMENSIONS, lo=64, hi=4096),
        api_key=config.setting("OPENAI_API_KEY", config.non_empty),  # required under production rules
        base_url=config.env("OPENAI_BASE_URL"),
        batch_size=config.env_int("EMBEDDINGS_BATCH_SIZE", 128, lo=1, hi=2048),
        timeout_s=config.env_int("EMBEDDINGS_TIMEOUT_S", 30, lo=1, hi=300),
    )


class OpenAIEmbedder:
    def __init__(self, s: Settings, model: str | None = None, dimensions: int | None = None):
        if not s.api_key:
            raise config.ConfigError("missing environment variable OPENAI_API_KEY")
        import openai

        self.model, self.dimensions, self.batch_size = model or s.model, dimensions or s.dimensions, s.batch_size
        self.timeout_s = s.timeout_s
        self._openai = openai
        self._client = openai.OpenAI(api_key=s.api_key, base_url=s.base_url, timeout=s.timeout_s, max_retries=2)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import numpy as np

        out = np.empty((len(texts), self.dimensions), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            batch = list(texts[start:start + self.batch_size])
            try:
                # the library retries twice (backoff with jitter): each try gets a third of what is left
                left = faults.timeout(self.timeout_s * 3, "embeddings provider")
                resp = self._client.embeddings.create(model=self.model, input=batch, dimensions=self.dimensions,
                                                      timeout=max(faults.MIN_CALL_S, left / 3))
            except self._openai.RateLimitError:
                raise RateLimited("embeddings_rate_limited", "the embeddings provider is rate limiting; retry later",
                                  retry_after=10) from None
            except (self._openai.APITimeoutError, self._openai.APIConnectionError,
                    self._openai.InternalServerError) as exc:
                raise Unavailable("embeddings_unavailable", f"embeddings provider unavailable: {type(exc).__name__}",
                                  retry_after=faults.RETRY_AFTER_S) from None
            except self._openai.OpenAIError as exc:
                raise UpstreamFailed("embeddings_failed", f"embeddings provider error: {type(exc).__name__}") from None
            rows = sorted(resp.data, key=lambda d: d.index)
            if len(rows) != len(batch) or any(len(r.embedding) != self.dimensions for r in rows):
                raise UpstreamFailed("embeddings_failed", "embeddings provider returned the wrong shape")
            out[start:start + len(batch)] = np.asarray([r.embedding for r in rows], dtype=np.float32)
        return out


@lru_cache(maxsize=1)
def get() -> Embedder:
    """The configured model. The knowledge base embeds with the version its vectors are in
    (`for_version`), which differs from this one until the re-embedding job has run."""
    return for_version(settings().model, settings().dimensions)


@lru_cache(maxsize=4)
def for_version(model: str, dimensions: int) -> Embedder:
    """An embedder of one (model, dimensions): the knowledge base's queries must use the model its
    stored vectors were made with (shared/knowledge/space.py)."""
    s = settings()
    providers = {"openai": OpenAIEmbedder}
    return providers[s.provider](s, model, dimensions)
