"""shared/google_identity.py: which Google service account is calling, and the local Cloud Tasks
stand-in that signs its tasks' OIDC tokens the way Cloud Tasks does (--oidc-key, --url-map).

Tokens are made with a local key (devtools/standins/google_tokens.py) whose JWK Set is served on
127.0.0.1 as GOOGLE_CERTS_URL; the checks run with APP_ENV=deploy-check (production rules, local
endpoints) unless a test is about APP_ENV=local."""
from __future__ import annotations

import threading
import time

import flask
import pytest
from werkzeug.test import EnvironBuilder

from devtools.server import json_app, serving
from devtools.standins.google_tokens import GoogleKey, strip_signature
from shared import config, google_identity
from shared.errors import DomainError
from shared.http import status_of

SA = "tasks-invoker@demo-openclaw.iam.gserviceaccount.com"
AUD = "https://us-central1-demo-openclaw.cloudfunctions.net/deployWorker"


@pytest.fixture(scope="module")
def key():
    key = GoogleKey.generate("test-kid")
    with serving(json_app(key.jwks())) as url:
        yield key, f"{url}/oauth2/v3/certs"


@pytest.fixture
def env(key, monkeypatch):
    """APP_ENV deploy-check, the local key server as Google's; `env("local")` switches."""
    def set_env(app_env: str = "deploy-check") -> GoogleKey:
        monkeypatch.setenv("APP_ENV", app_env)
        config.reset()
        return key[0]
    for name in ("FIREBASE_AUTH_EMULATOR_HOST", "FIRESTORE_EMULATOR_HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "demo-openclaw")
    monkeypatch.setenv("GOOGLE_CERTS_URL", key[1])
    set_env()
    yield set_env
    monkeypatch.undo()
    config.reset()


def status(fn, *args, **kw) -> int:
    try:
        fn(*args, **kw)
    except DomainError as exc:
        return status_of(exc)  # the status the edge answers it with
    return 200


def check(token: str, private: bool = True, account: str | None = SA, audience: str | None = AUD) -> int:
    return status(google_identity.verify, token, account=account, audience=audience, private=private,
                  what="deploy worker")


def request(headers: dict) -> flask.Request:
    return flask.Request(EnvironBuilder(method="POST", path="/", headers=headers).get_environ())


def test_private_function_takes_the_token_google_has_checked(env):
    key = env()
    token = key.token(audience=AUD, email=SA)
    claims = google_identity.verify(strip_signature(token), account=SA, audience=AUD, private=True, what="w")
    assert claims["email"] == SA and claims["aud"] == AUD
    assert check(token) == 200  # a signature still present is verified (defense in depth)
    assert check(GoogleKey.generate("test-kid").token(audience=AUD, email=SA)) == 401  # ... and must be right
    assert check(strip_signature(token), private=False) == 401  # a public function needs the signature


@pytest.mark.parametrize("claims,expected", [  # claims given the time of the check
    (lambda now: {"aud": "https://elsewhere.example.com"}, 401),
    (lambda now: {"iss": "https://securetoken.google.com/demo-openclaw"}, 401),
    (lambda now: {"iss": "accounts.google.com"}, 200),
    (lambda now: {"exp": now - 3600, "iat": now - 7200}, 401),
    (lambda now: {"exp": now - 10}, (200, 401)),  # within our leeway; google-auth's JWK path has none
    (lambda now: {"iat": now + 600}, 401),
    (lambda now: {"exp": None}, 401),  # left out
    (lambda now: {"email": "someone@demo-openclaw.iam.gserviceaccount.com"}, 403),
    (lambda now: {"email_verified": False}, 403),
])
def test_claims_are_checked_with_and_without_signature(env, claims, expected):
    key = env()
    token = key.token(**{"audience": AUD, "email": SA, **claims(int(time.time()))})
    unsigned, signed = expected if isinstance(expected, tuple) else (expected, expected)
    assert check(strip_signature(token)) == unsigned
    assert check(token, private=False) == signed


def test_unconfigured_malformed_and_unreachable(env, monkeypatch):
    key = env()
    token = key.token(audience=AUD, email=SA)
    assert check(token, account=None) == 403 and check(token, audience="") == 403
    monkeypatch.setenv("GOOGLE_CERTS_URL", "http://127.0.0.1:9/certs")  # nothing listens
    assert check("not-a-jwt") == 401  # refused before any key fetch
    assert check(token) == 503


def test_cloud_task_headers_then_token(env):
    key = env()
    headers = {"X-CloudTasks-QueueName": "deploy-jobs", "X-CloudTasks-TaskName": "t1"}

    def task(h):
        return status(google_identity.cloud_task, request(h), queue="deploy-jobs", account=SA, audience=AUD,
                      what="deploy worker")
    assert task({}) == 403
    assert task({**headers, "X-CloudTasks-QueueName": "projects/p/locations/l/queues/other"}) == 403
    assert task(headers) == 401  # production rules: the token is required
    assert task({**headers, "Authorization": "Basic x"}) == 401
    good = {**headers, "Authorization": f"Bearer {strip_signature(key.token(audience=AUD, email=SA))}"}
    assert task(good) == 200
    assert task({**good, "X-CloudTasks-QueueName": "projects/p/locations/l/queues/deploy-jobs"}) == 200
    env("local")
    assert task(headers) == 200  # local only: the stand-in sends no token unless told to
    assert task({**headers, "Authorization": "Bearer not-a-jwt"}) == 401  # a token sent is checked


def test_scheduler_or_admin_routes_google_tokens_to_the_scheduler(env):
    key = env()
    aud = "https://us-central1-demo-openclaw.cloudfunctions.net/pullCosts"
    sched = "cost-scheduler@demo-openclaw.iam.gserviceaccount.com"

    def who(h):
        return google_identity.scheduler_or_admin(request(h), account=sched, audience=aud)
    token = key.token(audience=aud, email=sched)
    assert who({"Authorization": f"Bearer {token}"}) == ("scheduler", None)
    assert status(who, {"Authorization": f"Bearer {strip_signature(token)}"}) == 401  # public: signed
    assert status(who, {"Authorization": f"Bearer {key.token(audience=aud, email=SA)}"}) == 403
    header = {"X-CloudScheduler-ScheduleTime": "2026-11-15T06:00:00Z"}
    assert status(who, header) == 401  # no token: the user authentication asks for one
    env("local")
    assert who(header) == ("scheduler", None)  # local only


# The Cloud Tasks stand-in, started with a key file and a URL map, and that key's certificates.

def test_tasks_stand_in_signs_oidc_tokens_and_maps_urls(tmp_path, env, monkeypatch):
    import jwt
    from google.cloud import tasks_v2

    from devtools.stack import PROJECT_ID, Stack
    from shared.tasks import emulator_client

    signer = GoogleKey.generate("stand-in-kid")
    key_file = signer.write(tmp_path / "oidc-key.json", SA, PROJECT_ID)
    got, arrived = {}, threading.Event()

    def record(environ, start_response):
        got[environ.get("HTTP_X_CLOUDTASKS_TASKNAME")] = (environ["PATH_INFO"], environ.get("HTTP_AUTHORIZATION"))
        arrived.set()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    base = f"https://us-central1-{PROJECT_ID}.cloudfunctions.net"
    with serving(record) as target, Stack() as stack:
        host = stack.tasks(["oidc"], max_retries=0, oidc_key=key_file, url_map={base: target})
        client = emulator_client(host)
        parent = f"projects/{PROJECT_ID}/locations/us-central1/queues/oidc"
        for name, oidc in (("default-aud", tasks_v2.OidcToken(service_account_email=SA)),
                           ("own-aud", tasks_v2.OidcToken(service_account_email=SA, audience="https://aud.example")),
                           ("no-token", None)):
            http = tasks_v2.HttpRequest(http_method=tasks_v2.HttpMethod.POST, url=f"{base}/deployWorker/{name}",
                                        body=b"{}", oidc_token=oidc)
            client.create_task(parent=parent, task=tasks_v2.Task(name=f"{parent}/tasks/{name}", http_request=http))
            assert arrived.wait(15), f"task {name} not delivered"
            arrived.clear()
        assert {t: path for t, (path, _) in got.items()} == {n: f"/deployWorker/{n}" for n in got}  # mapped
        assert set(got) == {"default-aud", "own-aud", "no-token"} and got["no-token"][1] is None

        stack.google_certs(key_file)  # the key's JWK Set, as deploy-check runs serve it
        monkeypatch.setenv("GOOGLE_CERTS_URL", stack.env["GOOGLE_CERTS_URL"])
        for name, aud in (("default-aud", f"{base}/deployWorker/default-aud"), ("own-aud", "https://aud.example")):
            token = got[name][1].removeprefix("Bearer ")
            assert jwt.get_unverified_header(token)["kid"] == "stand-in-kid"
            claims = google_identity.verify(token, account=SA, audience=aud, private=False, what="test")
            assert claims["iss"] == "https://accounts.google.com" and claims["azp"] == SA
            assert claims["exp"] - claims["iat"] == 3600 and claims["email_verified"] is True
