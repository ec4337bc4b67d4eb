"""Counts Firestore reads and writes as Firestore bills them, by wrapping the client's RPCs.

A query bills one read per document returned, and one read when it returns none;
a get bills one read per document asked for (found or missing); a commit bills
one write per write in it. Used by the cost table (bench/cost_per_request.py) and its test.
"""
from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass

from google.cloud.firestore_v1.services.firestore.client import FirestoreClient


@dataclass
class Meter:
    reads: int = 0
    writes: int = 0

    def __post_init__(self):
        self._lock = threading.Lock()

    def add(self, reads: int = 0, writes: int = 0) -> None:
        with self._lock:
            self.reads += reads
            self.writes += writes


@contextlib.contextmanager
def metered():
    meter = Meter()
    run_query, batch_get = FirestoreClient.run_query, FirestoreClient.batch_get_documents
    commit = FirestoreClient.commit

    def counted_query(self, *args, **kwargs):
        def stream():
            n = 0
            try:
                for resp in run_query(self, *args, **kwargs):
                    if resp._pb.HasField("document"):
                        n += 1
                        meter.add(reads=1)
                    yield resp
            finally:  # also when the caller stops after the first row
                if n == 0:
                    meter.add(reads=1)
        return stream()

    def counted_get(self, *args, **kwargs):
        def stream():
            for resp in batch_get(self, *args, **kwargs):
                if resp._pb.HasField("found") or resp._pb.missing:
                    meter.add(reads=1)
                yield resp
        return stream()

    def counted_commit(self, *args, **kwargs):
        request = kwargs.get("request") or (args[0] if args else None)
        writes = request.get("writes", []) if isinstance(request, dict) else getattr(request, "writes", [])
        resp = commit(self, *args, **kwargs)
        meter.add(writes=len(writes))
        return resp

    FirestoreClient.run_query, FirestoreClient.batch_get_documents = counted_query, counted_get
    FirestoreClient.commit = counted_commit
    try:
        yield meter
    finally:
        FirestoreClient.run_query, FirestoreClient.batch_get_documents = run_query, batch_get
        FirestoreClient.commit = commit
