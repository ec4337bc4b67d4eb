"""Serves every function on one port: /<functionName>/... goes to that function,
built by functions-framework exactly as Cloud Functions builds it."""
from __future__ import annotations

import json
import threading
from contextlib import contextmanager

import functions_framework
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.serving import WSGIRequestHandler
from werkzeug.wrappers import Response

from devtools import openapi
from devtools.stack import ROOT
from functions import FUNCTIONS


def index_app(environ, start_response):
    """/ lists the functions; /openapi.json is the API document, /docs a page to browse it."""
    path = environ.get("PATH_INFO", "/")
    if path == "/openapi.json":
        resp = Response(json.dumps(openapi.document()), mimetype="application/json")
    elif path in ("/docs", "/docs/"):
        resp = Response(openapi.DOCS_PAGE, mimetype="text/html")
    elif path.startswith("/docs/") and path[6:] in openapi.SWAGGER_FILES:  # a fixed list: no path from the URL
        name = path[6:]
        resp = Response((openapi.SWAGGER_UI / name).read_bytes(), mimetype=openapi.SWAGGER_FILES[name])
        resp.headers["Cache-Control"] = "public, max-age=3600"
    elif path in ("", "/"):
        body = {"functions": {f.name: f"/{f.name}" for f in FUNCTIONS},
                "openapi": "/openapi.json", "docs": "/docs"}
        resp = Response(json.dumps(body), mimetype="application/json")
    else:
        resp = Response(json.dumps({"error": {"code": "not_found", "message": "no such function"}}),
                        status=404, mimetype="application/json")
    return resp(environ, start_response)


class Dispatcher(DispatcherMiddleware):
    """Like werkzeug's, but /name (no trailing slash) reaches the function as "/",
    as Cloud Functions does, instead of a redirect."""

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path in self.mounts:
            environ["PATH_INFO"] = path + "/"
        return super().__call__(environ, start_response)


class JsonErrorHandler(WSGIRequestHandler):
    """The HTTP server's own refusals (a request line over 64 KiB: 414, too many or too long
    headers: 431, a malformed request line: 400), before any function sees the request, answered
    in the project's JSON error format instead of http.server's HTML page."""

    def log_request(self, code="-", size="-") -> None:
        """No second line per request: each function writes the access line (shared/http.py), naming
        itself and the route, as Cloud Logging shows it; the server's own refusals log in send_error."""

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        short = self.responses.get(code, ("error",))[0]
        error = {"code": short.lower().replace("-", "_").replace(" ", "_"), "message": message or short}
        body = json.dumps({"error": error}).encode()
        self.log_error("code %d, message %s", code, message)
        self.send_response(code, short)
        self.send_header("Connection", "close")
        self.close_connection = True
        if code >= 200 and code not in (204, 304):
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and code >= 200 and code not in (204, 304):
            self.wfile.write(body)


def build_app():
    mounts = {f"/{f.name}": functions_framework.create_app(target=f.name, source=str(ROOT / f.source))
              for f in FUNCTIONS}
    return Dispatcher(index_app, mounts)


def json_app(payload):
    """A WSGI app answering every GET with `payload` as JSON (e.g. a key set for token checks)."""
    body = json.dumps(payload)
    return lambda environ, start_response: Response(body, mimetype="application/json")(environ, start_response)


@contextmanager
def serving(app=None):
    """The app (default: every function) on a real threaded HTTP server on 127.0.0.1; yields its URL."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app or build_app(), threaded=True, request_handler=JsonErrorHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
