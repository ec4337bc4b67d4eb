"""`Idempotency-Key` on the POSTs that create or spend (as Stripe's API does).

A route declared `idempotent=True` (shared/http.py) with the header present runs here:
- the key is scoped to the function and the caller (`idempotencyKeys/{sha(function, caller, key)}`,
  an internal collection), so two users' keys never meet;
- a fresh key is claimed with one create (no read): the one request that wins it does the work, and
  its answer (status, body, headers) is stored for 24 h (`expireAt`, a TTL policy removes it);
- the same key with the same request (method, path, validated body) answers the stored answer again,
  with `Idempotent-Replayed: true`; with another request, 422 `idempotency_key_reused`;
- a request arriving while the first still runs waits up to WAIT_S for its answer, then gets 409
  `idempotency_in_progress` with Retry-After;
- answers that say "try again" (5xx, 409, 429) and failures are not stored: the claim is released,
  so a retry does the work. A claim whose request died (the function's deadline passed) is taken over.
Validation errors (before the handler) are not stored either, as Stripe does.
"""
from __future__ import annotations

import hashlib
import json
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import flask

from shared import clock, config
from shared.errors import Conflict, Invalid, Malformed

COLLECTION = "idempotencyKeys"  # internal
KEEP = timedelta(hours=24)
WAIT_S = 2.0
HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"  # printable ASCII, as Stripe (at most 255 characters)
_NOT_STORED = {409, 429}
_KEPT_HEADERS = ("Content-Type", "Location", "ETag")


def key_of(request: flask.Request) -> str | None:
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not (0 < len(key) <= 255 and all(0x21 <= ord(ch) <= 0x7e for ch in key)):
        raise Malformed("invalid_idempotency_key", f"{HEADER} must be 1 to 255 printable ASCII characters")
    return key


def fingerprint(method: str, path: str, body: Any) -> str:
    data = body.model_dump(mode="json", by_alias=True) if hasattr(body, "model_dump") else body
    text = json.dumps([method, path, data], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _ref(function: str, scope: str, key: str):
    from shared import db

    doc_id = hashlib.sha256(f"{function}\n{scope}\n{key}".encode()).hexdigest()
    return db.client().collection(COLLECTION).document(doc_id)


def _claim(lease: str, fp: str) -> dict:
    now = clock.now_ms()
    return {"state": "running", "lease": lease, "fingerprint": fp, "createdAt": now,
            "lockedUntil": now + config.get().function_timeout_s * 1000,
            "expireAt": datetime.now(timezone.utc) + KEEP}


def _expired(d: dict) -> bool:
    exp = d.get("expireAt")
    return exp is not None and exp <= datetime.now(timezone.utc)


def _replay(d: dict) -> flask.Response:
    resp = flask.Response(d.get("body", ""), status=d["status"])
    for k, v in (d.get("headers") or {}).items():
        resp.headers[k] = v
    resp.headers[REPLAYED] = "true"
    return resp


def _take_over(ref, seen_lease: str, lease: str, fp: str) -> bool:
    """Replace an expired record or a dead request's claim, unless someone else did first."""
    from shared import db

    @db.transactional
    def take(tx) -> bool:
        snap = ref.get(transaction=tx)
        if snap.exists and snap.get("lease") != seen_lease:
            return False
        tx.set(ref, _claim(lease, fp))
        return True
    return take()


def _acquire(ref, lease: str, fp: str) -> flask.Response | None:
    """Claim the key (None: this request does the work) or answer from the first request."""
    from google.api_core import exceptions as gexc

    deadline = time.monotonic() + WAIT_S
    pause = 0.05
    while True:
        try:
            ref.create(_claim(lease, fp))
            return None
        except gexc.AlreadyExists:
            pass
        snap = ref.get()
        if not snap.exists:
            continue  # released meanwhile: claim it
        d = snap.to_dict()
        stale = d.get("state") == "running" and d.get("lockedUntil", 0) < clock.now_ms()
        if _expired(d) or stale:
            if _take_over(ref, d.get("lease", ""), lease, fp):
                return None
            continue
        if d.get("fingerprint") != fp:
            raise Invalid("idempotency_key_reused",
                          f"this {HEADER} was used with another request; use a new key for a new request")
        if d.get("state") == "done":
            return _replay(d)
        if time.monotonic() >= deadline:
            raise Conflict("idempotency_in_progress",
                           f"a request with this {HEADER} is still being processed; retry shortly",
                           retry_after=1)
        time.sleep(pause)
        pause = min(pause * 2, 0.4)


def run(function: str, scope: str, key: str, fp: str, work: Callable[[], flask.Response]) -> flask.Response:
    ref = _ref(function, scope, key)
    lease = uuid.uuid4().hex
    replay = _acquire(ref, lease, fp)
    if replay is not None:
        return replay
    try:
        resp = work()
    except BaseException:
        try:
            ref.delete()  # nothing answered: a retry does the work
        except Exception:  # noqa: BLE001 - the claim then ends with the function's deadline
            pass
        raise
    if resp.status_code >= 500 or resp.status_code in _NOT_STORED:
        ref.delete()
        return resp
    headers = {k: resp.headers[k] for k in _KEPT_HEADERS if k in resp.headers}
    ref.update({"state": "done", "status": resp.status_code, "body": resp.get_data(as_text=True),
                "headers": headers, "doneAt": clock.now_ms()})
    return resp
