"""Local stand-in for the OpenRouter and OpenAI cost endpoints, speaking their JSON wire
formats, with scripted faults for tests and a fixed latency for the benchmark.

Usage: python -m devtools.standins.providers PORT OPENROUTER_KEY OPENAI_KEY
  OpenRouter: /openrouter/api/v1/{credits, keys/{hash} (GET; PATCH name/disabled/limit/limit_reset/
              include_byok_in_limit, as the key-management API), keys?offset=, activity?date=&api_key_hash=}
              (management key), /openrouter/api/v1/key (a bot's own key: its usage and limit)
  OpenAI:     /openai/v1/organization/costs?start_time=&end_time=&bucket_width=1d&project_ids[]=&group_by[]=
              &limit=&page=,
              /openai/v1/organization/projects?limit=&after=, .../projects/{id}/api_keys?limit=&after= (admin key)
Control: PUT /_control/state (merge), POST /_control/reset, GET /_control/stats.
State: delayMs; credits; keys {hash: {limit, usage, usage_monthly?, disabled?, limit_reset?}}; botKeys {raw key:
hash} (the keys bots hold; labelled as OpenRouter labels them, start...end); activity {hash: {date: [items]}};
openaiKeys {project: [raw keys]};
openai {project: {date: usd}}; maxPage (cost buckets per page); faults {target: [fault, ...]} where target is a
key hash, "hash@date" or a project (a costs call for several projects meets the faults of each), and a fault
is "429" | "500" | "timeout" | "malformed" | "badshape" (consumed one per request; a trailing "!" makes it
permanent); synthetic (bool): unknown keys and projects answer generated data (the benchmark).
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import sys
import time
from datetime import datetime, timezone

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from devtools.standins import openai_embeddings

DAY = 86_400


def fresh_state() -> dict:
    return {"delayMs": 0, "hangMs": 5000, "credits": {"total_credits": 100.0, "total_usage": 25.0},
            "keys": {}, "botKeys": {}, "activity": {}, "openai": {}, "openaiKeys": {}, "faults": {},
            "synthetic": False}


STATE = fresh_state()
KEYS = {"openrouter": "", "openai": ""}
STATS = {"requests": 0, "inflight": 0, "maxInflight": 0, "busy": 0.0, "first": None, "last": None}


def reset_stats() -> None:
    STATS.update(requests=0, inflight=0, maxInflight=0, busy=0.0, first=None, last=None)


def _fault(*targets: str) -> str | None:
    for t in targets:
        script = STATE["faults"].get(t)
        if script:
            f = script[0]
            if f.endswith("!"):
                return f[:-1]
            script.pop(0)
            return f
    return None


async def _serve(request: Request, provider: str, targets: tuple[str, ...], answer, authorized=None) -> Response:
    started = time.perf_counter()
    STATS["requests"] += 1
    STATS["inflight"] += 1
    STATS["maxInflight"] = max(STATS["maxInflight"], STATS["inflight"])
    STATS["first"] = STATS["first"] or started
    try:
        if STATE["delayMs"]:
            await asyncio.sleep(STATE["delayMs"] / 1000)
        given = request.headers.get("authorization", "")
        if not (authorized(given) if authorized else given == f"Bearer {KEYS[provider]}"):
            return _error(provider, 401, "invalid or missing API key")
        fault = _fault(*targets)
        if fault == "timeout":
            await asyncio.sleep(STATE["hangMs"] / 1000)
        elif fault in ("429", "500"):
            return _error(provider, int(fault), "rate limited" if fault == "429" else "internal error")
        elif fault == "malformed":
            return Response('{"data": [', media_type="application/json")
        elif fault == "badshape":
            return JSONResponse({"result": "unexpected"})
        return await answer()
    finally:
        STATS["inflight"] -= 1
        now = time.perf_counter()
        STATS["busy"] += now - started
        STATS["last"] = now


def _error(provider: str, status: int, message: str) -> JSONResponse:
    if provider == "openai":
        body = {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}
    else:
        body = {"error": {"code": status, "message": message}}
    return JSONResponse(body, status_code=status)


def _h(*parts: str) -> int:
    return int(hashlib.sha256("/".join(parts).encode()).hexdigest()[:8], 16)


def synthetic_activity(key_hash: str, date: str) -> list[dict]:
    """Two models a day, the first served by two endpoints (as OpenRouter groups by endpoint)."""
    n = _h(key_hash, date) % 50 + 1
    rows = [("anthropic/claude-sonnet-4", "Anthropic", n, 0.003), ("anthropic/claude-sonnet-4", "Google", 1, 0.003),
            ("openai/gpt-4.1-mini", "OpenAI", n + 2, 0.0004)]
    return [activity_item(date, m, p, r, r * 1000, r * 200, round(r * price, 6)) for m, p, r, price in rows]


def activity_item(date, model, provider, requests, prompt, completion, usage) -> dict:
    return {"date": date, "model": model, "model_permaslug": model + "-2025-01-01",
            "endpoint_id": f"ep-{_h(model, provider):08x}", "provider_name": provider, "usage": usage,
            "byok_usage_inference": 0, "requests": requests, "prompt_tokens": prompt,
            "completion_tokens": completion, "reasoning_tokens": 0}


async def credits(request: Request) -> Response:
    return await _serve(request, "openrouter", ("credits",), lambda: _json({"data": STATE["credits"]}))


def _label(h: str) -> str:
    raw = next((r for r, kh in STATE["botKeys"].items() if kh == h), None)
    return f"{raw[:12]}...{raw[-3:]}" if raw else f"sk-or-v1-{h[:3]}...{h[-3:]}"


def key_body(h: str, k: dict) -> dict:
    limit = k.get("limit")
    return {"hash": h, "name": k.get("name", f"bot-{h[:8]}"), "label": _label(h),
            "disabled": k.get("disabled", False), "limit": limit,
            "limit_remaining": None if limit is None else round(max(limit - k["usage"], 0), 6),
            "limit_reset": k.get("limit_reset"), "include_byok_in_limit": k.get("include_byok_in_limit", False),
            "usage": k["usage"], "usage_daily": 0, "usage_weekly": 0,
            "usage_monthly": k.get("usage_monthly", k["usage"]), "created_at": "2026-01-01T00:00:00Z",
            "updated_at": k.get("updated_at")}


UPDATABLE = {"name": str, "disabled": bool, "limit": (int, float, type(None)), "limit_reset": (str, type(None)),
             "include_byok_in_limit": bool}


async def key(request: Request) -> Response:
    h = request.path_params["hash"]

    async def answer():
        k = STATE["keys"].get(h)
        if k is None and STATE["synthetic"]:
            k = {"limit": 10.0, "usage": (_h(h) % 500) / 100}
        if k is None:
            return _error("openrouter", 404, "key not found")
        if request.method == "PATCH":  # the key-management API: a provisioning key updates a key
            try:
                body = await request.json()
            except ValueError:
                return _error("openrouter", 400, "invalid JSON body")
            if not isinstance(body, dict) or set(body) - set(UPDATABLE) or any(
                    not isinstance(v, UPDATABLE[f]) or isinstance(v, bool) != (UPDATABLE[f] is bool)
                    for f, v in body.items()):
                return _error("openrouter", 400, "invalid request body")
            if isinstance(body.get("limit"), (int, float)) and body["limit"] < 0:
                return _error("openrouter", 400, "limit must be >= 0")
            if body.get("limit_reset") not in (None, "daily", "weekly", "monthly"):
                return _error("openrouter", 400, "limit_reset must be daily, weekly or monthly")
            k.update(body, updated_at=datetime.now(timezone.utc).isoformat())
            STATE.setdefault("patches", []).append({"hash": h, **body})
        return JSONResponse({"data": key_body(h, k)})

    return await _serve(request, "openrouter", (h,), answer)


async def keys_list(request: Request) -> Response:
    """GET /api/v1/keys (management key): the account's keys, 100 a page from `offset`."""
    offset = int(request.query_params.get("offset", "0") or 0)

    async def answer():
        rows = [key_body(h, k) for h, k in sorted(STATE["keys"].items())]
        return JSONResponse({"data": rows[offset:offset + 100]})

    return await _serve(request, "openrouter", ("keys",), answer)


async def current_key(request: Request) -> Response:
    """GET /api/v1/key with a bot's own key: that key's usage and limit (no hash in the answer)."""
    raw = request.headers.get("authorization", "").removeprefix("Bearer ")
    h = STATE["botKeys"].get(raw)

    async def answer():
        data = key_body(h, STATE["keys"].get(h, {"limit": None, "usage": 0.0}))
        data["label"] = f"{raw[:12]}...{raw[-3:]}"
        return JSONResponse({"data": {k: v for k, v in data.items() if k not in ("hash", "name", "disabled")}
                             | {"is_free_tier": False, "is_management_key": False, "is_provisioning_key": False}})

    return await _serve(request, "openrouter", (f"key:{raw}",), answer, authorized=lambda _: h is not None)


def _page(items: list[dict], request: Request) -> dict:
    limit = int(request.query_params.get("limit", "20") or 20)
    after = request.query_params.get("after")
    start = next((i + 1 for i, it in enumerate(items) if it["id"] == after), 0) if after else 0
    page = items[start:start + limit]
    return {"object": "list", "data": page, "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None, "has_more": start + limit < len(items)}


async def openai_projects(request: Request) -> Response:
    async def answer():
        items = [{"id": pid, "object": "organization.project", "name": pid, "created_at": 1711471533,
                  "archived_at": None, "status": "active"} for pid in sorted(STATE["openaiKeys"])]
        return JSONResponse(_page(items, request))

    return await _serve(request, "openai", ("projects",), answer)


async def openai_project_keys(request: Request) -> Response:
    pid = request.path_params["project"]

    async def answer():
        if pid not in STATE["openaiKeys"]:
            return _error("openai", 404, f"No project found with id '{pid}'.")
        items = [{"object": "organization.project.api_key", "redacted_value": f"{raw[:6]}...{raw[-3:]}",
                  "name": f"key {n}", "created_at": 1711471533, "last_used_at": None, "id": f"key_{_h(raw):08x}",
                  "owner": {"type": "service_account", "service_account": {"id": "svc_acct_1", "name": "bot",
                                                                           "created_at": 1711471533, "role": "member"}}}
                 for n, raw in enumerate(STATE["openaiKeys"][pid])]
        return JSONResponse(_page(items, request))

    return await _serve(request, "openai", (f"keys:{pid}",), answer)


async def activity(request: Request) -> Response:
    date = request.query_params.get("date", "")
    h = request.query_params.get("api_key_hash", "")

    async def answer():
        days = STATE["activity"].get(h)
        if days is None and STATE["synthetic"]:
            return JSONResponse({"data": synthetic_activity(h, date)})
        return JSONResponse({"data": list((days or {}).get(date, []))})  # an empty day is an empty list

    return await _serve(request, "openrouter", (f"{h}@{date}", h), answer)


def _array(qp, name: str) -> list[str]:
    """A query array as OpenAI's API takes it: `name[]=a&name[]=b` (its SDKs' form) or `name=a&name=b`."""
    return qp.getlist(f"{name}[]") + qp.getlist(name)


async def openai_costs(request: Request) -> Response:
    """GET /v1/organization/costs as the API answers: daily buckets, `limit` of them a page (`next_page`
    the cursor); `project_ids` filters (none: every project), `group_by` project_id gives one result per
    project with costs that day, without it one result per bucket summing them, project_id null."""
    qp = request.query_params
    projects = _array(qp, "project_ids")
    group_by = _array(qp, "group_by")

    async def answer():
        try:
            start, end = int(qp["start_time"]), int(qp.get("end_time", time.time()))
            limit = int(qp.get("limit", 7))
        except (KeyError, ValueError):
            return _error("openai", 400, "start_time is required")
        if qp.get("bucket_width", "1d") != "1d" or not 1 <= limit <= 180:
            return _error("openai", 400, "invalid bucket_width or limit")
        if set(group_by) - {"project_id", "line_item"}:
            return _error("openai", 400, "invalid group_by")
        limit = min(limit, STATE.get("maxPage") or limit)  # the server may page sooner than asked
        first = start - start % DAY
        offset = int(base64.b64decode(qp["page"]).decode()) if qp.get("page") else 0
        starts = list(range(first, end, DAY))
        page = starts[offset:offset + limit]
        scope = list(dict.fromkeys(projects)) if projects else sorted(STATE["openai"])
        buckets = []
        for b in page:
            day = datetime.fromtimestamp(b, timezone.utc).strftime("%Y-%m-%d")
            spent = []
            for p in scope:
                spend = STATE["openai"].get(p)
                value = (spend or {}).get(day) if spend is not None else (0.5 if STATE["synthetic"] else None)
                if value is not None:
                    spent.append((p, value))
            if "project_id" not in group_by and spent:
                spent = [(None, round(sum(v for _, v in spent), 6))]
            results = [{"object": "organization.costs.result", "amount": {"value": v, "currency": "usd"},
                        "line_item": None, "project_id": p} for p, v in spent]
            buckets.append({"object": "bucket", "start_time": b, "end_time": b + DAY, "results": results})
        more = offset + limit < len(starts)
        return JSONResponse({"object": "page", "data": buckets, "has_more": more,
                             "next_page": base64.b64encode(str(offset + limit).encode()).decode() if more else None})

    return await _serve(request, "openai", tuple(projects), answer)


async def _json(body):
    return JSONResponse(body)


async def get_state(request: Request) -> Response:
    return JSONResponse(STATE)


async def put_state(request: Request) -> Response:
    STATE.update(await request.json())
    return JSONResponse({"ok": True})


async def reset(request: Request) -> Response:
    STATE.clear()
    STATE.update(fresh_state())
    reset_stats()
    return JSONResponse({"ok": True})


async def stats(request: Request) -> Response:
    span = (STATS["last"] - STATS["first"]) if STATS["first"] and STATS["last"] else 0
    return JSONResponse({"requests": STATS["requests"], "maxInflight": STATS["maxInflight"],
                         "avgInflight": round(STATS["busy"] / span, 2) if span else 0.0,
                         "busySeconds": round(STATS["busy"], 3),
                         "faultsLeft": {k: v for k, v in STATE["faults"].items() if v}})


async def embeddings(request: Request) -> Response:
    status, body = await asyncio.to_thread(openai_embeddings.answer, request.headers.get("Authorization", ""),
                                           await request.body())
    return JSONResponse(body, status_code=status)


app = Starlette(routes=[
    Route("/openrouter/api/v1/credits", credits),
    Route("/openrouter/api/v1/keys/{hash}", key, methods=["GET", "PATCH"]),
    Route("/openrouter/api/v1/keys", keys_list),
    Route("/openrouter/api/v1/key", current_key),
    Route("/openai/v1/organization/projects", openai_projects),
    Route("/openai/v1/organization/projects/{project}/api_keys", openai_project_keys),
    Route("/openrouter/api/v1/activity", activity),
    Route("/openai/v1/organization/costs", openai_costs),
    Route("/openai/v1/embeddings", embeddings, methods=["POST"]),
    Route("/_control/state", put_state, methods=["PUT"]),
    Route("/_control/state", get_state, methods=["GET"]),
    Route("/_control/reset", reset, methods=["POST"]),
    Route("/_control/stats", stats),
])


def main() -> None:
    port, KEYS["openrouter"], KEYS["openai"] = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", backlog=4096)


if __name__ == "__main__":
    main()
