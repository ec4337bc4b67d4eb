"""Firestore storage of knowledge chunks: embeddings as Firestore vectors,
nearest-neighbour search pre-filtered on userId (served by the composite
vector index), and deletes in batches."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from google.cloud import firestore
from google.cloud.firestore_v1.base_vector_query import DistanceMeasure
from google.cloud.firestore_v1.vector import Vector

from shared import queries, repos
from shared.db import client
from shared.models import Knowledge

# 200 chunks of 1536 doubles is ~3.4 MB: under the 4 MiB message limit of the
# emulator and the 10 MiB of Firestore, so one ingest (<= 200 chunks) is one atomic commit.
WRITE_BATCH = 200
DELETE_BATCH = 500
DISTANCE = "vector_distance"  # where find_nearest puts each result's distance
FIELDS = ["userId", "text", "source", "createdAt"]  # everything but the vector


def _doc(item: Knowledge, vector: np.ndarray) -> dict:
    return {**item.model_dump(exclude={"id", "embedding"}), "embedding": Vector([float(x) for x in vector])}


def write(items: Sequence[Knowledge], vectors: np.ndarray) -> None:
    """Create the chunks, WRITE_BATCH per batched commit (each batch all or nothing)."""
    col = repos.knowledge.col
    for start in range(0, len(items), WRITE_BATCH):
        batch = client().batch()
        for item, vec in zip(items[start:start + WRITE_BATCH], vectors[start:start + WRITE_BATCH]):
            batch.create(col.document(item.id), _doc(item, vec))
        batch.commit()


def nearest(user_id: str, vector: np.ndarray, limit: int, *, with_vectors: bool = False,
            max_distance: float | None = None) -> list[tuple[Knowledge, float, np.ndarray | None]]:
    """The user's `limit` chunks nearest to `vector` as (chunk, cosine similarity, vector or None)."""
    queries.find("knowledge", ("userId",), vector="embedding")  # declared, and index-checked
    q = repos.knowledge.col.where(filter=firestore.FieldFilter("userId", "==", user_id))
    if not with_vectors:
        q = q.select([*FIELDS, DISTANCE])  # 1536 floats per hit are not read back when not needed
    vq = q.find_nearest("embedding", Vector([float(x) for x in vector]), distance_measure=DistanceMeasure.COSINE,
                        limit=limit, distance_result_field=DISTANCE, distance_threshold=max_distance)
    out = []
    for snap in vq.stream():
        data = snap.to_dict()
        distance = data.pop(DISTANCE)
        emb = data.pop("embedding", None)
        item = Knowledge.model_validate({**data, "_id": snap.id})
        out.append((item, 1.0 - distance, None if emb is None else np.asarray(list(emb), dtype=np.float64)))
    return out


def delete_where(equals: dict[str, str]) -> int:
    """Delete every chunk matching `equals` (always includes userId); returns how many."""
    deleted = 0
    while True:
        snaps = list(repos.knowledge.query(equals).select(["createdAt"]).limit(DELETE_BATCH).stream())
        if not snaps:
            return deleted
        batch = client().batch()
        for snap in snaps:
            batch.delete(snap.reference)
        batch.commit()
        deleted += len(snaps)
