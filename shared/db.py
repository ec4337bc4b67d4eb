"""Firestore access in one place: the client, typed repositories, cursor pagination."""
from __future__ import annotations

import base64
import functools
import json
import random
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Generic, TypeVar

from google.api_core import exceptions as gexc
from google.cloud import firestore

from shared import config, faults, jsonbody, queries
from shared.errors import Contention, Malformed, NotFound
from shared.models import Doc

T = TypeVar("T", bound=Doc)


def _budget_interceptor():
    """A gRPC interceptor giving every Firestore RPC the smaller of the library's timeout (300 s for
    reads, 60 s for commits) and what is left of the request's budget (shared/faults.py); with the
    budget spent the RPC is not sent (BudgetExhausted, which the library's retry does not retry)."""
    import collections

    import grpc

    class Details(collections.namedtuple("Details", ("method", "timeout", "metadata", "credentials",
                                                      "wait_for_ready", "compression")),
                  grpc.ClientCallDetails):
        pass

    def clip(details):
        left = faults.remaining()
        if left is None:
            return details
        cut = faults.timeout(details.timeout, f"Firestore {details.method.rsplit('/', 1)[-1]}")
        return Details(details.method, cut, details.metadata, details.credentials,
                       getattr(details, "wait_for_ready", None), getattr(details, "compression", None))

    class Budget(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                 grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
        def intercept_unary_unary(self, continuation, details, request):
            # A plain (non-transaction) commit aborted on contention wrote nothing: it is tried again,
            # as Google's BatchWrite retries Aborted (Commit's default retry does not, since for a
            # transaction's commit that is the transaction's job: `transactional`).
            plain_commit = details.method.endswith("/Commit") and not request.transaction
            tries = PLAIN_COMMIT_ATTEMPTS if plain_commit else 1
            for n in range(tries):
                outcome = continuation(clip(details), request)
                if n + 1 == tries or outcome.code() != grpc.StatusCode.ABORTED or not _pause(n):
                    return outcome

        def intercept_unary_stream(self, continuation, details, request):
            return continuation(clip(details), request)

        def intercept_stream_unary(self, continuation, details, request_iterator):
            return continuation(clip(details), request_iterator)

        def intercept_stream_stream(self, continuation, details, request_iterator):
            return continuation(clip(details), request_iterator)

    return Budget()


class _BoundedClient(firestore.Client):
    """firestore.Client whose channel (emulator or Google's) carries the budget interceptor."""

    def _emulator_channel(self, transport):
        import grpc

        return grpc.intercept_channel(super()._emulator_channel(transport), _budget_interceptor())

    def _firestore_api_helper(self, transport, client_class, client_module):
        import grpc

        class Transport(transport):
            @classmethod
            def create_channel(cls, *args, **kwargs):
                return grpc.intercept_channel(transport.create_channel(*args, **kwargs), _budget_interceptor())

        return super()._firestore_api_helper(Transport, client_class, client_module)


@lru_cache(maxsize=1)
def client() -> firestore.Client:
    return _BoundedClient(project=config.get().project)


@dataclass
class Page(Generic[T]):
    items: list[T]
    cursor: str | None  # opaque; None on the last page

    def to_api(self) -> dict[str, Any]:
        return {"items": [i.to_api() for i in self.items], "nextCursor": self.cursor}


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, n: int) -> list[Any]:
    try:
        values = jsonbody.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)), max_depth=1)
    except (ValueError, TypeError):
        raise Malformed("invalid_cursor", "cursor is not one this API issued") from None
    if not isinstance(values, list) or len(values) != n or not isinstance(values[-1], str):
        raise Malformed("invalid_cursor", "cursor is not one this API issued")
    return values


PAGE_DEFAULT, PAGE_MAX = 20, 100


def valid_id(doc_id: str) -> bool:
    """Firestore's document id rules: 1..1500 bytes, no '/', not '.' or '..', not __reserved__."""
    return (isinstance(doc_id, str) and 0 < len(doc_id.encode()) <= 1500 and "/" not in doc_id
            and doc_id not in (".", "..") and not (doc_id.startswith("__") and doc_id.endswith("__")))


def page_limit(limit: int | None) -> int:
    if limit is None:
        return PAGE_DEFAULT
    if not 1 <= limit <= PAGE_MAX:
        raise Malformed("invalid_limit", f"limit must be between 1 and {PAGE_MAX}")
    return limit


class Repo(Generic[T]):
    """Typed access to one collection."""

    def __init__(self, model: type[T]):
        self.model = model
        self.name = model.collection

    @property
    def col(self) -> firestore.CollectionReference:
        return client().collection(self.name)

    def ref(self, doc_id: str) -> firestore.DocumentReference:
        if not valid_id(doc_id):  # ids come from URLs: one Firestore would refuse names nothing
            raise NotFound("not_found", f"{self.name} {doc_id[:100]!r} not found")
        return self.col.document(doc_id)

    def load(self, snap) -> T | None:
        """The document of a snapshot, None if it does not exist."""
        return self.of(snap) if snap.exists else None

    def of(self, snap) -> T:
        """The document of a snapshot that exists (a query's results)."""
        return self.model.model_validate({**snap.to_dict(), "_id": snap.id})

    def get(self, doc_id: str, tx: firestore.Transaction | None = None) -> T | None:
        return self.load(self.ref(doc_id).get(transaction=tx))

    def require(self, doc_id: str, tx: firestore.Transaction | None = None) -> T:
        item = self.get(doc_id, tx)
        if item is None:
            raise NotFound("not_found", f"{self.name} {doc_id!r} not found")
        return item

    def new_id(self) -> str:
        return self.col.document().id

    def query(self, equals: dict[str, Any], order: tuple = (), ranges: tuple = ()) -> firestore.Query:
        """`ranges`: (field, op, value) filters, only on the first order field (the same index serves them)."""
        spec = queries.find(self.name, equals.keys(), order)
        q: Any = self.col  # a CollectionReference, then Queries
        for field in spec.equals:
            q = q.where(filter=firestore.FieldFilter(field, "==", equals[field]))
        for field, op, value in ranges:
            if not spec.order or field != spec.order[0][0] or op not in ("<", "<=", ">", ">="):
                raise LookupError(f"range on {field} must be on the first order field of the query")
            q = q.where(filter=firestore.FieldFilter(field, op, value))
        for field, direction in spec.order:
            q = q.order_by(field, direction=direction)
        return q

    def first(self, tx: firestore.Transaction | None = None, **equals) -> T | None:
        for snap in self.query(equals).limit(1).stream(transaction=tx):
            return self.of(snap)
        return None

    def all(self, equals: dict[str, Any], order: tuple = (), cap: int = 1000,
            tx: firestore.Transaction | None = None) -> list[T]:
        """A bounded full read, for small collections (plans, nav links)."""
        return [self.of(s) for s in self.query(equals, order).limit(cap).stream(transaction=tx)]

    def page(self, equals: dict[str, Any], order: tuple, limit: int | None, cursor: str | None,
             ranges: tuple = (), fields: list[str] | None = None) -> Page[T]:
        """One page ordered by `order` then document id; the cursor holds the last row's sort keys.
        `fields` reads only those fields (e.g. to leave out large vectors)."""
        limit = page_limit(limit)
        q = self.query(equals, order, ranges)
        if fields is not None:
            q = q.select(fields)
        direction = order[-1][1] if order else queries.ASC
        q = q.order_by("__name__", direction=direction)
        if cursor:
            values = decode_cursor(cursor, len(order) + 1)
            start = {field: v for (field, _), v in zip(order, values)}
            start["__name__"] = self.ref(values[-1])
            q = q.start_after(start)
        snaps = list(q.limit(limit + 1).stream())
        items = [self.of(s) for s in snaps[:limit]]
        next_cursor = None
        if len(snaps) > limit:
            last = snaps[limit - 1]
            next_cursor = encode_cursor([last.get(f) for f, _ in order] + [last.id])
        return Page(items, next_cursor)

    # writes
    def create(self, item: T, tx: firestore.Transaction | None = None) -> T:
        ref = self.ref(item.id)
        if tx is not None:
            tx.create(ref, item.to_store())
        else:
            ref.create(item.to_store())
        return item

    def set(self, item: T, tx: firestore.Transaction | None = None) -> T:
        ref = self.ref(item.id)
        (tx.set(ref, item.to_store()) if tx is not None else ref.set(item.to_store()))
        return item

    def update(self, doc_id: str, fields: dict[str, Any], tx: firestore.Transaction | None = None) -> None:
        ref = self.ref(doc_id)
        if tx is not None:
            tx.update(ref, fields)
            return
        try:
            ref.update(fields)
        except gexc.NotFound:
            raise NotFound("not_found", f"{self.name} {doc_id!r} not found") from None

    def patch(self, item: T, fields: dict[str, Any], tx: firestore.Transaction | None = None) -> T:
        """Write `fields` over the stored `item` (nothing to write when empty); answers the item as it
        now stands."""
        if fields:
            self.update(item.id, fields, tx)
        return item.updated(fields)

    def delete(self, doc_id: str, tx: firestore.Transaction | None = None) -> None:
        ref = self.ref(doc_id)
        (tx.delete(ref) if tx is not None else ref.delete())


TX_ATTEMPTS = 5  # tries of a transaction that lost to contention
PLAIN_COMMIT_ATTEMPTS = 4  # tries of a plain write that lost to contention


def _pause(n: int) -> bool:
    """Wait before try n+2 after an abort: exponential, jittered so that the losers of one lock do
    not meet again. False (no wait) when the request's budget cannot afford it and another try."""
    wait = random.uniform(0.5, 1.5) * 0.1 * 2 ** n
    left = faults.remaining()
    if left is not None and left < wait + 2 * faults.MIN_CALL_S:
        return False
    time.sleep(wait)
    return True


def transactional(fn):
    """Run fn(tx, ...) in a Firestore transaction, retried on contention; when the retries run
    out, the caller gets a 409 to try again (nothing was written). Work registered with
    `after_commit(tx, ...)` by the attempt that committed runs once the commit succeeded.

    The retries are ours, not the library's: it begins again at once, in step with the other loser,
    and the emulator (which times a lock wait out rather than aborting the younger transaction) then
    aborts both again (firebase-tools#6758); a jittered pause lets one of them through. An abort may
    come from a read too (the emulator's "Transaction lock timeout"), which the library never retries."""
    def attempt(tx, *args, **kwargs):
        tx._after_commit = []  # a retried attempt starts over: only the committed one's work runs
        return fn(tx, *args, **kwargs)

    @functools.wraps(fn)  # a route handler keeps its name and summary
    def run(*args, **kwargs):
        for n in range(TX_ATTEMPTS):
            tx = client().transaction(max_attempts=1)
            try:
                result = firestore.transactional(attempt)(tx, *args, **kwargs)
                break
            except (ValueError, gexc.Aborted) as exc:  # ValueError: the library's "failed to commit"
                if not isinstance(exc if isinstance(exc, gexc.Aborted) else exc.__cause__, gexc.Aborted):
                    raise
                if n + 1 == TX_ATTEMPTS or not _pause(n):
                    raise Contention("contention",
                                     "too many concurrent changes to the same data; try again") from exc
        for hook in tx._after_commit:
            hook()
        return result
    return run


def after_commit(tx: firestore.Transaction, hook) -> bool:
    """Run `hook()` after `tx` commits (only for transactions run by `transactional`). False when tx
    is someone else's: the caller must then have another way to finish the work (e.g. a sweep)."""
    hooks = getattr(tx, "_after_commit", None)
    if hooks is None:
        return False
    hooks.append(hook)
    return True
