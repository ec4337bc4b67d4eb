"""The scheduler's OIDC token, verified by google-auth against a local certificate endpoint
in Google's format ({kid: PEM certificate}) signed with a key made here."""
from __future__ import annotations

import datetime as dt
import os
import time

import jwt
import pytest
from costs_support import wait_run
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from devtools.server import json_app, serving

SA = "cost-scheduler@demo-openclaw.iam.gserviceaccount.com"
AUD = "https://us-central1-demo-openclaw.cloudfunctions.net/pullCosts"


def keypair():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "local-google-certs")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    return key, cert.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture(scope="module")
def google_certs(costs_env):
    """Google's ID-token certificates (v1 format: kid -> PEM) for a key made here, on 127.0.0.1."""
    from shared.costs import settings

    key, pem = keypair()
    with serving(json_app({"k1": pem})) as certs_url:
        os.environ.update(COSTS_SCHEDULER_SA=SA, COSTS_SCHEDULER_AUDIENCE=AUD, GOOGLE_CERTS_URL=f"{certs_url}/certs")
        settings.reset()
        yield key
    for name in ("COSTS_SCHEDULER_SA", "COSTS_SCHEDULER_AUDIENCE", "GOOGLE_CERTS_URL"):
        os.environ.pop(name)
    settings.reset()


def token(key, **over) -> str:
    now = int(time.time())
    claims = {"iss": "https://accounts.google.com", "aud": AUD, "email": SA, "email_verified": True,
              "sub": "1234", "iat": now, "exp": now + 600, **over}
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k1"})


def call(client, tok: str):
    return client.post("/pullCosts", json={}, headers={"X-CloudScheduler-ScheduleTime": "2026-11-15T06:00:00Z",
                                                       "Authorization": f"Bearer {tok}"})


def test_scheduler_token_starts_the_run(client, providers, google_certs):
    resp = call(client, token(google_certs))
    assert resp.status_code == 202, resp.json
    assert resp.json["trigger"] == "scheduler"
    wait_run(resp.json["runId"])


def test_scheduler_token_checks(client, providers, google_certs):
    other_key, _ = keypair()
    assert call(client, token(google_certs, email="someone@x.iam.gserviceaccount.com")).status_code == 403
    assert call(client, token(google_certs, aud="https://elsewhere")).status_code == 401
    assert call(client, token(google_certs, exp=int(time.time()) - 3600)).status_code == 401
    assert call(client, token(other_key)).status_code == 401  # not signed by the certificates' key
