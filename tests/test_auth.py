"""Bearer tokens: Firebase (auth emulator) and Clerk (RS256 via a local JWKS), user creation, lastSeenAt."""
import json
import time
from concurrent.futures import ThreadPoolExecutor

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from devtools.server import json_app, serving
from shared import auth, config, repos
from shared.errors import Unauthenticated, Unavailable


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


# Firebase in production: RS256 ID tokens checked against Google's securetoken certificates (served
# here on 127.0.0.1 in their wire format, key id -> X.509 PEM, with a Cache-Control max-age).
@pytest.fixture
def firebase(monkeypatch):
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID
    from werkzeug.wrappers import Response

    from shared import firebase_tokens

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "securetoken.system.gserviceaccount.com")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    fetches = []

    def certs_app(environ, start_response):
        fetches.append(1)
        resp = Response(json.dumps({"k1": pem}), mimetype="application/json",
                        headers={"Cache-Control": "public, max-age=3600"})
        return resp(environ, start_response)

    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.delenv("FIREBASE_AUTH_EMULATOR_HOST", raising=False)
    monkeypatch.delenv("FIRESTORE_EMULATOR_HOST", raising=False)
    config.reset()
    project = config.get().project

    def token(sub="fb-user-1", aud=project, iss=f"https://securetoken.google.com/{project}", exp_in=300,
              iat_in=0, signer=key, headers=None, algorithm="RS256", **extra):
        now = int(time.time())
        claims = {"sub": sub, "aud": aud, "iss": iss, "iat": now + iat_in, "exp": now + exp_in,
                  "auth_time": now, **extra}
        return jwt.encode(claims, signer, algorithm=algorithm, headers={"kid": "k1"} if headers is None else headers)

    firebase_tokens.keys.reset()
    with serving(certs_app) as url:
        monkeypatch.setattr(firebase_tokens, "CERTS_URL", f"{url}/certs")
        token.fetches = fetches
        yield token
    monkeypatch.undo()
    config.reset()
    firebase_tokens.keys.reset()


def test_firebase_id_token_signed_by_google(firebase):
    identity = auth.verify(firebase(email="fb@example.com", email_verified=True, name="Fb"))
    assert (identity.subject, identity.email, identity.email_verified, identity.name) == \
        ("fb-user-1", "fb@example.com", True, "Fb")
    auth.verify(firebase(sub="fb-user-2"))
    assert len(firebase.fetches) == 1  # the keys are kept for their max-age


def test_firebase_rejects_bad_tokens(firebase):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    project = config.get().project
    bad = {
        "another project": firebase(aud="demo-other"),
        "another issuer": firebase(iss="https://securetoken.google.com/demo-other"),
        "Google's OIDC issuer": firebase(iss="https://accounts.google.com"),
        "expired": firebase(exp_in=-5),
        "issued in the future": firebase(iat_in=120),
        "signed by another key": firebase(signer=other),
        "unknown key id": firebase(headers={"kid": "k2"}),
        "no key id": firebase(headers={}),
        "HS256": firebase(signer="secret-secret-secret-secret-secret", algorithm="HS256"),
        "custom token": firebase(aud="https://identitytoolkit.googleapis.com/"
                                     "google.identity.identitytoolkit.v1.IdentityToolkit"),
        "empty sub": firebase(sub=""),
        "long sub": firebase(sub="x" * 129),
        "unsigned": jwt.encode({"sub": "u", "aud": project, "iss": f"https://securetoken.google.com/{project}",
                                "iat": int(time.time()), "exp": int(time.time()) + 60}, None, algorithm="none"),
        "not a JWT": "not.a.jwt",
    }
    for what, token in bad.items():
        try:
            auth.verify(token)
        except Unauthenticated:
            continue
        pytest.fail(f"accepted a token: {what}")


def test_firebase_keys_out_of_reach_is_503(firebase, monkeypatch):
    from devtools.stack import free_port
    from shared import firebase_tokens

    monkeypatch.setattr(firebase_tokens, "CERTS_URL", f"http://127.0.0.1:{free_port()}/certs")  # nothing listens
    with pytest.raises(Unavailable):
        auth.verify(firebase())
