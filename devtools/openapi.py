"""The OpenAPI 3.1 document of every HTTP function, generated from the routes and the
same pydantic models the code validates with. `make dev` serves it at /openapi.json."""
from __future__ import annotations

import ast
import importlib
from functools import lru_cache
from typing import Any

from pydantic import BaseModel

from devtools.catalog import FUNCTIONS
from devtools.stack import ROOT
from shared.http import Api

ERROR_SCHEMA = {
    "type": "object", "required": ["error"], "additionalProperties": False,
    "properties": {"error": {
        "type": "object", "required": ["code", "message"],
        "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "details": {}},
    }},
}


def function_apis() -> list[Api]:
    """The Api of every HTTP function, in catalog order: the Api named like the function in the
    shared.api module(s) its module imports from (read from its source, so the function module
    itself is not executed again)."""
    apis = []
    for name, src, _ in FUNCTIONS:
        for node in ast.walk(ast.parse((ROOT / src).read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("shared.api."):
                module = importlib.import_module(node.module)
                apis += [obj for obj in vars(module).values() if isinstance(obj, Api) and obj.name == name]
    return apis


class Components:
    def __init__(self):
        self.schemas: dict[str, Any] = {"Error": ERROR_SCHEMA}

    def ref(self, model: type[BaseModel], mode: str) -> dict:
        schema = model.model_json_schema(by_alias=True, mode=mode, ref_template="#/components/schemas/{model}")
        for name, sub in schema.pop("$defs", {}).items():
            self._add(name, sub)
        name = model.__name__
        self._add(name, schema)
        return {"$ref": f"#/components/schemas/{name}"}

    def _add(self, name: str, schema: dict) -> None:
        if name in self.schemas and self.schemas[name] != schema:
            raise ValueError(f"two different models are both named {name!r}")
        self.schemas[name] = schema


def _not_null(prop: dict) -> dict:
    """A query string cannot carry null: `X | None = None` is documented as an optional X."""
    prop = {k: v for k, v in prop.items() if not (k == "default" and v is None)}
    options = [o for o in prop.pop("anyOf", []) if o != {"type": "null"}]
    if len(options) == 1:
        prop.update(options[0])
    elif options:
        prop["anyOf"] = options
    return prop


def query_parameters(model: type[BaseModel]) -> list[dict]:
    schema = model.model_json_schema(mode="validation")
    required = set(schema.get("required", []))
    return [{"name": name, "in": "query", "required": name in required, "schema": _not_null(prop)}
            for name, prop in schema["properties"].items()]


def operation(api: Api, route, comps: Components) -> dict:
    op: dict[str, Any] = {
        "operationId": f"{api.name}.{route.handler.__name__}",
        "summary": route.summary,
        "tags": [api.name],
        "parameters": [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                       for p in route.regex.groupindex],
    }
    if route.query is not None:
        op["parameters"] += query_parameters(route.query)
    if route.body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": comps.ref(route.body, "validation")}}}
    ok: dict[str, Any] = {"description": "success"}
    if route.response is not None:
        ok["content"] = {"application/json": {"schema": comps.ref(route.response, "serialization")}}
    if route.text:
        ok.setdefault("content", {})["text/plain"] = {"schema": {"type": "string"}}
    redirect = {"description": "redirect", "headers": {"Location": {"schema": {"type": "string"}}}}
    op["responses"] = {**{str(s): redirect if 300 <= s < 400 else ok for s in route.statuses}, "default": {
        "description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}
    schemes = [{"bearer": []}] + [{f"{name}Token": []} for name in sorted(api.schemes)]  # e.g. the bots' "Bot"
    if route.access == "public":
        op["security"] = [{}, *schemes]  # a token is optional (admins see more)
    elif route.access in ("custom", "cloud_tasks"):
        op["security"] = [{}]  # a Google OIDC token (Cloud Tasks) or the handler's own proof (Stripe signature)
    elif route.access == "scheduler":
        op["security"] = [{}, {"bearer": []}]  # Cloud Scheduler's OIDC token, or an admin's bearer token
    else:
        op["security"] = schemes
    return op


def openapi_path(api: Api, route) -> str:
    return f"/{api.name}{route.path.rstrip('/')}"


def template_of(method: str, path: str) -> str | None:
    """The documented path a concrete request path is served by (/cmsPages/about -> /cmsPages/{slug})."""
    name, _, rest = path.split("?")[0].lstrip("/").partition("/")
    for api in function_apis():
        if api.name == name:
            matches, _ = api._match("/" + rest)
            for route, _params in matches:
                if route.method == method.upper():
                    return openapi_path(api, route)
    return None


@lru_cache(maxsize=1)
def document() -> dict:
    comps = Components()
    paths: dict[str, dict] = {}
    for api in function_apis():
        for route in api.routes:
            paths.setdefault(openapi_path(api, route), {})[route.method.lower()] = operation(api, route, comps)
    return {
        "openapi": "3.1.0",
        "info": {"title": "OpenClaw hosting backend", "version": "1.0.0",
                 "description": "Every HTTP Cloud Function; each path starts with the function's name."},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {"schemas": comps.schemas,
                       "securitySchemes": {
                           "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                           # a deployment's bot: `Authorization: Bot <token>` (knowledge and media only)
                           "botToken": {"type": "apiKey", "in": "header", "name": "Authorization",
                                        "description": "Bot <token>: a deployment's bot credential"},
                       }},
    }


DOCS_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>OpenClaw backend API</title>
<link rel="stylesheet" href="https://unpkg.com/swagger-ui-dist@5/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="https://unpkg.com/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "/openapi.json", dom_id: "#ui"});</script>
<noscript>The document itself: <a href="/openapi.json">/openapi.json</a></noscript>
</body></html>"""
