"""Ingest and search: chunk -> embed -> normalise -> drop near-duplicates -> store;
query -> embed -> find_nearest (the user's own chunks) -> optional MMR re-rank."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from shared import clock, embeddings, repos
from shared.errors import ApiError
from shared.knowledge import chunking, settings, store, vectors
from shared.models import Knowledge

MMR_POOL = 4  # MMR picks `limit` results out of `limit * MMR_POOL` nearest candidates
FIND_NEAREST_MAX = 1000  # Firestore's cap on find_nearest's limit
DEDUPE_THREADS = 8


def _stored_duplicates(user_id: str, vecs: np.ndarray, similarity: float) -> set[int]:
    """Rows that have a stored chunk of the user's at cosine >= similarity (one limit-1 query each)."""
    def hit(i: int) -> bool:
        return bool(store.nearest(user_id, vecs[i], 1, max_distance=1.0 - similarity))

    with ThreadPoolExecutor(DEDUPE_THREADS) as pool:
        return {i for i, dup in zip(range(len(vecs)), pool.map(hit, range(len(vecs)))) if dup}


def ingest(user_id: str, text: str, source: str) -> dict:
    s = settings.get()
    chunks = chunking.chunk(text, s.chunk_chars, s.overlap_chars)
    if not chunks:
        raise ApiError(422, "empty_text", "text has no content")
    if len(chunks) > settings.MAX_CHUNKS:
        raise ApiError(413, "text_too_large", f"text makes {len(chunks)} chunks; at most {settings.MAX_CHUNKS}")
    vecs = vectors.normalise(embeddings.get().embed(chunks))
    keep = vectors.unique_rows(vecs, s.dedupe_similarity)
    if s.dedupe_stored:
        stored = _stored_duplicates(user_id, vecs[keep], s.dedupe_similarity)
        keep = np.asarray([k for j, k in enumerate(keep) if j not in stored], dtype=int)
    now = clock.now_ms()
    items = [Knowledge(_id=repos.knowledge.new_id(), userId=user_id, text=chunks[i], source=source, createdAt=now)
             for i in keep]
    store.write(items, vecs[keep])
    return {"source": source, "chunks": len(chunks), "stored": len(items),
            "duplicates": len(chunks) - len(items), "ids": [i.id for i in items]}


def search(user_id: str, query: str | None, vector: list[float] | None, limit: int,
           mmr: bool = False, mmr_lambda: float = 0.5) -> list[dict]:
    raw = embeddings.get().embed([query])[0] if query is not None else np.asarray(vector, dtype=np.float64)
    try:
        q = vectors.normalise(raw)
    except ValueError as exc:
        raise ApiError(422, "invalid_vector", str(exc)) from None
    if not mmr:
        hits = store.nearest(user_id, q, limit)
        return [{**item.to_api(), "score": score} for item, score, _ in hits]
    hits = store.nearest(user_id, q, min(limit * MMR_POOL, FIND_NEAREST_MAX), with_vectors=True)
    if not hits:
        return []
    cand = vectors.normalise(np.stack([v for _, _, v in hits]))
    order = vectors.mmr(q, cand, limit, mmr_lambda)
    return [{**hits[i][0].to_api(), "score": hits[i][1]} for i in order]
