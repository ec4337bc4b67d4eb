"""Ingest and search: chunk -> embed -> normalise -> drop near-duplicates -> store;
query -> embed -> find_nearest (the user's own chunks) -> optional MMR re-rank.
Both use the user's embedding space (shared/knowledge/space.py): its model, its vector field."""
from __future__ import annotations

import numpy as np

from shared import clock, embeddings, repos
from shared.errors import Conflict, Invalid, TooLarge
from shared.knowledge import chunking, settings, space, store, vectors
from shared.models import Knowledge

MMR_POOL = 4  # MMR picks `limit` results out of `limit * MMR_POOL` nearest candidates
FIND_NEAREST_MAX = 1000  # Firestore's cap on find_nearest's limit
STORED_CANDIDATES = (20, 200)  # stored chunks compared with an ingest: 2 per new chunk, within these bounds


def _stored_duplicates(user_id: str, vecs: np.ndarray, similarity: float, field: str) -> np.ndarray:
    """Mask of rows that repeat a stored chunk of the user's. One query per ingest, not one
    per chunk: the stored chunks nearest to the new chunks' centroid are the ones a re-ingested
    or overlapping document repeats; numpy then compares every new chunk with them."""
    lo, hi = STORED_CANDIDATES
    centroid = vecs.mean(axis=0)
    if not np.any(centroid):
        centroid = vecs[0]
    hits = store.nearest(user_id, centroid, min(max(2 * len(vecs), lo), hi), field=field, with_vectors=True)
    if not hits:
        return np.zeros(len(vecs), dtype=bool)
    stored = vectors.normalise(np.stack([v for _, _, v in hits if v is not None]))
    return (vecs @ stored.T).max(axis=1) >= similarity


def ingest(user_id: str, text: str, source: str) -> dict:
    s = settings.get()
    chunks = chunking.chunk(text, s.chunk_chars, s.overlap_chars)
    if not chunks:
        raise Invalid("empty_text", "text has no content")
    if len(chunks) > settings.MAX_CHUNKS:
        raise TooLarge("text_too_large", f"text makes {len(chunks)} chunks; at most {settings.MAX_CHUNKS}")
    current, target = space.of_user(user_id)
    vecs = vectors.normalise(embeddings.for_version(current.model, current.dimensions).embed(chunks))
    keep = vectors.unique_rows(vecs, s.dedupe_similarity)
    if s.dedupe_stored and len(keep):
        keep = keep[~_stored_duplicates(user_id, vecs[keep], s.dedupe_similarity, current.slot)]
    now = clock.now_ms()
    items = [Knowledge(_id=repos.knowledge.new_id(), userId=user_id, text=chunks[i], source=source, createdAt=now)
             for i in keep]
    slots = {current.slot: (current.key, vecs[keep])}
    if target is not None and len(keep):  # a re-embedding run is going: the target slot too
        texts = [chunks[i] for i in keep]
        slots[target.slot] = (target.key, vectors.normalise(
            embeddings.for_version(target.model, target.dimensions).embed(texts)))
    store.write_chunks(items, slots)
    return {"source": source, "chunks": len(chunks), "stored": len(items),
            "duplicates": len(chunks) - len(items), "ids": [i.id for i in items]}


def search(user_id: str, query: str | None, vector: list[float] | None, limit: int,
           mmr: bool = False, mmr_lambda: float = 0.5) -> list[dict]:
    current, _ = space.of_user(user_id)
    if vector is not None and len(vector) != current.dimensions:
        # a well-formed vector for another model than the knowledge base's current one: a conflict with its state
        raise Conflict("invalid_vector", f"vector must have {current.dimensions} dimensions, got {len(vector)}")
    raw = (embeddings.for_version(current.model, current.dimensions).embed([query])[0] if query is not None
           else np.asarray(vector, dtype=np.float64))
    try:
        q = vectors.normalise(raw)
    except ValueError as exc:
        raise Invalid("invalid_vector", str(exc)) from None
    if not mmr:
        hits = store.nearest(user_id, q, limit, field=current.slot)
        return [{**item.to_api(), "score": score} for item, score, _ in hits]
    hits = store.nearest(user_id, q, min(limit * MMR_POOL, FIND_NEAREST_MAX), field=current.slot, with_vectors=True)
    if not hits:
        return []
    cand = vectors.normalise(np.stack([v for _, _, v in hits if v is not None]))
    order = vectors.mmr(q, cand, limit, mmr_lambda)
    return [{**hits[i][0].to_api(), "score": hits[i][1]} for i in order]
