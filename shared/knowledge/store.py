"""Firestore storage of knowledge chunks: embeddings as Firestore vectors,
nearest-neighbour search pre-filtered on userId (served by the composite
vector index), and deletes in batches."""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1 import _helpers
from google.cloud.firestore_v1.base_vector_query import DistanceMeasure
from google.cloud.firestore_v1.types import common, document, write
from google.cloud.firestore_v1.vector import Vector

from shared import queries, repos
from shared.db import client
from shared.models import Knowledge

if TYPE_CHECKING:  # numpy is loaded where vectors are, not at the knowledge function's start
    import numpy as np

# 200 chunks of 1536 doubles is ~3.4 MB: under the 4 MiB message limit of the
# emulator and the 10 MiB of Firestore, so one ingest (<= 200 chunks) is one atomic commit.
WRITE_BATCH = 200
DELETE_BATCH = 500
DISTANCE = "vector_distance"  # where find_nearest puts each result's distance
FIELDS = ["userId", "text", "source", "createdAt"]  # everything but the vector


_VALUE, _ARRAY, _MAP = document.Value.pb(), document.ArrayValue.pb(), document.MapValue.pb()


def _vector_value(vector) -> document.Value:
    import numpy as np

    vector = np.asarray(vector, dtype=np.float64)
    return _VALUE(map_value=_MAP(fields={  # Firestore's vector value: a tagged map
        "__type__": _VALUE(string_value="__vector__"),
        "value": _VALUE(array_value=_ARRAY(values=[_VALUE(double_value=x) for x in vector.tolist()]))}))


def _create_pb(ref, item: Knowledge, slots: dict[str, tuple[str, np.ndarray]]) -> write.Write:
    """The create of one chunk with its vectors ({slot: (version key, vector)}). The vector is encoded
    straight to protobuf: the client's per-value proto-plus encoding spends ~6 ms of CPU per
    1536-float vector, most of an ingest."""
    fields = {k: document.Value.pb(v) for k, v in
              _helpers.encode_dict(item.model_dump(exclude={"id", "embedding"})).items()}
    for slot, (key, vector) in slots.items():
        fields[slot] = _vector_value(vector)
        fields[f"{slot}Version"] = _VALUE(string_value=key)
    doc = document.Document.pb()(name=ref._document_path, fields=fields)
    return write.Write.wrap(write.Write.pb()(update=doc, current_document=common.Precondition.pb()(exists=False)))


def write_chunks(items: Sequence[Knowledge], vectors: dict[str, tuple[str, np.ndarray]] | np.ndarray) -> None:
    """Create the chunks, WRITE_BATCH per batched commit (each batch all or nothing). `vectors`:
    {slot: (version key, one row per item)} (two slots while a re-embedding run is going), or the rows
    alone: the `embedding` field, in the version of before versions (LEGACY)."""
    if not isinstance(vectors, dict):
        from shared.knowledge.space import LEGACY

        vectors = {LEGACY.slot: (LEGACY.key, vectors)}
    col = repos.knowledge.col
    per = WRITE_BATCH // len(vectors)  # two vectors per chunk: half as many chunks fit a commit
    for start in range(0, len(items), per):
        batch = client().batch()
        batch._add_write_pbs([_create_pb(col.document(item.id), item,
                                         {slot: (key, rows[start + i]) for slot, (key, rows) in vectors.items()})
                              for i, item in enumerate(items[start:start + per])])
        batch.commit()


def set_vectors(ids: Sequence[str], slot: str, key: str, vectors: np.ndarray) -> int:
    """Write one slot's vectors (and its version tag) into existing chunks, one batched commit;
    chunks deleted meanwhile are skipped. Returns how many were written."""
    col = repos.knowledge.col

    def update_pb(doc_id: str, vector: np.ndarray) -> write.Write:
        doc = document.Document.pb()(name=col.document(doc_id)._document_path, fields={
            slot: _vector_value(vector), f"{slot}Version": _VALUE(string_value=key)})
        return write.Write.wrap(write.Write.pb()(update=doc, update_mask=common.DocumentMask.pb()(
            field_paths=[slot, f"{slot}Version"]), current_document=common.Precondition.pb()(exists=True)))

    batch = client().batch()
    batch._add_write_pbs([update_pb(i, v) for i, v in zip(ids, vectors)])
    try:
        batch.commit()
        return len(ids)
    except gexc.NotFound:  # a chunk was deleted meanwhile: write the others one by one
        written = 0
        for i, v in zip(ids, vectors):
            one = client().batch()
            one._add_write_pbs([update_pb(i, v)])
            try:
                one.commit()
                written += 1
            except gexc.NotFound:
                pass
        return written


def nearest(user_id: str, vector: np.ndarray, limit: int, *, field: str = "embedding", with_vectors: bool = False,
            max_distance: float | None = None) -> list[tuple[Knowledge, float, np.ndarray | None]]:
    """The user's `limit` chunks nearest to `vector` in vector field `field` (the user's space, see
    shared/knowledge/space.py) as (chunk, cosine similarity, vector or None)."""
    import numpy as np

    queries.find("knowledge", ("userId",), vector=field)  # declared, and index-checked
    q = repos.knowledge.col.where(filter=firestore.FieldFilter("userId", "==", user_id))
    q = q.select([*FIELDS, DISTANCE] + ([field] if with_vectors else []))  # never the other slot's vector
    vq = q.find_nearest(field, Vector([float(x) for x in vector]), distance_measure=DistanceMeasure.COSINE,
                        limit=limit, distance_result_field=DISTANCE, distance_threshold=max_distance)
    out = []
    for snap in vq.stream():  # type: ignore[call-arg]  # the library's annotation misses its own self
        data = dict(snap._data)  # to_dict() deep-copies each of the 1536 floats, a third of an ingest's CPU
        distance = data.pop(DISTANCE)
        emb = data.pop(field, None)
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
