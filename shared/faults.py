"""Faults of outside calls, in one place: which errors are transient, and the time budget.

**Transient or permanent.** `is_transient(exc)` is the one classification every caller uses (the
HTTP layer, deploy jobs, cost pulls, webhooks, reconciliation): a timeout or connection error of
any client library (requests, httpx, urllib3, grpc, the standard library), Google's 408/429/5xx
(and DEADLINE_EXCEEDED, ABORTED, RESOURCE_EXHAUSTED), Stripe's connection, rate-limit and 5xx
errors, our own Unavailable, UpstreamFailed and Contention (shared/errors.py), and a spent budget
are transient: the same call may work later, so a queue delivery is answered 503
(delivered again while attempts remain) and a user gets 503 with Retry-After.
Everything else (4xx, bad data, bugs) is permanent.

**Budget.** Each function has a deadline (its `--timeout`, given to the code as FUNCTION_TIMEOUT_S by
the function table, functions/__init__.py). `shared.http.Api` opens a budget for each request that ends RESERVE_S before
that deadline, so the request always answers (503 at worst) inside it. Every outside call takes its
timeout from `timeout(cap)`: its own cap, never more than what is left. Firestore calls are clipped
by a gRPC interceptor (shared/db.py), so the library's own retries (backoff with jitter) stop when
the budget ends. When it is spent, `BudgetExhausted` is raised, which is transient.
"""
from __future__ import annotations

import contextlib
import contextvars
import time

from shared.errors import Contention, DomainError, Unavailable, UpstreamFailed

RESERVE_MAX_S = 5.0  # kept back from the function's deadline to answer (and log) in time
MIN_CALL_S = 0.05  # less than this left: do not start a call
RETRY_AFTER_S = 5  # what a 503 tells the caller to wait

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("budget_deadline", default=None)


class BudgetExhausted(Exception):
    """The request's time budget is spent: no further outside call is started."""

    def __init__(self, what: str = "outside call"):
        super().__init__(f"{what}: no time left in this request's budget")
        self.what = what


def reserve_s(function_timeout_s: float) -> float:
    """What is kept back from the function's deadline: 10%, at least 0.5 s, at most 5 s."""
    return min(RESERVE_MAX_S, max(0.5, function_timeout_s * 0.1))


def function_timeout_s() -> float:
    from shared import config

    return float(config.get().function_timeout_s)


@contextlib.contextmanager
def budget(seconds: float | None = None):
    """Open the budget of one request (default: the function's timeout less the reserve). A
    budget already open (a nested call) is kept when it ends sooner."""
    total = function_timeout_s() if seconds is None else seconds
    ends = time.monotonic() + max(MIN_CALL_S, total - reserve_s(total))
    outer = _deadline.get()
    token = _deadline.set(ends if outer is None else min(outer, ends))
    try:
        yield
    finally:
        _deadline.reset(token)


def remaining() -> float | None:
    """Seconds left in the current budget; None outside any (scripts, tests calling code directly)."""
    ends = _deadline.get()
    return None if ends is None else ends - time.monotonic()


def timeout(cap: float | None, what: str = "outside call") -> float | None:
    """The timeout of one outside call: `cap`, cut to what is left of the budget. Raises
    BudgetExhausted when nothing useful is left."""
    left = remaining()
    if left is None:
        return cap
    if left < MIN_CALL_S:
        raise BudgetExhausted(what)
    return left if cap is None else min(cap, left)


def retry(cap: float = 30.0, initial: float = 0.25, maximum: float = 4.0):
    """A google-api-core Retry for idempotent calls: exponential backoff with jitter (the
    library's), on transient errors only, retrying no later than the budget allows."""
    from google.api_core.retry import Retry

    left = remaining()
    window = cap if left is None else max(0.0, min(cap, left - MIN_CALL_S))
    return Retry(predicate=is_transient, initial=initial, maximum=maximum, multiplier=2.0, timeout=window)


# ---- classification

def _google(exc) -> bool | None:
    try:
        from google.api_core import exceptions as gexc
    except ImportError:  # pragma: no cover
        return None
    if isinstance(exc, gexc.RetryError):  # a library retry gave up on transient errors
        return True
    if isinstance(exc, (gexc.ServiceUnavailable, gexc.InternalServerError, gexc.TooManyRequests,
                        gexc.GatewayTimeout, gexc.DeadlineExceeded, gexc.BadGateway, gexc.Aborted,
                        gexc.ResourceExhausted, gexc.Unknown)):
        return True
    if isinstance(exc, gexc.GoogleAPICallError):
        code = exc.code if isinstance(exc.code, int) else None
        return code is not None and code >= 500
    return None


def _transport(exc) -> bool | None:
    import socket

    if isinstance(exc, (TimeoutError, ConnectionError, socket.timeout)):
        return True
    try:
        import requests

        if isinstance(exc, (requests.exceptions.Timeout, requests.exceptions.ConnectionError,
                            requests.exceptions.ChunkedEncodingError)):
            return True
    except ImportError:  # pragma: no cover
        pass
    try:
        import httpx

        if isinstance(exc, (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)):
            return True
    except ImportError:  # pragma: no cover
        pass
    try:
        import urllib3.exceptions as u3

        if isinstance(exc, (u3.TimeoutError, u3.ProtocolError, u3.NewConnectionError)):
            return True
    except ImportError:  # pragma: no cover
        pass
    try:
        import grpc

        if isinstance(exc, grpc.RpcError) and hasattr(exc, "code"):
            return exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                                  grpc.StatusCode.ABORTED, grpc.StatusCode.RESOURCE_EXHAUSTED,
                                  grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN)
    except ImportError:  # pragma: no cover
        pass
    try:
        from google.auth import exceptions as gauth

        if isinstance(exc, gauth.TransportError):
            return True
    except ImportError:  # pragma: no cover
        pass
    return None


def _stripe(exc) -> bool | None:
    import sys

    stripe = sys.modules.get("stripe")  # only where billing loaded it
    if stripe is None or not isinstance(exc, stripe.StripeError):
        return None
    if isinstance(exc, (stripe.APIConnectionError, stripe.RateLimitError)):
        return True
    status = getattr(exc, "http_status", None)
    return isinstance(status, int) and (status >= 500 or status == 429)


def is_transient(exc: BaseException | None) -> bool:
    """True when the same call may succeed later (see the module docstring). Follows the
    exception's cause, so a library wrapping a timeout in its own error still counts."""
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, BudgetExhausted):
            return True
        if isinstance(exc, DomainError):  # already decided: a dependency down, or a transaction that lost to others
            return isinstance(exc, (Unavailable, UpstreamFailed, Contention))
        for check in (_google, _transport, _stripe):
            verdict = check(exc)
            if verdict is not None:
                return verdict
        exc = exc.__cause__ or (exc.__context__ if not exc.__suppress_context__ else None)
        seen += 1
    return False


def describe(exc: BaseException) -> str:
    """A short reason for a log line or a job's log: the type and the first line of the message."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    request = getattr(exc, "request", None)  # requests/httpx errors know what was asked (a URL, never a body)
    url = getattr(request, "url", None)
    where = f" [{getattr(request, 'method', '')} {str(url).split('?')[0]}]" if url else ""
    return (f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__) + where
