"""Bearer tokens: Firebase (auth emulator) and Clerk (RS256 via a local JWKS), user creation, lastSeenAt."""
import json
import time
from concurrent.futures import ThreadPoolExecutor

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from devtools.server import json_app, serving
from shared import auth, config, repos
from shared.errors import Unauthenticated


def test_missing_or_malformed_authorization(api):
    for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer "},
                    {"Authorization": "Bearer not-a-jwt"}):
        r = api("GET", "/users/me", headers=headers)
        assert r.status_code == 401, headers
        assert r.json["error"]["code"] == "unauthenticated"
        assert r.headers["WWW-Authenticate"] == "Bearer"


def test_first_call_creates_user_once_even_concurrently(api, stack):
    from devtools.token import emulator_account

    acc = emulator_account(stack.env["FIREBASE_AUTH_EMULATOR_HOST"], "racer@example.com", "password-123")
    headers = {"Authorization": f"Bearer {acc['idToken']}"}
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: api("GET", "/users/me", headers=headers).status_code, range(8)))
    assert statuses == [200] * 8
    users = repos.users.all({"clerkId": acc["localId"]})
    assert len(users) == 1
    u = users[0]
    assert (u.role, u.status, u.email) == ("user", "active", "racer@example.com")


def test_last_seen_is_refreshed_at_most_once_a_minute(api, callers):
    owner = callers["owner"]
    first = api("GET", "/users/me", owner).json["lastSeenAt"]
    assert api("GET", "/users/me", owner).json["lastSeenAt"] == first
    repos.users.update(owner.user_id, {"lastSeenAt": first - auth.SEEN_EVERY_MS})
    assert api("GET", "/users/me", owner).json["lastSeenAt"] > first - auth.SEEN_EVERY_MS


def test_imported_user_is_found_by_clerk_id(api, callers):
    from shared.models import User

    owner = callers["owner"]
    repos.users.set(User(_id="convex-id-123", clerkId=owner.uid, email="old@example.com", createdAt=1))
    r = api("GET", "/users/me", owner)
    assert r.json["_id"] == "convex-id-123"
    assert len(repos.users.all({"clerkId": owner.uid})) == 1


def test_unsigned_tokens_of_the_auth_emulator_in_deploy_check(callers, monkeypatch):
    """deploy-check runs production's rules against the emulators: the Auth emulator's unsigned
    tokens are the only ones it issues, so they are accepted there."""
    monkeypatch.setenv("APP_ENV", "deploy-check")
    config.reset()
    try:
        assert auth.verify(callers["owner"].token).subject == callers["owner"].uid
    finally:
        monkeypatch.undo()
        config.reset()


def test_unsigned_tokens_refused_in_production(callers, monkeypatch):
    token = callers["owner"].token
    assert auth._header_alg(token) == "none"  # the auth emulator's tokens are unsigned
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.delenv("FIREBASE_AUTH_EMULATOR_HOST")
    monkeypatch.delenv("FIRESTORE_EMULATOR_HOST")
    config.reset()
    try:
        with pytest.raises(Unauthenticated):
            auth.verify(token)
    finally:
        monkeypatch.undo()
        config.reset()


# Clerk: RS256 tokens checked against the issuer's JWKS, served here on 127.0.0.1.
@pytest.fixture
def clerk(monkeypatch):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update(kid="k1", use="sig", alg="RS256")
    issuer = "https://clerk.example.test"

    def token(sub="user_clerk_1", iss=issuer, exp_in=300, signer=key, kid="k1", **extra):
        now = int(time.time())
        claims = {"sub": sub, "iss": iss, "iat": now, "nbf": now, "exp": now + exp_in, **extra}
        return jwt.encode(claims, signer, algorithm="RS256", headers={"kid": kid})

    with serving(json_app({"keys": [jwk]})) as jwks_url:
        monkeypatch.setenv("AUTH_PROVIDER", "clerk")
        monkeypatch.setenv("CLERK_ISSUER", issuer)
        monkeypatch.setenv("CLERK_JWKS_URL", f"{jwks_url}/jwks.json")
        config.reset()
        auth._jwks_client.cache_clear()
        yield token
    monkeypatch.undo()
    config.reset()
    auth._jwks_client.cache_clear()


def test_clerk_session_token(api, clerk):
    r = api("GET", "/users/me", headers={"Authorization": f"Bearer {clerk(email='c@example.com')}"})
    assert r.status_code == 200, r.json
    assert r.json["clerkId"] == "user_clerk_1" and r.json["email"] == "c@example.com"


def test_clerk_rejects_bad_tokens(api, clerk, callers):
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for token in (clerk(exp_in=-60), clerk(iss="https://evil.example"), clerk(signer=other_key),
                  clerk(kid="unknown"), clerk(azp="https://evil.example"), callers["owner"].token):
        r = api("GET", "/users/me", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, r.json
