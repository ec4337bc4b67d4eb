"""Signatures of outgoing webhook deliveries, in the shape of Stripe's `Stripe-Signature`.

Header `OpenClaw-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`. A
receiver verifies it with its endpoint's secret (`whsec_...`): recompute v1 over the exact bytes
received, compare in constant time, and refuse a `t` further than the tolerance (5 minutes) from its
clock, so a captured delivery cannot be replayed later. During a secret rotation a delivery may carry
one v1 per secret (old and new); any one matching is enough. `verify()` is that check in Python.
"""
from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "OpenClaw-Signature"
TOLERANCE_S = 300


class BadSignature(ValueError):
    pass


def signature(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def header(secrets: list[str], body: bytes, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    return ",".join([f"t={t}", *(f"v1={signature(s, t, body)}" for s in secrets)])


def verify(secret: str, body: bytes, value: str, tolerance_s: int = TOLERANCE_S, now: float | None = None) -> int:
    """Returns the signed timestamp; raises BadSignature unless `value` signs `body` with `secret`
    within `tolerance_s` of `now`."""
    parts = [p.split("=", 1) for p in (value or "").split(",") if "=" in p]
    stamps = [v for k, v in parts if k.strip() == "t"]
    sigs = [v.strip() for k, v in parts if k.strip() == "v1"]
    if len(stamps) != 1 or not stamps[0].strip().isdigit() or not sigs:
        raise BadSignature("no t= and v1= in the signature header")
    t = int(stamps[0])
    expected = signature(secret, t, body)
    if not any(hmac.compare_digest(expected, s) for s in sigs):
        raise BadSignature("no v1 signature matches the body")
    if abs((time.time() if now is None else now) - t) > tolerance_s:
        raise BadSignature("timestamp outside the tolerance (a replay?)")
    return t
