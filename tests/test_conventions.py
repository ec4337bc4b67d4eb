"""What a web client expects of every endpoint (issue 19): Idempotency-Key, ETag / If-Match,
rate limits with 429 + Retry-After, CORS for those headers, one access line per request."""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from shared import config, repos
from shared.models import NavLink

LINK = {"label": "Docs", "href": "/docs", "section": "header"}


def key(api, caller, path, body, k, method="POST"):
    return api(method, path, caller, json=body, headers={"Idempotency-Key": k})


# Idempotency-Key

def test_same_key_same_body_answers_the_first_answer_without_doing_it_again(api, callers):
    admin = callers["admin"]
    first = key(api, admin, "/navLinks", LINK, "retry-1")
    again = key(api, admin, "/navLinks", LINK, "retry-1")
    assert first.status_code == again.status_code == 201
    assert again.json == first.json and again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert len(repos.nav_links.all({"section": "header"}, (("sortOrder", "ASCENDING"),))) == 1
    other = key(api, admin, "/navLinks", LINK, "retry-2")  # a new key is a new request
    assert other.status_code == 201 and other.json["_id"] != first.json["_id"]
    plain = api("POST", "/navLinks", admin, json=LINK)  # no key: as before
    assert plain.status_code == 201 and "Idempotent-Replayed" not in plain.headers


def test_same_key_other_body_is_422_and_bad_keys_400(api, callers):
    admin = callers["admin"]
    assert key(api, admin, "/navLinks", LINK, "k-1").status_code == 201
    r = key(api, admin, "/navLinks", {**LINK, "label": "Other"}, "k-1")
    assert r.status_code == 422 and r.json["error"]["code"] == "idempotency_key_reused"
    for bad in ("", "x" * 256, "with space"):
        r = key(api, admin, "/navLinks", LINK, bad)
        assert r.status_code == 400 and r.json["error"]["code"] == "invalid_idempotency_key", bad


def test_validation_errors_are_not_stored_and_keys_are_per_caller(api, callers):
    admin = callers["admin"]
    r = key(api, admin, "/navLinks", {**LINK, "section": "nowhere"}, "k-2")
    assert r.status_code == 422 and r.json["error"]["code"] == "invalid_body"
    assert key(api, admin, "/navLinks", LINK, "k-2").status_code == 201  # the fixed request goes through
    # the same key from two users: two requests (scoped per caller)
    a = key(api, callers["owner"], "/billing/portal", None, "shared-key")
    b = key(api, callers["other"], "/billing/portal", None, "shared-key")
    assert "Idempotent-Replayed" not in a.headers and "Idempotent-Replayed" not in b.headers


def test_stored_answers_expire_and_a_dead_claim_is_taken_over(api, callers):
    from datetime import datetime, timedelta, timezone

    from shared import db, idempotency

    admin = callers["admin"]
    first = key(api, admin, "/navLinks", LINK, "old-key")
    docs = list(db.client().collection(idempotency.COLLECTION).stream())
    assert len(docs) == 1 and docs[0].get("expireAt") > datetime.now(timezone.utc) + timedelta(hours=23)
    docs[0].reference.update({"expireAt": datetime.now(timezone.utc) - timedelta(seconds=1)})
    again = key(api, admin, "/navLinks", LINK, "old-key")  # older than 24 h: a new request
    assert again.status_code == 201 and again.json["_id"] != first.json["_id"]
    docs[0].reference.update({"state": "running", "lockedUntil": 0})  # its request died mid-way
    third = key(api, admin, "/navLinks", LINK, "old-key")
    assert third.status_code == 201 and "Idempotent-Replayed" not in third.headers


def test_concurrent_deployments_with_one_key_make_one_vm(live_url, callers, denv):
    from test_deployments_api import NEW

    owner = callers["owner"]
    headers = {"Authorization": f"Bearer {owner.token}", "Idempotency-Key": "create-once"}
    with ThreadPoolExecutor(5) as pool:
        answers = list(pool.map(lambda _: httpx.post(f"{live_url}/deployments", json=NEW, headers=headers,
                                                     timeout=60), range(5)))
    done = [a for a in answers if a.status_code == 201]
    busy = [a for a in answers if a.status_code == 409]
    assert len(done) + len(busy) == 5 and done, [a.text for a in answers]
    assert all(b.json()["error"]["code"] == "idempotency_in_progress" and b.headers["Retry-After"] for b in busy)
    assert len({a.json()["deployment"]["_id"] for a in done}) == 1
    assert len(repos.deployments.all({"userId": owner.user_id}, (("createdAt", "DESCENDING"),))) == 1
    later = httpx.post(f"{live_url}/deployments", json=NEW, headers=headers, timeout=60)
    assert later.status_code == 201 and later.json() == done[0].json()
    assert later.headers["Idempotent-Replayed"] == "true"


def test_checkout_retry_makes_one_stripe_session(api, callers, plans, sc):
    owner = callers["owner"]
    body = {"plan": "starter", "interval": "month"}
    first = key(api, owner, "/billing/checkout", body, "checkout-1")
    again = key(api, owner, "/billing/checkout", body, "checkout-1")
    assert first.status_code == again.status_code == 200
    assert again.json["sessionId"] == first.json["sessionId"] and again.headers["Idempotent-Replayed"] == "true"


# ETag / If-Match

@pytest.mark.parametrize("path,body,method", [
    ("/users/me", {"name": "A"}, "PATCH"),
    ("/navLinks/link1", {"label": "A"}, "PATCH"),
    ("/cmsPages/about", {"title": "A", "body": "b", "published": True}, "PUT"),
    ("/pricingPlans/starter", {"name": "A"}, "PATCH"),
])
def test_stale_if_match_is_412_and_changes_nothing(api, callers, path, body, method, plans):
    from shared import clock
    from shared.models import CmsPage

    admin = callers["admin"]
    now = clock.now_ms()
    repos.nav_links.set(NavLink(_id="link1", label="L", href="/l", section="header"))
    repos.cms_pages.set(CmsPage(_id="about", slug="about", title="T", body="b", published=True,
                                createdAt=now, updatedAt=now))
    read = api("GET", path, admin)
    tag = read.headers["ETag"]
    assert read.status_code == 200 and tag.startswith('"')
    assert api("GET", path, admin, headers={"If-None-Match": tag}).status_code == 304
    other_tab = api(method, path, admin, json=body, headers={"If-Match": tag})
    assert other_tab.status_code == 200 and other_tab.headers["ETag"] != tag
    assert api("GET", path, admin).headers["ETag"] == other_tab.headers["ETag"]  # what a GET answers next
    stale = api(method, path, admin, json={**body, **({"name": "B"} if "name" in body else {"title": "B"}
                                                      if "title" in body else {"label": "B"})},
                headers={"If-Match": tag})
    assert stale.status_code == 412 and stale.json["error"]["code"] == "precondition_failed"
    assert api("GET", path, admin).json == other_tab.json  # nothing changed
    assert api(method, path, admin, json=body, headers={"If-Match": "*"}).status_code == 200
    assert api(method, path, admin, json=body, headers={"If-Match": "nonsense"}).status_code == 412  # no ETag


def test_deployment_edits_check_if_match(api, callers, denv):
    from test_deployments_api import create

    owner = callers["owner"]
    dep, _ = create(api, owner)
    path = f"/deployments/{dep['_id']}"
    tag = api("GET", path, owner).headers["ETag"]
    assert api("PATCH", path, owner, json={"botName": "Two"}, headers={"If-Match": tag}).status_code == 200
    r = api("PATCH", path, owner, json={"botName": "Three"}, headers={"If-Match": tag})
    assert r.status_code == 412 and api("GET", path, owner).json["botName"] == "Two"


@pytest.mark.parametrize("kind,item,edit,stale", [
    ("pluginConfigs", "knowledge", {"config": {"maxResults": 3}}, {"config": {"maxResults": 7}}),
    ("skillConfigs", "daily-briefing", {"cronOverride": "0 6 * * *"}, {"cronOverride": "0 7 * * *"}),
])
def test_bot_config_edits_check_if_match(api, callers, denv, kind, item, edit, stale):
    from test_deployments_api import create

    owner = callers["owner"]
    dep, _ = create(api, owner)
    path = f"/{kind}/{dep['_id']}/{item}"
    assert api("PUT", path, owner, json={"enabled": False}, headers={"If-Match": "*"}).status_code == 412  # none yet
    made = api("PUT", path, owner, json={"enabled": False})
    tag = made.headers["ETag"]
    assert made.status_code == 201 and api("GET", path, owner).headers["ETag"] == tag
    assert api("GET", path, owner, headers={"If-None-Match": tag}).status_code == 304
    assert api("GET", path, callers["other"]).status_code == 404
    first = api("PATCH", path, owner, json=edit, headers={"If-Match": tag})
    assert first.status_code == 200 and first.headers["ETag"] != tag
    for method, body in (("PATCH", stale), ("PUT", {"enabled": False, **stale}), ("DELETE", None)):
        r = api(method, path, owner, json=body, headers={"If-Match": tag})
        assert r.status_code == 412 and r.json["error"]["code"] == "precondition_failed", method
    assert api("GET", path, owner).json == first.json  # nothing changed
    assert api("DELETE", path, owner, headers={"If-Match": first.headers["ETag"]}).status_code == 204
    assert api("GET", path, owner).status_code == 404


def test_admin_user_edits_check_if_match(api, callers):
    admin, owner = callers["admin"], callers["owner"]
    api("GET", "/users/me", owner)
    path = f"/users/{owner.user_id}"
    tag = api("GET", path, admin).headers["ETag"]
    assert api("GET", f"{path}?include=deployments,subscription", admin).headers["ETag"] == tag  # the user's own
    assert api("GET", "/users/me", owner).headers["ETag"] == tag  # one user, one tag, whoever reads it
    done = api("PATCH", path, admin, json={"status": "suspended"}, headers={"If-Match": tag})
    assert done.status_code == 200 and done.headers["ETag"] != tag
    r = api("PATCH", path, admin, json={"role": "admin"}, headers={"If-Match": tag})
    assert r.status_code == 412 and r.json["error"]["code"] == "precondition_failed"
    assert api("GET", path, admin).json["role"] == "user"
    assert api("PATCH", path, admin, json={"status": "active"}).status_code == 200  # without If-Match: as before


def test_profile_etag_ignores_sign_in_time(api, callers):
    owner = callers["owner"]
    tag = api("GET", "/users/me", owner).headers["ETag"]
    repos.users.update(owner.user_id, {"lastSeenAt": 1})
    assert api("GET", "/users/me", owner).headers["ETag"] == tag


# Rate limits

@pytest.fixture
def low_limits(monkeypatch):
    monkeypatch.setenv("RATE_LIMITS", "default=5,embeddings=2,deploy=2,billing=2")
    config.reset()
    yield
    monkeypatch.undo()
    config.reset()


def test_rate_limit_is_per_caller_with_429_and_retry_after(api, callers, low_limits):
    owner, other = callers["owner"], callers["other"]
    answers = [api("GET", "/users/me", owner) for _ in range(6)]
    assert [a.status_code for a in answers] == [200] * 5 + [429]
    refused = answers[-1]
    assert refused.json["error"]["code"] == "rate_limited" and 1 <= int(refused.headers["Retry-After"]) <= 60
    assert answers[0].headers["X-RateLimit-Limit"] == "5" and answers[4].headers["X-RateLimit-Remaining"] == "0"
    assert api("GET", "/users/me", other).status_code == 200  # another user has a budget of their own
    assert api("GET", "/pricingPlans").status_code == 200  # anonymous public reads are not counted


def test_costly_routes_have_a_tighter_class(api, callers, low_limits):
    owner = callers["owner"]
    codes = [api("POST", "/billing/portal", owner).status_code for _ in range(3)]
    assert codes[:2] != [429, 429] and codes[2] == 429
    assert api("GET", "/users/me", owner).status_code == 200  # the default class is counted apart


def test_rate_limits_setting_is_validated(monkeypatch):
    assert config.rate_limits("deploy=3")["deploy"] == 3
    for bad in ("nope=3", "deploy=x", "deploy"):
        with pytest.raises(config.ConfigError):
            config.rate_limits(bad)


# CORS and the access line

def test_cors_lets_the_dashboard_send_and_read_the_conventions(api):
    ok = {"Origin": "https://app.example.com"}
    r = api("OPTIONS", "/deployments", headers={**ok, "Access-Control-Request-Method": "POST",
                                               "Access-Control-Request-Headers": "idempotency-key, if-match"})
    allowed = {h.strip().lower() for h in r.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"idempotency-key", "if-match", "if-none-match", "authorization", "content-type"} <= allowed
    exposed = api("GET", "/pricingPlans", headers=ok).headers["Access-Control-Expose-Headers"]
    for h in ("ETag", "Retry-After", "Idempotent-Replayed", "X-Request-Id", "X-RateLimit-Remaining"):
        assert h in exposed


def test_one_access_line_per_request_naming_function_and_route(live_url, callers, caplog):
    caplog.set_level(logging.INFO)
    owner = callers["owner"]
    r = httpx.patch(f"{live_url}/users/me", json={"name": "Z"}, headers={"Authorization": f"Bearer {owner.token}"})
    assert r.status_code == 200
    werkzeug = [rec for rec in caplog.records if rec.name == "werkzeug" and "/users/me" in rec.getMessage()]
    access = [rec for rec in caplog.records if getattr(rec, "httpRequest", {}).get("requestUrl") == "/users/me"]
    assert len(access) == 1 and not werkzeug
    rec = access[0]
    assert rec.getMessage() == "users PATCH /users/me 200" and rec.function == "users" and rec.route == "/users/me"
    assert rec.httpRequest["status"] == 200 and rec.httpRequest["requestMethod"] == "PATCH"
