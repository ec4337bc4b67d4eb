"""Accounts (issue 14, item 4): a new identity with an existing user's verified e-mail is linked to
that user, never on an unverified e-mail; ADMIN_EMAILS names the first admins; the admin user list
with `include`; a user's deploy jobs across deployments. Tokens come from the Auth emulator (Google
sign-ins carry email_verified: true, password sign-ups false)."""
import concurrent.futures
import json
import os

import httpx
import pytest

from shared import clock, config, repos
from shared.models import DeployJob, Deployment, Subscription, User


def google_token(stack, sub: str, email: str) -> str:
    """A Google sign-in on the Auth emulator: a new Firebase uid whose token says email_verified."""
    host = stack.env["FIREBASE_AUTH_EMULATOR_HOST"]
    claims = {"sub": sub, "email": email, "email_verified": True}
    r = httpx.post(f"http://{host}/identitytoolkit.googleapis.com/v1/accounts:signInWithIdp?key=local",
                   json={"postBody": f"id_token={json.dumps(claims)}&providerId=google.com",
                         "requestUri": "http://localhost", "returnSecureToken": True})
    r.raise_for_status()
    return r.json()["idToken"]


def password_token(stack, email: str) -> str:
    from devtools.token import emulator_account

    return emulator_account(stack.env["FIREBASE_AUTH_EMULATOR_HOST"], email, "password-123")["idToken"]


def me(api, token: str):
    return api.client.open("/users/me", headers={"Authorization": f"Bearer {token}"})


def old_user(user_id: str, email: str, verified: bool) -> User:
    """A user from before (e.g. imported from the old backend: another identity provider's subject)."""
    now = clock.now_ms()
    return repos.users.set(User(_id=user_id, clerkId=f"user_clerk_{user_id}", email=email, emailVerified=verified,
                                createdAt=now - 86400_000, lastSeenAt=now - 86400_000))


def test_new_identity_with_verified_email_is_linked_to_the_existing_user(api, stack):
    old_user("u_old", "ada@example.com", verified=True)
    now = clock.now_ms()
    repos.subscriptions.set(Subscription(_id="u_old", userId="u_old", status="active", plan="pro",
                                         createdAt=now, updatedAt=now))
    token = google_token(stack, "g-ada", "ada@example.com")
    with concurrent.futures.ThreadPoolExecutor(4) as pool:  # concurrent first calls: one link
        answers = list(pool.map(lambda _: me(api, token), range(4)))
    assert {r.status_code for r in answers} == {200}
    assert {r.json["_id"] for r in answers} == {"u_old"}
    assert [u.id for u in repos.users.all({"email": "ada@example.com"})] == ["u_old"]  # no second user
    sub = api.client.open("/billing/subscription", headers={"Authorization": f"Bearer {token}"}).json
    assert sub["subscription"]["plan"] == "pro"


def test_never_linked_on_an_unverified_email(api, stack):
    old_user("u_unverified", "bob@example.com", verified=False)  # the old account never proved the address
    r = me(api, google_token(stack, "g-bob", "bob@example.com"))
    assert r.status_code == 200 and r.json["_id"] != "u_unverified" and r.json["emailVerified"] is True
    old_user("u_verified", "carol@example.com", verified=True)
    r = me(api, password_token(stack, "carol@example.com"))  # a password sign-up: e-mail not verified
    assert r.status_code == 200 and r.json["_id"] != "u_verified" and r.json["emailVerified"] is False


def test_the_oldest_of_several_verified_users_wins(api, stack):
    old_user("u_newer", "dan@example.com", verified=True)
    older = old_user("u_older", "dan@example.com", verified=True)
    repos.users.update(older.id, {"createdAt": 1})
    assert me(api, google_token(stack, "g-dan", "dan@example.com")).json["_id"] == "u_older"


@pytest.fixture
def admin_emails():
    os.environ["ADMIN_EMAILS"] = "Root@Example.com, ops@example.com"
    config.reset()
    yield
    os.environ.pop("ADMIN_EMAILS")
    config.reset()


def test_configured_admins_are_admins_only_with_a_verified_email(api, stack, callers, admin_emails):
    r = me(api, google_token(stack, "g-root", "root@example.com"))
    assert r.json["role"] == "admin"
    root = r.json["_id"]
    assert me(api, password_token(stack, "ops@example.com")).json["role"] == "user"  # not verified
    # an existing user becomes admin on their next verified sign-in
    old_user("u_ops2", "ops@example.com", verified=True)
    assert me(api, google_token(stack, "g-ops", "ops@example.com")).json["role"] == "admin"
    # nobody demotes a configured admin through the API
    r = api("PATCH", f"/users/{root}", callers["admin"], json={"role": "user"})
    assert r.status_code == 409 and r.json["error"]["code"] == "configured_admin"
    assert api("PATCH", f"/users/{root}", callers["admin"], json={"status": "suspended"}).status_code == 200


def test_admin_emails_must_be_emails():
    os.environ["ADMIN_EMAILS"] = "root@example.com,not-an-email"
    try:
        with pytest.raises(config.ConfigError, match="ADMIN_EMAILS"):
            config.load()
    finally:
        os.environ.pop("ADMIN_EMAILS")


def _deployment(dep_id: str, user_id: str, created: int) -> Deployment:
    return repos.deployments.set(Deployment(_id=dep_id, userId=user_id, gcpProject="acme-bots", zone="us-central1-a",
                                            vmName=f"vm-{dep_id}", status="running", botName="B", primaryModel="m",
                                            createdAt=created))


def test_admin_user_list_includes_deployments_and_subscription(api, callers):
    owner = callers["owner"]
    api("GET", "/users/me", owner)
    now = clock.now_ms()
    for i in range(12):
        _deployment(f"dep{i:02d}", owner.user_id, now + i)
    repos.subscriptions.set(Subscription(_id=owner.user_id, userId=owner.user_id, status="active", plan="starter",
                                         createdAt=now, updatedAt=now))
    r = api("GET", "/users", callers["admin"], query_string={"include": "deployments,subscription"})
    assert r.status_code == 200
    row = next(u for u in r.json["items"] if u["_id"] == owner.user_id)
    assert [d["_id"] for d in row["deployments"]] == [f"dep{i:02d}" for i in range(11, 1, -1)]  # newest 10
    assert row["moreDeployments"] is True and row["subscription"]["plan"] == "starter"
    admin_row = next(u for u in r.json["items"] if u["_id"] == callers["admin"].user_id)
    assert admin_row["deployments"] == [] and admin_row["subscription"] is None
    plain = api("GET", "/users", callers["admin"]).json["items"][0]
    assert plain["deployments"] is None and plain["subscription"] is None  # always sent; null unless included
    one = api("GET", f"/users/{owner.user_id}", callers["admin"], query_string={"include": "subscription"}).json
    assert one["subscription"]["status"] == "active" and one["deployments"] is None
    bad = api("GET", "/users", callers["admin"], query_string={"include": "everything"})
    assert bad.status_code == 422


def test_a_user_lists_their_jobs_across_deployments(api, callers):
    from shared.deploy import jobs

    owner, other = callers["owner"], callers["other"]
    now = clock.now_ms()
    made = []
    for i, (dep, user, status) in enumerate([("d1", owner, "completed"), ("d2", owner, "failed"),
                                             ("d3", other, "completed"), ("d1", owner, "completed")]):
        job = DeployJob(_id=jobs.new_job_id(now + i), userId=user.user_id, deploymentId=dep, action="deploy",
                        status=status)
        repos.deploy_jobs.set(job)
        made.append(job)
    seen, cursor = [], None
    while True:
        r = api("GET", "/deployments/jobs", owner, query_string={"limit": 2, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200
        seen += [j["_id"] for j in r.json["items"]]
        cursor = r.json["nextCursor"]
        if not cursor:
            break
    assert seen == [made[3].id, made[1].id, made[0].id]  # newest first, only the owner's
    r = api("GET", "/deployments/jobs", owner, query_string={"status": "failed"})
    assert [j["_id"] for j in r.json["items"]] == [made[1].id]
    assert api("GET", "/deployments/jobs", callers["anonymous"]).status_code == 401
