"""The errors of the domain: what went wrong, in the domain's words (not found, conflict, forbidden,
contention, invalid, unavailable, ...), each with a machine code (the `code` a client reads), a message
and optional details. The domain raises them and knows nothing of HTTP: shared/http.py alone maps each
kind to a status (its STATUS table) and turns it into the JSON error `{"error": {code, message, details?}}`.
"""
from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every kind below. `retry_after`: seconds after which trying again may succeed."""

    def __init__(self, code: str, message: str, details: Any = None, *, retry_after: int | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details
        self.retry_after = retry_after


class Malformed(DomainError):
    """The request cannot be read: a bad cursor, header, signature or payload."""


class Unauthenticated(DomainError):
    """No valid credential. `challenge`: the credential scheme the caller should present."""

    def __init__(self, code: str, message: str, details: Any = None, *, challenge: str = "Bearer"):
        super().__init__(code, message, details)
        self.challenge = challenge


class Forbidden(DomainError):
    """The caller is known but may not do this."""


class NotFound(DomainError):
    """What the request names does not exist (or is not the caller's to see)."""


class Conflict(DomainError):
    """The request contradicts the current state (a job running, a plan limit, ...)."""


class Contention(Conflict):
    """A transaction lost to concurrent changes too many times: the same request may succeed later."""


class PreconditionFailed(DomainError):
    """The caller's copy is stale (If-Match)."""


class TooLarge(DomainError):
    """The input is larger than allowed."""


class Invalid(DomainError):
    """The input is readable but not acceptable."""


class RateLimited(DomainError):
    """Too many requests (ours or a provider's). `quota`: the caller's window, when ours (shared/ratelimit.py)."""

    def __init__(self, code: str, message: str, details: Any = None, *, retry_after: int | None = None,
                 quota: Any = None):
        super().__init__(code, message, details, retry_after=retry_after)
        self.quota = quota


class UpstreamFailed(DomainError):
    """A service we depend on refused or answered nonsense."""


class Unavailable(DomainError):
    """A service we depend on (or our own state) is not ready; the same request may succeed later."""


def not_found(what: str) -> NotFound:
    return NotFound("not_found", f"{what} not found")


def forbidden(message: str = "not allowed") -> Forbidden:
    return Forbidden("forbidden", message)


def conflict(message: str, details: Any = None) -> Conflict:
    return Conflict("conflict", message, details)


def validation_error(exc: Any, where: str) -> Invalid:
    """The Invalid of a pydantic ValidationError of `where` (body, query, config, ...): every problem
    in details (loc, msg, type), the first in the message."""
    details = [{"loc": [where, *map(str, e["loc"])], "msg": e["msg"], "type": e["type"]}
               for e in exc.errors(include_url=False, include_context=False, include_input=False)]
    first = details[0]
    return Invalid("invalid_" + where, f"{'.'.join(first['loc'])}: {first['msg']}", details)
