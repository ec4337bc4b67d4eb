"""HTTP conventions of every endpoint: routing, JSON in and out, validation,
JSON errors, CORS, request ids and an access log line per request.

Routes also declare, each with one word, what a web client expects of them:
- `idempotent=True`: an `Idempotency-Key` header makes a retry answer the first answer (shared/idempotency.py);
- `rate="..."`: the caller's rate class (shared/ratelimit.py); every user or bot call counts against `default`
  unless the route names a tighter class;
- `etag=True`: a GET answers an `ETag` (and 304 to a matching `If-None-Match`); a write takes `If-Match`, which
  the handler checks with `precondition()` inside its transaction (412 when stale; the router makes sure it
  was checked).

Errors: the domain raises the kinds of shared/errors.py (NotFound, Conflict, ...); this module alone
maps them to HTTP statuses (STATUS, the one table) and answers `{"error": {code, message, details?}}`.

A function module builds one `Api`, declares routes on it, and exposes it as
its Cloud Function entry point. Routes keep their models so the OpenAPI
document can be generated from the same models the code validates with.
"""
from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal, Protocol

import flask
from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from shared import config, errors, faults, idempotency, jsonbody, logs, ratelimit
from shared.errors import DomainError, validation_error

log = logs.get("http")

# Who may call a route. cloud_tasks: a delivery of the route's queue with its OIDC token; scheduler:
# Cloud Scheduler's OIDC token, or an admin (both checked by shared/google_identity.py, with the queue,
# account and audience the route's `machine` getter reads from its settings: tasks_caller() and
# scheduler_caller() below); custom: the handler checks a proof of its own (the Stripe signature).
Access = Literal["public", "user", "admin", "cloud_tasks", "scheduler", "custom"]
MACHINE_ACCESS = ("cloud_tasks", "scheduler")
_PARAM = re.compile(r"\{(\w+)\}")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,128}$")
_ETAG = re.compile(r'^(?:W/)?"([^"]*)"$')
# what a browser may send and read (CORS): the conventions above
ALLOW_HEADERS = ("Authorization", "Content-Type", "X-Request-Id", "Idempotency-Key", "If-Match", "If-None-Match")
EXPOSE_HEADERS = ("X-Request-Id", "ETag", "Retry-After", idempotency.REPLAYED, "Location", "X-RateLimit-Limit",
                  "X-RateLimit-Remaining", "X-RateLimit-Reset", "X-RateLimit-Resource")


class MethodNotAllowed(DomainError):
    """The edge's own: the path exists, not with this method. `allow`: the methods it has."""

    def __init__(self, code: str, message: str, *, allow: str):
        super().__init__(code, message)
        self.allow = allow


class UnsupportedMediaType(DomainError):
    """The edge's own: a body that is not JSON."""


# The one mapping of errors to HTTP statuses: a kind's status, else its nearest base's (Contention: 409).
STATUS: dict[type[DomainError], int] = {
    errors.Malformed: 400, errors.Unauthenticated: 401, errors.Forbidden: 403, errors.NotFound: 404,
    MethodNotAllowed: 405, errors.Conflict: 409, errors.PreconditionFailed: 412, errors.TooLarge: 413,
    UnsupportedMediaType: 415, errors.Invalid: 422, errors.RateLimited: 429, errors.UpstreamFailed: 502,
    errors.Unavailable: 503,
}


def status_of(exc: DomainError) -> int:
    return next((STATUS[k] for k in type(exc).__mro__ if k in STATUS), 500)


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        err["details"] = details
    return {"error": err}


def _quota_headers(quota: ratelimit.Quota | None) -> dict[str, str]:
    if quota is None:
        return {}
    return {"X-RateLimit-Limit": str(quota.limit), "X-RateLimit-Remaining": str(quota.remaining),
            "X-RateLimit-Reset": str(quota.reset), "X-RateLimit-Resource": quota.rate}


def error_response(exc: DomainError) -> flask.Response:
    """The JSON answer of a domain error: its status from STATUS, and the headers its kind implies."""
    headers: dict[str, str] = {}
    if isinstance(exc, errors.RateLimited):
        headers.update(_quota_headers(exc.quota))
    if exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, errors.Unauthenticated):
        headers["WWW-Authenticate"] = exc.challenge
    if isinstance(exc, MethodNotAllowed):
        headers["Allow"] = exc.allow
    return json_response(error_body(exc.code, exc.message, exc.details), status_of(exc), headers)


@dataclass
class Route:
    method: str
    path: str
    handler: Callable
    access: Access
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    statuses: tuple[int, ...]  # success statuses; the first is the default
    allow_suspended: bool
    summary: str
    response: type[BaseModel] | None = None  # what a success answers (None: no body, e.g. 204)
    machine: Callable[[], dict] | None = None  # machine access: the google_identity arguments, read lazily
    idempotent: bool = False  # honours Idempotency-Key (POSTs that create or spend)
    rate: str = "default"  # rate class (shared/ratelimit.py, config.RATE_LIMITS)
    etag: bool = False  # GET answers ETag; writes take If-Match (checked by the handler with precondition())
    text: bool = False  # may also answer text/plain (e.g. `?format=text`), documented beside the JSON model
    reads: bool = False  # a POST that only reads (a query too big for a URL): not audited as a change
    # the body's shape depends on a path parameter (an API key's name, a plugin's id): () -> (param, {value:
    # body model}); the document has one path per value (JSON Schema cannot look at the path); the handler checks
    variants: Callable[[], tuple[str, dict[str, type[BaseModel]]]] | None = None
    regex: re.Pattern = field(init=False)
    specificity: tuple[int, ...] = field(init=False)  # per segment 0 static, 1 variable: smaller wins

    def __post_init__(self):
        pattern = _PARAM.sub(lambda m: f"(?P<{m.group(1)}>[^/]+)", self.path.rstrip("/") or "")
        self.regex = re.compile(f"^{pattern}/?$")
        self.specificity = tuple(int(bool(_PARAM.search(seg))) for seg in self.path.strip("/").split("/"))


@dataclass
class Request:
    """What a handler gets: the raw request, path params, validated body/query and the caller."""

    raw: flask.Request
    params: dict[str, str]
    body: Any
    query: Any
    caller: Any  # shared.auth.Caller | None
    if_match: tuple[str, ...] | None = None  # etag routes: the If-Match entity tags ("*" for any)
    if_match_checked: bool = False

    @property
    def by_admin(self) -> bool:
        """An admin is calling (a public route may also be called by anyone signed in, or by no one)."""
        return bool(self.caller and self.caller.is_admin)


def etag_of(value: Any) -> str:
    """The strong entity tag of a resource as the API answers it (fields in `etag_ignores` left out)."""
    payload = to_payload(value)
    if isinstance(payload, dict):
        payload = {k: v for k, v in payload.items() if k not in getattr(value, "etag_ignores", ())}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return '"' + hashlib.sha256(text.encode()).hexdigest()[:32] + '"'


def precondition(req: Request, current: Any) -> None:
    """The If-Match check of a write, called inside its transaction with the resource as it is now
    (None: it does not exist). 412 when the client's copy is stale; nothing when no If-Match came."""
    req.if_match_checked = True
    tags = req.if_match
    if tags is None:
        return
    if current is None or ("*" not in tags and etag_of(current) not in tags):
        raise errors.PreconditionFailed("precondition_failed", "the resource changed since you read it "
                                        "(If-Match does not match its ETag); read it again")


def _integral(value: Any) -> Any:
    """5.0 is the integer 5 to JSON Schema (and so to the document): as such to the strict models too."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, list):
        return [_integral(v) for v in value]
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    return value


def _entity_tags(header: str) -> tuple[str, ...]:
    """The entity tags of an If-Match / If-None-Match ("*" for any). Something that is not an entity tag
    matches no resource: a write with it answers 412 (RFC 9110: the condition is false), a GET the full answer."""
    if header.strip() == "*":
        return ("*",)
    matches = (_ETAG.match(part.strip()) for part in header.split(","))
    return tuple(f'"{m.group(1)}"' for m in matches if m)  # weak comparison for If-None-Match, strong tags anyway


def _entity_tags_or_none(header: str | None) -> tuple[str, ...]:
    return _entity_tags(header) if header else ()


# response models document the API (OpenAPI); built on first use, not at import: a faster cold start
_DEFERRED = ConfigDict(defer_build=True)


class Reply(BaseModel):
    """Base of the response models (the `response=` of a route): their schema is built on first use."""
    model_config = _DEFERRED


@cache
def page_of(model: type[BaseModel]) -> type[BaseModel]:
    """Response model of a paginated list of `model`."""
    return create_model(f"{model.__name__}Page", __config__=_DEFERRED, items=(list[model], ...),  # type: ignore[valid-type]
                        nextCursor=(str | None, ...))


@cache
def list_of(model: type[BaseModel]) -> type[BaseModel]:
    """Response model of a complete (small) list of `model`."""
    return create_model(f"{model.__name__}List", __config__=_DEFERRED,
                        items=(list[model], ...))  # type: ignore[valid-type]  # a model made at run time


def unavailable(exc: BaseException) -> errors.Unavailable:
    """The 503 of a request whose dependency did not answer in time (or is down)."""
    if isinstance(exc, faults.BudgetExhausted):
        message = f"{exc.what} did not answer within this request's time budget; try again"
    else:
        message = "a service this request depends on is unavailable or timed out; try again"
    return errors.Unavailable("unavailable", message, retry_after=faults.RETRY_AFTER_S)


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> flask.Response:
    body = "" if status == 204 else json.dumps(payload, separators=(",", ":"), default=str)
    resp = flask.Response(body, status=status, mimetype="application/json")
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def text_response(text: str, status: int = 200) -> flask.Response:
    return flask.Response(text, status=status, mimetype="text/plain")


def to_payload(value: Any) -> Any:
    if hasattr(value, "to_api"):
        return value.to_api()
    if isinstance(value, BaseModel):
        return value.model_dump(by_alias=True, mode="json")
    if isinstance(value, list):
        return [to_payload(v) for v in value]
    if isinstance(value, dict):
        return {k: to_payload(v) for k, v in value.items()}
    return value


def json_errors(functions_framework) -> None:
    """Make the function's Flask app answer JSON also for what it rejects before our routing
    (e.g. a path its URL map refuses). Call at import of a function module."""
    from werkzeug.exceptions import HTTPException

    def handle(exc: HTTPException):
        code = (exc.name or "error").lower().replace(" ", "_")
        return json_response(error_body(code, exc.description or code), exc.code or 500)

    register = getattr(functions_framework, "errorhandler", None)  # set while create_app loads the module
    if register is not None:
        register(HTTPException)(handle)


class TasksSettings(Protocol):
    """A Cloud Tasks worker's settings: its queue, the account its tasks' OIDC token is for
    (TASKS_INVOKER_SA) and the worker's own URL (the token's audience)."""
    @property
    def queue(self) -> str: ...
    @property
    def invoker_sa(self) -> str | None: ...
    @property
    def worker_url(self) -> str | None: ...


class SchedulerSettings(Protocol):
    """A scheduled function's settings: the account of the Cloud Scheduler job's OIDC token and its
    audience (the function's own URL)."""
    @property
    def scheduler_sa(self) -> str | None: ...
    @property
    def scheduler_audience(self) -> str | None: ...


def tasks_caller(settings: Callable[[], TasksSettings]) -> Callable[[], dict]:
    """`machine=` of a Cloud Tasks worker's route (access="cloud_tasks"), read from its settings when called."""
    def machine() -> dict:
        s = settings()
        return {"queue": s.queue, "account": s.invoker_sa, "audience": s.worker_url}
    return machine


def scheduler_caller(settings: Callable[[], SchedulerSettings]) -> Callable[[], dict]:
    """`machine=` of a route Cloud Scheduler calls (access="scheduler"), read from its settings when called."""
    def machine() -> dict:
        s = settings()
        return {"account": s.scheduler_sa, "audience": s.scheduler_audience}
    return machine


class Api:
    def __init__(self, name: str, description: str = "",
                 schemes: dict[str, Callable[[str, Route], Any]] | None = None):
        """`schemes`: extra Authorization schemes this function accepts besides Bearer,
        each a function (token, route) -> caller (e.g. the bots' `Bot <token>`)."""
        self.name = name
        self.description = description
        self.routes: list[Route] = []
        self.schemes = {k.lower(): v for k, v in (schemes or {}).items()}

    def route(self, method: str, path: str, *, access: Access = "user", body: type[BaseModel] | None = None,
              query: type[BaseModel] | None = None, status: int | tuple[int, ...] = 200,
              allow_suspended: bool = False, response: type[BaseModel] | None = None,
              machine: Callable[[], dict] | None = None, idempotent: bool = False, rate: str = "default",
              etag: bool = False, text: bool = False, reads: bool = False,
              variants: Callable[[], tuple[str, dict[str, type[BaseModel]]]] | None = None):
        """Declare a route. A handler returning (value, status) must use one of `status`. Machine
        access ("cloud_tasks", "scheduler") needs `machine`: () -> the queue/account/audience to check
        (`tasks_caller(settings)`, `scheduler_caller(settings)`).
        `idempotent`, `rate`, `etag`: see the module docstring. `text`: the handler may also return a
        text/plain flask.Response (see `text_response`). `reads`: a POST that changes nothing."""
        statuses = (status,) if isinstance(status, int) else tuple(status)
        if (access in MACHINE_ACCESS) != (machine is not None):
            raise ValueError(f"{path}: access {access!r} and machine= go together")
        if rate not in config.RATE_LIMITS:
            raise ValueError(f"{path}: unknown rate class {rate!r}")
        if idempotent and (method.upper() != "POST" or access not in ("user", "admin")):
            raise ValueError(f"{path}: idempotent= is for POSTs of signed-in callers")

        def register(fn: Callable) -> Callable:
            summary = (fn.__doc__ or fn.__name__).strip().splitlines()[0]
            self.routes.append(Route(method.upper(), path, fn, access, body, query, statuses,
                                     allow_suspended, summary, response, machine, idempotent, rate, etag,
                                     text, reads, variants))
            return fn
        return register

    # entry point
    def __call__(self, request: flask.Request) -> flask.Response:
        rid = request.headers.get("X-Request-Id", "")
        rid = rid if _REQUEST_ID.match(rid) else uuid.uuid4().hex
        tokens = (logs.request_id.set(rid), logs.trace.set(self._trace(request)))
        started = time.perf_counter()
        seen: dict[str, Any] = {}  # what _dispatch learnt: the route (access line), params, caller (audit log)
        try:
            with faults.budget():  # every outside call of this request ends inside the function's deadline
                try:
                    resp = self._dispatch(request, seen)
                except DomainError as exc:
                    resp = error_response(exc)
                except Exception as exc:
                    resp = self._failure(exc)
                if seen.get("caller") is not None:  # a signed-in caller: one audit write (shared/audit.py)
                    from shared import audit

                    audit.record(self.name, seen["route"], request, seen.get("params", {}), seen["caller"], resp, rid)
        except Exception as exc:  # the budget could not open (configuration): still a JSON answer
            resp = self._failure(exc)
        for k, v in _quota_headers(seen.get("quota")).items():  # rate-limit headers, also on errors
            resp.headers.setdefault(k, v)
        resp.headers["X-Request-Id"] = rid
        self._cors(request, resp)
        self._access_line(request, seen.get("route"), resp, started)
        logs.request_id.reset(tokens[0])
        logs.trace.reset(tokens[1])
        return resp

    def _access_line(self, request: flask.Request, route: Route | None, resp: flask.Response, started: float):
        """The one log line of a request: the function, the path as the client sent it (the function's
        name first, as deployed) and the route it reached (as the OpenAPI document names it)."""
        path = f"/{self.name}{request.path.rstrip('/')}"
        query = request.query_string.decode("latin-1")
        template = f"/{self.name}{route.path.rstrip('/')}" if route else None
        log.info("%s %s %s %s", self.name, request.method, path, resp.status_code, extra={
                 "function": self.name, "route": template, "httpRequest": {
                     "requestMethod": request.method, "requestUrl": path + (f"?{query}" if query else ""),
                     "status": resp.status_code, "latency": f"{time.perf_counter() - started:.6f}s",
                     "userAgent": request.headers.get("User-Agent", ""),
                 }})

    @staticmethod
    def _failure(exc: Exception) -> flask.Response:
        if faults.is_transient(exc):  # a dependency timed out or is down: try again later
            log.warning("dependency unavailable: %s", faults.describe(exc))
            return error_response(unavailable(exc))
        log.exception("unhandled error")
        return json_response(error_body("internal", "internal error"), 500)

    @staticmethod
    def _trace(request: flask.Request) -> str | None:
        header = request.headers.get("X-Cloud-Trace-Context", "")
        if not header:
            return None
        return f"projects/{config.get().project}/traces/{header.split('/')[0]}"

    def _match(self, path: str) -> tuple[list[tuple[Route, dict]], set[str]]:
        path = path.rstrip("/")
        found = []
        for r in self.routes:
            m = r.regex.fullmatch(path)  # not match: its `$` also matches before a final "\n"
            if m:
                found.append((r, m.groupdict()))
        # static segments beat variables whatever the declaration order (/users/me before /users/{id})
        found.sort(key=lambda rp: rp[0].specificity)
        return found, {r.method for r, _ in found}

    def _dispatch(self, request: flask.Request, seen: dict) -> flask.Response:
        matches, methods = self._match(request.path)
        if request.method == "OPTIONS":
            return self._preflight(request, methods)
        if not matches:
            raise errors.NotFound("not_found", f"no route {request.path}")
        chosen = [(r, p) for r, p in matches if r.method == request.method]
        if not chosen:
            allow = ", ".join(sorted(methods | {"OPTIONS"}))
            raise MethodNotAllowed("method_not_allowed", f"{request.method} not allowed here", allow=allow)
        route, params = chosen[0]
        seen["route"] = route
        caller = self._authenticate(request, route)
        seen.update(params=params, caller=caller)
        seen["quota"] = ratelimit.check(caller, route.rate)  # before the body is even read
        key = idempotency.key_of(request) if route.idempotent else None
        query = self._parse_query(request, route)
        body = self._parse_body(request, route)
        req = Request(request, params, body, query, caller)
        if route.etag and request.method != "GET" and request.headers.get("If-Match") is not None:
            req.if_match = _entity_tags(request.headers["If-Match"])
        if key is None:
            return self._respond(route, req)
        fp = idempotency.fingerprint(request.method, request.path, body)
        return idempotency.run(self.name, ratelimit.scope(caller) or "", key, fp, lambda: self._respond(route, req))

    def _respond(self, route: Route, req: Request) -> flask.Response:
        """Run the handler and make its answer (errors too: an idempotent request stores them)."""
        try:
            result = route.handler(req)
        except DomainError as exc:
            return error_response(exc)
        if req.if_match is not None and not req.if_match_checked:
            raise RuntimeError(f"{route.path}: If-Match sent but the handler never checked it")
        if isinstance(result, flask.Response):
            return result
        status = route.statuses[0]
        if isinstance(result, tuple):
            result, status = result
            if status not in route.statuses:  # the OpenAPI document promises only the declared ones
                raise RuntimeError(f"{route.path}: undeclared status {status}")
        payload = to_payload(result)
        if not route.etag or result is None:
            return json_response(payload, status)
        tag = etag_of(result)
        if req.raw.method == "GET" and tag in _entity_tags_or_none(req.raw.headers.get("If-None-Match")):
            return flask.Response(status=304, headers={"ETag": tag})
        return json_response(payload, status, {"ETag": tag})

    def _authenticate(self, request: flask.Request, route: Route) -> Any:
        if route.access == "custom":
            return None  # the handler checks its own proof (the Stripe signature)
        if route.access in MACHINE_ACCESS:
            return self._machine(request, route)
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        extra = self.schemes.get(scheme.lower())
        if extra is not None and token.strip():
            return extra(token.strip(), route)
        if route.access == "public" and "Authorization" not in request.headers:
            return None  # anonymous on a public route: nothing to check (shared.auth is not even loaded)
        # imported here: keeps the token checks and user repositories out of start-up for public routes
        from shared import auth

        return auth.authenticate(request, route.access, route.allow_suspended)

    def _machine(self, request: flask.Request, route: Route) -> Any:
        """Cloud Tasks: the token's claims (None: the local stand-in's tokenless delivery, APP_ENV=local).
        Scheduler: ("scheduler", None) or ("admin", user id)."""
        from shared import google_identity

        machine = route.machine or dict  # declared with the route (Api.route checks it)
        try:
            if route.access == "cloud_tasks":
                return google_identity.cloud_task(request, what=self.name, **machine())
            return google_identity.scheduler_or_admin(request, **machine())
        except DomainError as exc:
            log.warning("%s caller refused", self.name, extra={"code": exc.code, "reason": exc.message})
            raise

    @staticmethod
    def _parse_query(request: flask.Request, route: Route) -> Any:
        if route.query is None:
            return None
        args = request.args.to_dict(flat=True)
        try:
            return route.query.model_validate(args)
        except ValidationError as exc:
            raise validation_error(exc, "query") from None

    @staticmethod
    def _parse_body(request: flask.Request, route: Route) -> Any:
        if route.body is None:
            return None
        limit = config.get().max_body_bytes
        if (request.content_length or 0) > limit:
            raise errors.TooLarge("payload_too_large", f"body larger than {limit} bytes")
        raw = request.get_data(cache=True)
        if len(raw) > limit:
            raise errors.TooLarge("payload_too_large", f"body larger than {limit} bytes")
        if request.mimetype != "application/json":
            raise UnsupportedMediaType("unsupported_media_type", "send the body as application/json")
        try:
            data = jsonbody.loads(raw or b"null")
        except ValueError as exc:
            raise errors.Malformed("invalid_json", f"body is not acceptable JSON: {exc}") from None
        if not isinstance(data, dict):
            raise errors.Malformed("invalid_json", "body must be a JSON object")
        try:  # strict, as the document says: no 0 for false, no "5" for 5 (JSON's own strings for dates)
            return route.body.model_validate_json(json.dumps(_integral(data)), strict=True)
        except ValidationError as exc:
            raise validation_error(exc, "body") from None

    # CORS
    @staticmethod
    def _allowed_origin(request: flask.Request) -> str | None:
        origin = (request.headers.get("Origin") or "").rstrip("/")
        allowed = config.get().cors_origins
        return origin if origin and ("*" in allowed or origin in allowed) else None

    def _preflight(self, request: flask.Request, methods: set[str]) -> flask.Response:
        if not methods:
            raise errors.NotFound("not_found", f"no route {request.path}")
        if request.headers.get("Origin") and not self._allowed_origin(request):
            raise errors.Forbidden("origin_not_allowed", "this origin may not call the API")
        resp = flask.Response(status=204)
        resp.headers["Access-Control-Allow-Methods"] = ", ".join(sorted(methods | {"OPTIONS"}))
        resp.headers["Access-Control-Allow-Headers"] = ", ".join(ALLOW_HEADERS)
        resp.headers["Access-Control-Max-Age"] = "3600"
        return resp

    def _cors(self, request: flask.Request, resp: flask.Response) -> None:
        origin = self._allowed_origin(request)
        resp.headers.add("Vary", "Origin")
        if origin:
            resp.headers["Access-Control-Allow-Origin"] = origin
            resp.headers["Access-Control-Expose-Headers"] = ", ".join(EXPOSE_HEADERS)
