"""Stripe's API on one local port: localstripe behind a small front that adds what it lacks.

localstripe has no Prices, Checkout Sessions, Billing Portal sessions or
idempotency keys. This front answers those in Stripe's wire format (form-encoded
requests, JSON objects, `{"error": {...}}` errors) and forwards every other
request to localstripe unchanged, so the real `stripe` library talks to one
base address as it does in production:
- Prices are localstripe's Plans seen through the Price shape (Stripe accepts a
  plan id wherever a price id goes, and a plan created with id `price_x` is both).
- Checkout / portal sessions check the customer and price exist upstream and
  return a session whose `url` is served here.
- `Idempotency-Key` on POST: the first response is stored and replayed for the
  same key; concurrent requests with one key are serialised, as Stripe does.

Usage: python -m devtools.standins.stripe_front PORT LOCALSTRIPE_URL
"""
from __future__ import annotations

import json
import re
import secrets
import sys
import threading
import time
from urllib.parse import parse_qsl

import httpx
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

HOP_HEADERS = {"host", "content-length", "connection", "transfer-encoding", "accept-encoding"}


def unflatten(pairs: list[tuple[str, str]]) -> dict:
    """Stripe's form encoding (a[b][0][c]=v) -> nested dicts and lists."""
    root: dict = {}
    for key, value in pairs:
        parts = [key.split("[", 1)[0]] + re.findall(r"\[([^\]]*)\]", key)
        node = root
        for part, nxt in zip(parts, parts[1:] + [None]):
            if nxt is None:
                node[part] = value
            else:
                node = node.setdefault(part, {})
    return _lists(root)


def _lists(node):
    if isinstance(node, dict):
        node = {k: _lists(v) for k, v in node.items()}
        if node and all(k.isdigit() for k in node):
            return [node[k] for k in sorted(node, key=int)]
    return node


def stripe_error(status: int, message: str, param: str | None = None, code: str | None = None) -> Response:
    err = {"type": "invalid_request_error", "message": message}
    if param:
        err["param"] = param
    if code:
        err["code"] = code
    return Response(json.dumps({"error": err}), status=status, mimetype="application/json")


def ok(obj: dict) -> Response:
    return Response(json.dumps(obj), status=200, mimetype="application/json")


def plan_as_price(plan: dict) -> dict:
    return {
        "id": plan["id"], "object": "price", "active": plan.get("active", True), "billing_scheme": "per_unit",
        "created": plan.get("created"), "currency": plan.get("currency"), "livemode": False,
        "lookup_key": None, "metadata": plan.get("metadata") or {}, "nickname": plan.get("nickname"),
        "product": plan.get("product"), "type": "recurring", "unit_amount": plan.get("amount"),
        "recurring": {"interval": plan.get("interval"), "interval_count": plan.get("interval_count", 1),
                      "usage_type": plan.get("usage_type", "licensed")},
    }


class Front:
    def __init__(self, upstream: str, public_url: str):
        self.up = httpx.Client(base_url=upstream, timeout=30)
        self.public_url = public_url
        self.sessions: dict[str, dict] = {}
        self.idem: dict[str, tuple[str, bytes, Response]] = {}
        self.idem_locks: dict[str, threading.Lock] = {}
        self.lock = threading.Lock()

    # upstream helpers
    def _get(self, req: Request, path: str, params: dict | None = None) -> httpx.Response:
        return self.up.get(path, params=params, headers={"Authorization": req.headers.get("Authorization", "")})

    def proxy(self, req: Request) -> Response:
        headers = {k: v for k, v in req.headers.items() if k.lower() not in HOP_HEADERS}
        r = self.up.request(req.method, req.full_path.rstrip("?"), headers=headers, content=req.get_data())
        return Response(r.content, status=r.status_code, content_type=r.headers.get("content-type"))

    # prices
    def get_price(self, req: Request, price_id: str) -> Response:
        r = self._get(req, f"/v1/plans/{price_id}")
        if r.status_code == 404:
            return stripe_error(404, f"No such price: '{price_id}'", "price", "resource_missing")
        if r.status_code != 200:
            return Response(r.content, status=r.status_code, mimetype="application/json")
        return ok(plan_as_price(r.json()))

    def list_prices(self, req: Request) -> Response:
        q = unflatten(list(req.args.items(multi=True)))
        r = self._get(req, "/v1/plans", {"limit": 100})
        if r.status_code != 200:
            return Response(r.content, status=r.status_code, mimetype="application/json")
        prices = [plan_as_price(p) for p in r.json()["data"]]
        if "product" in q:
            prices = [p for p in prices if p["product"] == q["product"]]
        if "active" in q:
            prices = [p for p in prices if p["active"] == (q["active"] == "true")]
        if q.get("type") not in (None, "recurring"):
            prices = []
        interval = (q.get("recurring") or {}).get("interval")
        if interval:
            prices = [p for p in prices if p["recurring"]["interval"] == interval]
        limit = int(q.get("limit", 10))
        return ok({"object": "list", "url": "/v1/prices", "has_more": len(prices) > limit, "data": prices[:limit]})

    # sessions
    def _check_customer(self, req: Request, customer: str | None) -> Response | None:
        if not customer:
            return None
        if self._get(req, f"/v1/customers/{customer}").status_code != 200:
            return stripe_error(400, f"No such customer: '{customer}'", "customer", "resource_missing")
        return None

    def create_checkout(self, req: Request, form: dict) -> Response:
        mode = form.get("mode")
        if mode not in ("payment", "setup", "subscription"):
            return stripe_error(400, "Missing required param: mode.", "mode", "parameter_missing")
        if not form.get("success_url"):
            return stripe_error(400, "Missing required param: success_url.", "success_url", "parameter_missing")
        items = form.get("line_items") or []
        if mode != "setup" and not items:
            return stripe_error(400, "Missing required param: line_items.", "line_items", "parameter_missing")
        for n, item in enumerate(items):
            if self._get(req, f"/v1/plans/{item.get('price', '')}").status_code != 200:
                return stripe_error(400, f"No such price: '{item.get('price')}'", f"line_items[{n}][price]",
                                    "resource_missing")
        bad = self._check_customer(req, form.get("customer"))
        if bad:
            return bad
        sid = "cs_test_" + secrets.token_hex(16)
        now = int(time.time())
        session = {
            "id": sid, "object": "checkout.session", "mode": mode, "status": "open", "payment_status": "unpaid",
            "customer": form.get("customer"), "client_reference_id": form.get("client_reference_id"),
            "success_url": form["success_url"], "cancel_url": form.get("cancel_url"),
            "metadata": form.get("metadata") or {}, "subscription": None, "livemode": False,
            "created": now, "expires_at": now + 24 * 3600, "url": f"{self.public_url}/c/pay/{sid}",
            "line_items": {"object": "list", "data": [{"price": i.get("price"), "quantity": int(i.get("quantity", 1))}
                                                      for i in items]},
            "subscription_data": form.get("subscription_data") or {},
        }
        self.sessions[sid] = session
        return ok(session)

    def create_portal(self, req: Request, form: dict) -> Response:
        if not form.get("customer"):
            return stripe_error(400, "Missing required param: customer.", "customer", "parameter_missing")
        bad = self._check_customer(req, form["customer"])
        if bad:
            return bad
        sid = "bps_" + secrets.token_hex(12)
        session = {"id": sid, "object": "billing_portal.session", "customer": form["customer"],
                   "return_url": form.get("return_url"), "created": int(time.time()), "livemode": False,
                   "configuration": "bpc_local", "flow": None, "locale": None, "on_behalf_of": None,
                   "url": f"{self.public_url}/p/session/{sid}"}
        self.sessions[sid] = session
        return ok(session)

    def page(self, sid: str) -> Response:
        session = self.sessions.get(sid)
        if session is None:
            return Response("no such session", status=404)
        return Response(f"<h1>Stripe stand-in</h1><p>{session['object']} {sid} for {session['customer']}</p>",
                        mimetype="text/html")

    # routing
    def route(self, req: Request) -> Response:
        path, method = req.path, req.method
        if method == "GET" and (m := re.fullmatch(r"/(?:c/pay|p/session)/([\w]+)", path)):
            return self.page(m.group(1))
        if not path.startswith("/v1/"):
            return self.proxy(req)
        if not req.headers.get("Authorization"):
            return stripe_error(401, "You did not provide an API key.")
        if method == "GET" and path == "/v1/prices":
            return self.list_prices(req)
        if method == "GET" and (m := re.fullmatch(r"/v1/prices/([\w-]+)", path)):
            return self.get_price(req, m.group(1))
        if method == "GET" and (m := re.fullmatch(r"/v1/(?:checkout/sessions|billing_portal/sessions)/(\w+)", path)):
            return ok(self.sessions[m.group(1)]) if m.group(1) in self.sessions else \
                stripe_error(404, f"No such session: '{m.group(1)}'", "id", "resource_missing")
        if method == "POST" and path in ("/v1/checkout/sessions", "/v1/billing_portal/sessions"):
            form = unflatten(parse_qsl(req.get_data(as_text=True), keep_blank_values=True))
            return (self.create_checkout if "checkout" in path else self.create_portal)(req, form)
        return self.proxy(req)

    def __call__(self, environ, start_response):
        req = Request(environ)
        key = req.headers.get("Idempotency-Key") if req.method == "POST" else None
        if not key:
            return self.route(req)(environ, start_response)
        with self.lock:
            key_lock = self.idem_locks.setdefault(key, threading.Lock())
        with key_lock:
            body = req.get_data()
            seen = self.idem.get(key)
            if seen is not None:
                path, seen_body, resp = seen
                if (path, seen_body) != (req.path, body):
                    resp = stripe_error(400, "Keys for idempotent requests can only be used with the same "
                                        "parameters they were first used with.", code="idempotency_error")
                return resp(environ, start_response)
            resp = self.route(req)
            if resp.status_code < 500:
                self.idem[key] = (req.path, body, resp)
            return resp(environ, start_response)


def main() -> None:
    port, upstream = int(sys.argv[1]), sys.argv[2]
    front = Front(upstream, f"http://127.0.0.1:{port}")
    make_server("127.0.0.1", port, front, threaded=True).serve_forever()


if __name__ == "__main__":
    main()
