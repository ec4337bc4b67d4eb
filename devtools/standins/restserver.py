"""Base of the small local HTTP servers that stand in for Google REST APIs which have no
emulator (Compute Engine, Secret Manager): a regex router, Google-style JSON errors, and
fault injection that tests drive over HTTP (`POST /_faults`), so a test can make a call
fail, fail after taking effect, be slow, or hang past the client's timeout."""
from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

STATUS_NAMES = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND", 409: "ALREADY_EXISTS",
                412: "FAILED_PRECONDITION", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}


class HttpError(Exception):
    def __init__(self, status: int, message: str, reason: str = ""):
        super().__init__(message)
        self.status, self.message, self.reason = status, message, reason


def error_response(status: int, message: str, reason: str = "") -> Response:
    body = {"error": {"code": status, "message": message, "status": STATUS_NAMES.get(status, "UNKNOWN"),
                      "errors": [{"message": message, "domain": "global", "reason": reason or "backendError"}]}}
    return Response(json.dumps(body), status=status, mimetype="application/json")


@dataclass
class Fault:
    """What to do to the next `times` calls whose operation name matches `match` (regex).
    modes: error (refuse), after (do it, then answer an error: "failed mid-way"),
    slow (sleep `delay` then answer normally), hang (sleep `delay`, then answer an error),
    op_error (Compute only: the long-running operation ends with an error)."""
    match: str
    mode: str
    status: int = 503
    delay: float = 0.0
    times: int = 1
    message: str = "injected fault"


class RestServer:
    def __init__(self):
        self.routes: list[tuple[str, re.Pattern, Callable]] = []
        self.faults: list[Fault] = []
        self.lock = threading.RLock()
        self.calls: dict[str, int] = {}

    def route(self, method: str, pattern: str, op: str):
        def register(fn):
            self.routes.append((method, re.compile(f"^{pattern}$"), op, fn))
            return fn
        return register

    def take_fault(self, op: str) -> Fault | None:
        with self.lock:
            for f in self.faults:
                if f.times > 0 and re.fullmatch(f.match, op):
                    f.times -= 1
                    return f
        return None

    def control(self, request: Request) -> Response:
        if request.path == "/_faults":
            with self.lock:
                if request.method == "DELETE":
                    self.faults.clear()
                else:
                    self.faults.append(Fault(**request.get_json()))
            return Response("{}", mimetype="application/json")
        if request.path == "/_calls":
            with self.lock:
                return Response(json.dumps(self.calls), mimetype="application/json")
        return self.control_extra(request)

    def control_extra(self, request: Request) -> Response:
        return error_response(404, f"no control route {request.path}")

    def __call__(self, environ, start_response):
        request = Request(environ)
        if request.path.startswith("/_"):
            return self.control(request)(environ, start_response)
        return self.dispatch(request)(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        for method, regex, op, fn in self.routes:  # noqa: B007  (the matching route is used after the loop)
            m = regex.match(request.path)
            if m and method == request.method:
                break
        else:
            return error_response(404, f"no route {request.method} {request.path}", "notFound")
        with self.lock:
            self.calls[op] = self.calls.get(op, 0) + 1
        fault = self.take_fault(op)
        if fault and fault.mode in ("slow", "hang"):
            time.sleep(fault.delay)
        if fault and fault.mode in ("error", "hang"):
            return error_response(fault.status, fault.message)
        try:
            result = fn(request, fault=fault, **m.groupdict())
        except HttpError as exc:
            return error_response(exc.status, exc.message, exc.reason)
        if fault and fault.mode == "after":
            return error_response(fault.status, fault.message)
        return Response(json.dumps(result), mimetype="application/json")

    def serve(self, port: int) -> None:
        make_server("127.0.0.1", port, self, threaded=True).serve_forever()
