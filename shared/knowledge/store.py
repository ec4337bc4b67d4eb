"""Firestore storage of knowledge chunks: embeddings as Firestore vectors,
nearest-neighbour search pre-filtered on userId (served by the composite
vector index), and deletes in batches."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from google.cloud import firestore
from google.cloud.firestore_v1 import _helpers
from google.cloud.firestore_v1.base_vector_query import DistanceMeasure
from google.cloud.firestore_v1.types import common, document, write
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


_VALUE, _ARRAY, _MAP = document.Value.pb(), document.ArrayValue.pb(), document.MapValue.pb()


def _create_pb(ref, item: Knowledge, vector: np.ndarray) -> write.Write:
    """The create of one chunk. The vector is encoded straight to protobuf: the client's
    per-value proto-plus encoding spends ~6 ms of CPU per 1536-float vector, most of an ingest."""
    fields = {k: document.Value.pb(v) for k, v in
              _helpers.encode_dict(item.model_dump(exclude={"id", "embedding"})).items()}
    fields["embedding"] = _VALUE(map_value=_MAP(fields={  # Firestore's vector value: a tagged map
        "__type__": _VALUE(string_value="__vector__"),
        "value": _VALUE(array_value=_ARRAY(values=[_VALUE(double_value=x) for x in vector.tolist()]))}))
    doc = document.Document.pb()(name=ref._document_path, fields=fields)
    return write.Write.wrap(write.Write.pb()(update=doc, current_document=common.Precondition.pb()(exists=False)))


def write_chunks(items: Sequence[Knowledge], vectors: np.ndarray) -> None:
    """Create the chunks, WRITE_BATCH per batched commit (each batch all or nothing)."""
    col = repos.knowledge.col
    for start in range(0, len(items), WRITE_BATCH):
        batch = client().batch()
        batch._add_write_pbs([_create_pb(col.document(item.id), item, np.asarray(vec, dtype=np.float64))
                              for item, vec in zip(items[start:start + WRITE_BATCH],
                                                   vectors[start:start + WRITE_BATCH])])
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
        data = dict(snap._data)  # to_dict() deep-copies each of the 1536 floats, a third of an ingest's CPU
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
