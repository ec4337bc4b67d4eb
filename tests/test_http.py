"""HTTP conventions shared by every endpoint."""
import json

from shared import config


def test_unknown_route_and_method(api, callers):
    r = api("GET", "/users/me/extra", callers["owner"])
    assert r.status_code == 404 and r.json["error"]["code"] == "not_found"
    r = api("DELETE", "/users/me", callers["owner"])
    assert r.status_code == 405 and "PATCH" in r.headers["Allow"]
    assert api("GET", "/noSuchFunction").status_code == 404


def test_request_id_is_echoed_or_made(api):
    r = api("GET", "/pricingPlans", headers={"X-Request-Id": "abc12345-req"})
    assert r.headers["X-Request-Id"] == "abc12345-req"
    made = api("GET", "/pricingPlans", headers={"X-Request-Id": "bad id with spaces"}).headers["X-Request-Id"]
    assert made and made != "bad id with spaces"


def test_cors_allow_list_and_preflight(api):
    ok = {"Origin": "https://app.example.com"}
    r = api("OPTIONS", "/navLinks", headers={**ok, "Access-Control-Request-Method": "POST"})
    assert r.status_code == 204
    assert "POST" in r.headers["Access-Control-Allow-Methods"]
    assert "Authorization" in r.headers["Access-Control-Allow-Headers"]
    assert r.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    r = api("OPTIONS", "/navLinks", headers={"Origin": "https://evil.example.com"})
    assert r.status_code == 403 and "Access-Control-Allow-Origin" not in r.headers
    r = api("GET", "/pricingPlans", headers=ok)
    assert r.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert "X-Request-Id" in r.headers["Access-Control-Expose-Headers"]
    r = api("GET", "/pricingPlans", headers={"Origin": "https://evil.example.com"})
    assert "Access-Control-Allow-Origin" not in r.headers


def test_oversized_body_is_refused_before_parsing(api, callers):
    big = json.dumps({"title": "t", "body": "x" * (config.get().max_body_bytes + 10)})
    r = api("PUT", "/cmsPages/big", callers["admin"], data=big, content_type="application/json")
    assert r.status_code == 413 and r.json["error"]["code"] == "payload_too_large"


def test_errors_are_json_with_code_and_message(api, callers):
    r = api("PUT", "/cmsPages/x", callers["admin"], json={"title": 5})
    err = r.json["error"]
    assert r.status_code == 422 and err["code"] == "invalid_body"
    assert err["message"].startswith("body.") and err["details"][0]["loc"][0] == "body"


def test_unhandled_errors_become_500_json(api, callers, monkeypatch):
    from shared import repos

    def boom(*a, **k):
        raise RuntimeError("boom")

    monkeypatch.setattr(repos.pricing_plans, "all", boom)
    r = api("GET", "/pricingPlans")
    assert r.status_code == 500 and r.json == {"error": {"code": "internal", "message": "internal error"}}


def test_machine_callers_are_a_declared_access_kind():
    """deployWorker, costPullWorker, stripeEventWorker (Cloud Tasks) and the scheduled functions declare who calls
    them; the router checks it through shared/google_identity.py before the body is read, and no handler does."""
    import pytest

    from devtools.openapi import function_apis
    from shared.http import Api

    kinds = {api.name: {r.access for r in api.routes} for api in function_apis()}
    assert {n for n, k in kinds.items() if "cloud_tasks" in k} == {"deployWorker", "costPullWorker",
                                                                   "knowledgeReembedWorker", "stripeEventWorker",
                                                                   "webhookWorker"}
    assert {n for n, k in kinds.items() if "scheduler" in k} == {"pullCosts", "pullOpenrouterActivity",
                                                                 "billingReconcile", "backups", "healthCheck"}
    for api in function_apis():
        for r in api.routes:
            assert "google_identity" not in r.handler.__code__.co_names, f"{api.name}: the handler checks its caller"
    with pytest.raises(ValueError):
        Api("t").route("POST", "/", access="cloud_tasks")(lambda req: None)


def test_domain_errors_become_json_errors_with_the_status_of_their_kind(monkeypatch):
    """The domain raises kinds (shared/errors.py); the router alone gives each its status and headers."""
    import flask

    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "demo-openclaw")  # no emulator needed: no caller, no audit
    config.reset()

    from shared import errors
    from shared.http import Api

    cases = [(errors.NotFound("not_found", "deployment 'x' not found"), 404, {}),
             (errors.Contention("contention", "try again"), 409, {}),
             (errors.Conflict("job_active", "a job runs", {"job": {"id": "j"}}), 409, {}),
             (errors.Invalid("invalid_cron", "bad"), 422, {}),
             (errors.Malformed("invalid_cursor", "bad"), 400, {}),
             (errors.Unavailable("retry_later", "later", retry_after=30), 503, {"Retry-After": "30"}),
             (errors.Unauthenticated("unauthenticated", "who?", challenge="Bot"), 401, {"WWW-Authenticate": "Bot"}),
             (errors.UpstreamFailed("payment_provider_error", "Stripe refused"), 502, {})]
    for exc, status, headers in cases:
        app = Api("t")

        def fail(req, exc=exc):
            raise exc

        app.route("GET", "/", access="custom")(fail)
        with flask.Flask(__name__).test_request_context("/"):
            resp = app(flask.request)
        body = {"code": exc.code, "message": exc.message, **({"details": exc.details} if exc.details else {})}
        assert (resp.status_code, json.loads(resp.get_data())) == (status, {"error": body}), exc
        assert {k: resp.headers.get(k) for k in headers} == headers, exc
    monkeypatch.undo()
    config.reset()
