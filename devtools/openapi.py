"""The OpenAPI 3.1 document of every HTTP function, generated from the routes and the
same pydantic models the code validates with. `make dev` serves it at /openapi.json."""
from __future__ import annotations

import importlib
import json
from functools import lru_cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema

from devtools.stack import ROOT
from functions import FUNCTIONS
from shared import idempotency
from shared.http import Api

ERROR_SCHEMA = {
    "type": "object", "required": ["error"], "additionalProperties": False,
    "properties": {"error": {
        "type": "object", "required": ["code", "message"],
        "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "details": {}},
    }},
}


def function_apis() -> list[Api]:
    """The Api of every HTTP function, in the function table's order: its shared.api module's `api`."""
    return [importlib.import_module(f.module).api for f in FUNCTIONS if f.trigger == "http"]


# shared.api.inputs.CONTROL (lone surrogates aside: no UTF-8 text holds them, and a class naming them makes
# schemathesis drop the whole pattern)
_CONTROL = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
NO_CONTROL = f"^[^{_CONTROL}]*$"
TEXT = f"^[^{_CONTROL}]*[^\\s{_CONTROL}][^{_CONTROL}]*$"  # and something besides white space


class _Contract(GenerateJsonSchema):
    """What a typed client (openapi-typescript) must read from the document:
    - responses: every field the server sends is required (models serialise every field, defaults too;
      a field left out of the answer is marked `exclude`), so `email` is a `string`, not `string | undefined`;
    - requests: a field with a default stays optional; its default is said in the description, not as
      `default` (openapi-typescript makes a property with a `default` required, even in a request)."""

    def field_is_required(self, field, total) -> bool:
        if self.mode == "serialization":
            return not field.get("serialization_exclude")
        return super().field_is_required(field, total)

    def str_schema(self, schema):
        """Request strings: what shared.api.inputs.Strict refuses in every string (control characters, lone
        surrogates), and a required text must be more than white space (the server strips it)."""
        out = super().str_schema(schema)
        if self.mode == "validation":
            rule = TEXT if out.get("minLength", 0) >= 1 else NO_CONTROL
            if "pattern" in out:
                out["allOf"] = [{"pattern": rule}]
            else:
                out["pattern"] = rule
        return out

    def default_schema(self, schema):
        out = super().default_schema(schema)
        if self.mode == "validation" and "default" in out:
            default = out.pop("default")
            if default is not None:
                out["description"] = (out.get("description", "") + f" (default: {json.dumps(default)})").strip()
        return out


class Components:
    def __init__(self):
        self.schemas: dict[str, Any] = {"Error": ERROR_SCHEMA}

    def ref(self, model: type[BaseModel], mode: str) -> dict:
        schema = model.model_json_schema(by_alias=True, mode=mode, ref_template="#/components/schemas/{model}",
                                         schema_generator=_Contract)
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
    schema = model.model_json_schema(mode="validation", schema_generator=_Contract)
    required = set(schema.get("required", []))
    props = {name: _not_null(prop) for name, prop in schema["properties"].items()}
    if "oneOf" in schema:  # parameters that depend on each other (e.g. ?source= or ?all=true): OpenAPI's way is
        # one object parameter, exploded into the query string as its properties (style form), with the rule
        whole = {"type": "object", "properties": props, "additionalProperties": False, "oneOf": schema["oneOf"]}
        return [{"name": model.__name__, "in": "query", "required": True, "style": "form", "explode": True,
                 "schema": {**whole, **({"required": sorted(required)} if required else {})}}]
    return [{"name": name, "in": "query", "required": name in required, "schema": prop}
            for name, prop in props.items()]


def operation(api: Api, route, comps: Components, body: type[BaseModel] | None = None,
              fixed: tuple[str, str] = ("", "")) -> dict:
    """`body`, `fixed`: a variant of the route (Route.variants): its body, the path parameter and value it fixes."""
    suffix = "." + fixed[1].replace("-", "_") if fixed[0] else ""
    op: dict[str, Any] = {
        "operationId": f"{api.name}.{route.handler.__name__}{suffix}",
        "summary": route.summary,
        "tags": [api.name],
        "parameters": [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                       for p in route.regex.groupindex if p != fixed[0]],
    }
    if route.query is not None:
        op["parameters"] += query_parameters(route.query)
    op["parameters"] += header_parameters(route)
    if body or route.body:
        op["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": comps.ref(body or route.body, "validation")}}}
    ok: dict[str, Any] = {"description": "success", "headers": response_headers(route)}
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
    elif route.access == "custom":
        op["security"] = [{"stripeSignature": []}]  # the handler's own proof: 401 without a valid one
    elif route.access == "cloud_tasks":
        op["security"] = [{}]  # a Google OIDC token, checked by the router
    elif route.access == "scheduler":
        op["security"] = [{}, {"bearer": []}]  # Cloud Scheduler's OIDC token, or an admin's bearer token
    else:
        op["security"] = schemes
    return op


_STRING = {"type": "string"}


def header_parameters(route) -> list[dict]:
    """The conventions a route declares (shared/http.py): Idempotency-Key, If-Match, If-None-Match."""
    out = []
    if route.idempotent:
        out.append({"name": idempotency.HEADER, "in": "header", "required": False,
                    "description": "retrying with the same key and body answers the first answer (24 h); "
                                   "another body: 422; while the first runs: 409",
                    "schema": {"type": "string", "pattern": idempotency.KEY_PATTERN}})
    if route.etag and route.method == "GET":
        out.append({"name": "If-None-Match", "in": "header", "required": False,
                    "description": "the ETag you hold: 304 without a body when it is still current",
                    "schema": _STRING})
    elif route.etag:
        out.append({"name": "If-Match", "in": "header", "required": False,
                    "description": 'the ETag you read (or "*"): 412 and no change when the resource changed '
                                   "since (anything else matches no ETag: 412 too)",
                    "schema": _STRING})
    return out


def response_headers(route) -> dict:
    headers = {"X-Request-Id": {"schema": _STRING}}
    if route.access in ("user", "admin"):
        for name in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"):
            headers[name] = {"schema": {"type": "string", "pattern": "^[0-9]+$"}}
    if route.etag and route.response is not None:
        headers["ETag"] = {"schema": _STRING, "description": "send it back as If-Match to edit, If-None-Match to poll"}
    if route.idempotent:
        headers[idempotency.REPLAYED] = {"schema": {"type": "string", "enum": ["true"]},
                                         "description": "this answer is the stored answer of an earlier request"}
    return headers


def _variants(api: Api, route) -> tuple[str, dict[str, Any], list[str]] | None:
    """Route.variants of the route, or of another method on its path: (param, {value: body model}, the values
    that share the most common body). Those stay on the template (the parameter an enum of them); every other
    value gets a path of its own, with every method of the template (JSON Schema cannot look at the path)."""
    for r in [route] + api.routes:  # its own first
        if r.path == route.path and r.variants:
            param, models = r.variants()
            groups: dict[int, list[str]] = {}
            for value, model in models.items():
                groups.setdefault(id(model), []).append(value)
            return param, models, max(groups.values(), key=len)
    return None


def documented_paths(api: Api, route) -> list[str]:
    """The paths a route is documented at: its template, and a path per value with a body of its own."""
    path, found = openapi_path(api, route), _variants(api, route)
    if not found:
        return [path]
    param, models, shared = found
    return [path] + [path.replace(f"{{{param}}}", v) for v in models if v not in shared]


def _operations(api: Api, route, comps: Components) -> dict[str, dict]:
    """{path: operation} of a route, its variants included."""
    paths = documented_paths(api, route)
    if len(paths) == 1:
        return {paths[0]: operation(api, route, comps)}
    param, models, shared = _variants(api, route)
    out = {paths[0]: operation(api, route, comps, body=models[shared[0]] if route.variants else None)}
    if route.variants:
        for p in out[paths[0]]["parameters"]:
            if p["name"] == param:
                p["schema"] = {"type": "string", "enum": sorted(shared)}
    for value in (v for v in models if v not in shared):
        out[paths[0].replace(f"{{{param}}}", value)] = operation(
            api, route, comps, body=models[value] if route.variants else None, fixed=(param, value))
    return out


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
            for path, op in _operations(api, route, comps).items():
                paths.setdefault(path, {})[route.method.lower()] = op
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
                           # Stripe's webhook deliveries (stripeWebhook: access="custom")
                           "stripeSignature": {"type": "apiKey", "in": "header", "name": "Stripe-Signature",
                                               "description": "Stripe's signature of the raw body (t=...,v1=...)"},
                       }},
    }


# /docs: Swagger UI from the npm package swagger-ui-dist (devtools/package.json, installed by `make install`),
# served by the dev server itself, so the page works offline and behind a proxy (no CDN).
SWAGGER_UI = ROOT / "devtools" / "node_modules" / "swagger-ui-dist"
SWAGGER_FILES = {"swagger-ui.css": "text/css", "swagger-ui-bundle.js": "text/javascript",
                 "favicon-32x32.png": "image/png", "favicon-16x16.png": "image/png"}
DOCS_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>OpenClaw backend API</title>
<link rel="icon" type="image/png" href="/docs/favicon-32x32.png">
<link rel="stylesheet" href="/docs/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "/openapi.json", dom_id: "#ui"});</script>
<noscript>The document itself: <a href="/openapi.json">/openapi.json</a></noscript>
</body></html>"""
