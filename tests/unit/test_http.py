"""The router without a stack: which route a path reaches, 405 with Allow, and the log line format.
The HTTP conventions through every function (CORS, request ids, errors): tests/test_http.py."""
import json
import logging

import flask

from shared.http import Api
from shared.logs import JsonFormatter


def call(app: Api, path: str, method: str = "GET") -> flask.Response:
    with flask.Flask(__name__).test_request_context(path, method=method):
        return app(flask.request)


def test_static_segments_beat_variables_whatever_the_declaration_order():
    for order in ("variable first", "static first"):
        app = Api("t")

        def me(req):
            return {"route": "me"}

        def one(req):
            return {"route": "one", "id": req.params["id"]}

        def rename(req):
            return {"route": "rename"}

        routes = [("GET", "/users/{id}", one), ("GET", "/users/me", me), ("POST", "/users/{id}", rename)]
        for method, path, fn in (routes if order == "variable first" else routes[::-1]):
            app.route(method, path, access="custom")(fn)
        assert json.loads(call(app, "/users/me").get_data()) == {"route": "me"}, order
        assert json.loads(call(app, "/users/u1/").get_data()) == {"route": "one", "id": "u1"}, order
        resp = call(app, "/users/me", "DELETE")
        assert resp.status_code == 405 and resp.headers["Allow"] == "GET, OPTIONS, POST", order


def test_unknown_paths_are_404_json_and_variables_take_one_segment():
    app = Api("t")
    app.route("GET", "/items/{itemId}", access="custom")(lambda req: {"id": req.params["itemId"]})
    for path in ("/items", "/items/a/b", "/other"):
        resp = call(app, path)
        assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "not_found", path
    assert call(app, "/items/a%20b").get_json() == {"id": "a b"}


def test_a_route_needs_a_known_rate_class_and_machine_access_its_check():
    import pytest

    with pytest.raises(ValueError, match="rate class"):
        Api("t").route("GET", "/", access="custom", rate="nope")(lambda req: None)
    with pytest.raises(ValueError, match="idempotent"):
        Api("t").route("GET", "/", access="user", idempotent=True)(lambda req: None)


def test_log_lines_are_cloud_logging_json_with_request_id():
    from shared import logs

    token = logs.request_id.set("rid-123456")
    try:
        record = logging.LogRecord("x", logging.WARNING, __file__, 1, "hello %s", ("you",), None)
        record.userId = "u1"
        line = json.loads(JsonFormatter().format(record))
    finally:
        logs.request_id.reset(token)
    assert line["severity"] == "WARNING" and line["message"] == "hello you"
    assert line["requestId"] == "rid-123456" and line["userId"] == "u1"
    assert line["logging.googleapis.com/labels"] == {"requestId": "rid-123456"}
