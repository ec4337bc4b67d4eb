"""No 500 on any input: every route that takes a body or a query (generated from the Api objects
the OpenAPI document is built from, not a hand list) answers bad input with a 4xx JSON error.

Bad bodies: nested 10,000 levels, larger than MAX_BODY_BYTES, not UTF-8, duplicate keys, NaN,
1e999, a lone surrogate, NUL and other control characters in every field. Bad queries: control
characters and 100 KB values in every parameter. Plus a correctly signed Stripe webhook nested
10,000 levels, -0.0 and NUL through the two reported routes, and the one-port server's own 414.
"""
from __future__ import annotations

import json
import re

import httpx
import pytest
from billing_support import sign

from devtools.openapi import function_apis
from shared.api.inputs import Strict


def routes():
    out = []
    for api in function_apis():
        for r in api.routes:
            if r.body is not None or r.query is not None:
                out.append(pytest.param(api.name, r, id=f"{r.method} /{api.name}{r.path}"))
    return out


ROUTES = routes()


def url(fn: str, path: str) -> str:
    return f"/{fn}" + re.sub(r"\{\w+\}", "x1", path).rstrip("/") if path != "/" else f"/{fn}/"


def assert_4xx_json(r, what):
    assert 400 <= r.status_code < 500, f"{what}: {r.status_code} {r.get_data(as_text=True)[:300]}"
    assert r.mimetype == "application/json", what
    err = r.json["error"]
    assert err["code"] and err["message"], what


def string_fields(model) -> list[str]:
    """Fields that accept a plain string ("ok"): where a control character must be refused."""
    out = []
    for name, info in model.model_fields.items():
        key = info.alias or name
        try:
            model.model_validate({key: "ok"})
            out.append(key)
        except Exception as exc:
            if not any(e["loc"][:1] == (key,) for e in exc.errors()):
                out.append(key)
    return out


BAD_BODIES = {
    "deep": b"[" * 10_000 + b"]" * 10_000,
    "deep object": b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
    "not utf-8": b'{"name": "\xff\xfe"}',
    "bom": b'\xef\xbb\xbf{"name": "x"}',
    "duplicate keys": b'{"name": "a", "name": "b"}',
    "nan": b'{"name": NaN}',
    "huge float": b'{"name": 1e999}',
    "huge int": b'{"name": ' + b"9" * 5000 + b"}",
    "lone surrogate": b'{"name": "\\ud800"}',
    "truncated": b'{"name": ',
}


@pytest.mark.parametrize("fn,route", ROUTES)
def test_bad_bodies_and_queries_are_4xx_json(client, callers, fn, route, request):
    from conftest import SERVICES

    from shared import config

    if SERVICES.get(fn):  # a body that passes validation reaches the handler: its services must be there
        request.getfixturevalue(SERVICES[fn])

    headers = {"Authorization": f"Bearer {callers['admin'].token}"}
    if route.access == "cloud_tasks":  # a delivery of its queue (local: no token), so the body is read
        headers = {"X-CloudTasks-QueueName": route.machine()["queue"], "X-CloudTasks-TaskName": "t1"}
    target = url(fn, route.path)
    if route.body is not None:
        for what, raw in BAD_BODIES.items():
            r = client.open(target, method=route.method, data=raw, headers=headers,
                            content_type="application/json")
            assert_4xx_json(r, f"{route.method} {target} {what}")
            if what in ("deep", "deep object", "not utf-8", "duplicate keys", "nan", "huge float"):
                assert r.status_code == 400 and r.json["error"]["code"] == "invalid_json", (what, r.json)
        too_large = b'{"name": "' + b"a" * (config.get().max_body_bytes + 10) + b'"}'
        r = client.open(target, method=route.method, data=too_large, headers=headers, content_type="application/json")
        assert_4xx_json(r, f"{target} too large")
        assert r.status_code == 413
        for ch in ("\x00", "\x07", "\x1b", "\x7f", "\u0085"):
            body = {f: f"ok{ch}x" for f in string_fields(route.body)}
            if not body:
                break
            r = client.open(target, method=route.method, json=body, headers=headers)
            assert_4xx_json(r, f"{target} control character {ch!r}")
    if route.query is not None:
        for field in route.query.model_fields:
            for value in ("a%00b", "a" * 100_000, "%FF%FE", "%ED%A0%80", "NaN", "-inf", "%1B[31m"):
                r = client.open(target, method=route.method, query_string=f"{field}={value}", headers=headers,
                                json={} if route.body is not None else None)
                assert r.status_code < 500, f"{target}?{field}={value[:20]!r}: {r.status_code} {r.get_data()[:200]}"
                assert r.mimetype == "application/json"


@pytest.mark.parametrize("fn,route", [p for p in ROUTES if p.values[1].body is not None])
def test_every_text_field_refuses_control_characters(fn, route):
    """Model level: each field that takes "ok" refuses "ok\\x00" (for that field, not another)."""
    for model in (route.body,):
        assert issubclass(model, Strict)
        for key in string_fields(model):
            def errors_at(value, model=model, key=key):
                try:
                    model.model_validate({key: value})
                    return []
                except Exception as exc:
                    return [e for e in exc.errors() if e["loc"][:1] == (key,)]
            if errors_at("ok"):
                continue  # not a free string (pattern, enum, number): refused anyway
            assert errors_at("ok\x00"), f"{model.__name__}.{key} accepts NUL"


def test_reported_cases(api, callers):
    """The issue's reproductions: -0.0 is stored as 0, a NUL in a name is refused, deep JSON is 400."""
    from shared import repos
    from shared.models import PricingPlan

    repos.pricing_plans.set(PricingPlan(_id="starter", slug="starter", name="Starter", priceMonthly=29,
                                        priceYearly=290, stripePriceId="price_starter_month", sortOrder=0))
    r = api("PATCH", "/pricingPlans/starter", callers["admin"], json={"priceMonthly": -0.0})
    assert r.status_code == 200, r.json
    stored = repos.pricing_plans.get("starter").priceMonthly
    assert stored == 0 and str(float(stored)) == "0.0"
    page = api("GET", "/pricingPlans/starter")
    assert "-0" not in page.get_data(as_text=True)
    r = api("PATCH", "/users/me", callers["owner"], json={"name": "Ada\u0000Lovelace"})
    assert r.status_code == 422 and "control character" in r.json["error"]["message"]
    for path in ("/users/me", "/deployments", "/billing/checkout"):
        method = "PATCH" if path == "/users/me" else "POST"
        r = api(method, path, callers["owner"], data=b"[" * 10_000 + b"]" * 10_000,
                headers={"Content-Type": "application/json"})
        assert r.status_code == 400 and r.json["error"]["code"] == "invalid_json", (path, r.json)


def test_signed_webhook_with_deep_json_is_400(client, stripe_stack):
    for raw in (b'{"id": "evt_1", "type": "x", "data": ' + b"[" * 10_000 + b"]" * 10_000 + b"}",
                b'{"id": "evt_1", "id": "evt_2", "type": "x"}', b'{"id": "evt_\xff", "type": "x"}'):
        r = client.post("/stripeWebhook", data=raw, headers={"Stripe-Signature": sign(raw),
                                                               "Content-Type": "application/json"})
        assert r.status_code == 400 and r.mimetype == "application/json", r.get_data()[:200]


def raw_request(base: str, head: bytes) -> tuple[int, dict, bytes]:
    """Send a request as bytes (HTTP clients refuse to send what this test needs)."""
    import socket
    from urllib.parse import urlsplit

    u = urlsplit(base)
    with socket.create_connection((u.hostname, u.port), timeout=30) as sock:
        sock.sendall(head)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    top, _, body = data.partition(b"\r\n\r\n")
    lines = top.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def test_dev_server_answers_json_for_what_it_refuses(live_url):
    status, headers, body = raw_request(live_url, b"GET /pricingPlans?q=" + b"a" * 100_000 + b" HTTP/1.1\r\n"
                                        b"Host: 127.0.0.1\r\n\r\n")
    assert status == 414 and headers["content-type"] == "application/json", body[:200]
    assert json.loads(body)["error"]["code"] == "request_uri_too_long"
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(120))
    status, headers, body = raw_request(live_url, b"GET /pricingPlans HTTP/1.1\r\nHost: 127.0.0.1\r\n" + many + b"\r\n")
    assert status == 431 and json.loads(body)["error"]["message"]
    assert httpx.get(f"{live_url}/pricingPlans", timeout=30).json()["items"] is not None
