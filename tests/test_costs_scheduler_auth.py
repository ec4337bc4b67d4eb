"""The scheduler's OIDC token, verified by google-auth against a local certificate endpoint
in Google's format (a JWK Set) for a key made here (devtools/standins/google_tokens.py)."""
from __future__ import annotations

import os
import time

import pytest
from costs_support import wait_run

from devtools.server import json_app, serving
from devtools.standins.google_tokens import GoogleKey

SA = "cost-scheduler@demo-openclaw.iam.gserviceaccount.com"
AUD = "https://us-central1-demo-openclaw.cloudfunctions.net/pullCosts"


@pytest.fixture(scope="module")
def google_certs(costs_env):
    """Google's ID-token keys for a key made here, on 127.0.0.1."""
    from shared.costs import settings

    key = GoogleKey.generate()
    with serving(json_app(key.jwks())) as certs_url:
        os.environ.update(COSTS_SCHEDULER_SA=SA, COSTS_SCHEDULER_AUDIENCE=AUD, GOOGLE_CERTS_URL=f"{certs_url}/certs")
        settings.reset()
        yield key
    for name in ("COSTS_SCHEDULER_SA", "COSTS_SCHEDULER_AUDIENCE", "GOOGLE_CERTS_URL"):
        os.environ.pop(name)
    settings.reset()


def token(key: GoogleKey, **over) -> str:
    return key.token(**{"audience": AUD, "email": SA, "lifetime_s": 600, **over})


def call(client, tok: str):
    return client.post("/pullCosts", json={}, headers={"X-CloudScheduler-ScheduleTime": "2026-11-15T06:00:00Z",
                                                       "Authorization": f"Bearer {tok}"})


def test_scheduler_token_starts_the_run(client, providers, google_certs):
    resp = call(client, token(google_certs))
    assert resp.status_code == 202, resp.json
    assert resp.json["trigger"] == "scheduler"
    wait_run(resp.json["runId"])


def test_scheduler_token_checks(client, providers, google_certs):
    other_key = GoogleKey.generate()
    assert call(client, token(google_certs, email="someone@x.iam.gserviceaccount.com")).status_code == 403
    assert call(client, token(google_certs, aud="https://elsewhere")).status_code == 401
    assert call(client, token(google_certs, exp=int(time.time()) - 3600)).status_code == 401
    assert call(client, token(other_key)).status_code == 401  # not signed by the certificates' key
    no_time = client.post("/pullCosts", json={}, headers={"Authorization": f"Bearer {token(google_certs)}"})
    assert no_time.status_code == 400 and no_time.json["error"]["code"] == "invalid_schedule_time"
