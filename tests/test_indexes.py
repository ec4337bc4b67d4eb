"""firestore.indexes.json serves every declared query and every index of SCHEMA.md's summary.
(The emulator does not enforce indexes, so this is the only check before production.)"""
import json
from pathlib import Path

import pytest

from shared import queries

ROOT = Path(__file__).resolve().parent.parent
INDEX_FILE = json.loads((ROOT / "firestore.indexes.json").read_text())


def _load_modules():
    # importing every API module declares every query the code can issue
    import importlib
    import pkgutil

    import shared
    import shared.api

    for pkg in (shared, shared.api):
        for mod in pkgutil.iter_modules(pkg.__path__):
            importlib.import_module(f"{pkg.__name__}.{mod.name}")


_load_modules()


def composite_indexes(collection):
    for idx in INDEX_FILE["indexes"]:
        if idx["collectionGroup"] == collection and idx["queryScope"] == "COLLECTION":
            yield idx["fields"]


def served(q: queries.Query) -> bool:
    if q.vector:
        for fields in composite_indexes(q.collection):
            *prefix, last = fields
            if last.get("fieldPath") == q.vector and "vectorConfig" in last \
                    and {f["fieldPath"] for f in prefix} == set(q.equals):
                return True
        return False
    order_fields = [f for f, _ in q.order]
    distinct = set(q.equals) | set(order_fields)
    if not q.order or len(distinct) <= 1:
        return True  # single-field indexes (merged for equality-only queries)
    eq_only = [f for f in q.equals if f not in order_fields]
    for fields in composite_indexes(q.collection):
        if any("vectorConfig" in f for f in fields):
            continue
        head, tail = fields[:len(eq_only)], fields[len(eq_only):]
        if {f["fieldPath"] for f in head} == set(eq_only) and \
                [(f["fieldPath"], f.get("order")) for f in tail] == list(q.order):
            return True
    return False


@pytest.mark.parametrize("q", list(queries.QUERIES.values()), ids=lambda q: f"{q.collection}:{q.equals}:{q.order}")
def test_every_declared_query_is_served(q):
    assert served(q), f"no index in firestore.indexes.json serves {q}"


SUMMARY_COMPOSITES = [
    ("deployments", ["userId", "status"]),
    ("deployJobs", ["userId", "status"]),
    ("costSnapshots", ["userId", "fetchedAt"]),
    ("openrouterActivity", ["date", "model"]),
    ("openrouterActivity", ["userId", "date"]),
    ("media", ["userId", "createdAt"]),
]


@pytest.mark.parametrize("collection,fields", SUMMARY_COMPOSITES)
def test_schema_summary_composites_present(collection, fields):
    assert any([f["fieldPath"] for f in idx] == fields for idx in composite_indexes(collection))


def test_vector_indexes_1536_plain_and_per_user():
    vectors = [idx for idx in composite_indexes("knowledge") if any("vectorConfig" in f for f in idx)]
    shapes = {tuple(f["fieldPath"] for f in idx) for idx in vectors}
    assert ("embedding",) in shapes and ("userId", "embedding") in shapes
    for idx in vectors:
        assert idx[-1]["vectorConfig"]["dimension"] == 1536


def test_undeclared_query_is_refused():
    from shared import repos

    with pytest.raises(LookupError):
        repos.users.query({"name": "x"})


def test_every_collection_with_expiring_entries_has_a_ttl_policy():
    ttl = {o["collectionGroup"] for o in INDEX_FILE["fieldOverrides"] if o.get("ttl") and o["fieldPath"] == "expireAt"}
    assert ttl == {"stripeEvents", "provisioningEventLog", "idempotencyKeys", "rateLimits", "notifications",
                   "webhookDeliveries", "auditLog"}
    # botBackups.expireAt is no TTL on purpose: the cleanup deletes the snapshots first, then the record
