from shared import repos


def test_me_and_profile_update(api, callers):
    owner = callers["owner"]
    r = api("PATCH", "/users/me", owner, json={"name": "  Ada  ", "pictureUrl": "https://img.example.com/a.png"})
    assert r.status_code == 200 and r.json["name"] == "Ada"
    assert repos.users.require(owner.user_id).pictureUrl == "https://img.example.com/a.png"


def test_profile_update_rejects_bad_bodies(api, callers):
    owner = callers["owner"]
    for body in ({"role": "admin"}, {"name": ""}, {"name": "x" * 201}, {"pictureUrl": "javascript:alert(1)"}):
        r = api("PATCH", "/users/me", owner, json=body)
        assert r.status_code == 422, body
        assert r.json["error"]["code"] == "invalid_body"
    assert api("PATCH", "/users/me", owner, data="{", content_type="application/json").status_code == 400
    assert api("PATCH", "/users/me", owner, data="[]", content_type="application/json").status_code == 400
    assert api("PATCH", "/users/me", owner, data="name=x").status_code == 415
    assert repos.users.require(owner.user_id).role == "user"


def test_suspended_user_reads_only_its_profile(api, callers):
    s = callers["suspended"]
    assert api("GET", "/users/me", s).json["status"] == "suspended"
    r = api("PATCH", "/users/me", s, json={"name": "x"})
    assert r.status_code == 403 and r.json["error"]["code"] == "suspended"
    assert api("GET", "/pricingPlans", s).status_code == 403


def test_admin_lists_and_filters_users_with_pagination(api, callers):
    admin = callers["admin"]
    for c in ("owner", "other"):
        api("GET", "/users/me", callers[c])
    seen, cursor = [], None
    while True:
        r = api("GET", "/users", admin, query_string={"limit": 2, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200
        seen += [u["_id"] for u in r.json["items"]]
        cursor = r.json["nextCursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 4
    r = api("GET", "/users", admin, query_string={"role": "admin"})
    assert [u["email"] for u in r.json["items"]] == ["admin@example.com"]
    r = api("GET", "/users", admin, query_string={"status": "suspended", "role": "user"})
    assert [u["email"] for u in r.json["items"]] == ["suspended@example.com"]


def test_list_users_bad_query(api, callers):
    admin = callers["admin"]
    assert api("GET", "/users?limit=0", admin).status_code == 422
    assert api("GET", "/users?limit=101", admin).status_code == 422
    assert api("GET", "/users?role=king", admin).status_code == 422
    assert api("GET", "/users?bogus=1", admin).status_code == 422
    r = api("GET", "/users?cursor=not-a-cursor", admin)
    assert r.status_code == 400 and r.json["error"]["code"] == "invalid_cursor"


def test_admin_changes_role_and_status(api, callers):
    admin, owner = callers["admin"], callers["owner"]
    api("GET", "/users/me", owner)
    r = api("PATCH", f"/users/{owner.user_id}", admin, json={"status": "suspended"})
    assert r.status_code == 200 and r.json["status"] == "suspended"
    assert api("PATCH", "/users/me", owner, json={"name": "x"}).status_code == 403
    api("PATCH", f"/users/{owner.user_id}", admin, json={"status": "active", "role": "admin"})
    assert api("GET", "/users", owner).status_code == 200  # now an admin
    assert api("GET", f"/users/{owner.user_id}", admin).json["role"] == "admin"


def test_admin_cannot_lock_itself_out(api, callers):
    admin = callers["admin"]
    for body in ({"role": "user"}, {"status": "suspended"}):
        r = api("PATCH", f"/users/{admin.user_id}", admin, json=body)
        assert r.status_code == 409 and r.json["error"]["code"] == "self_lockout"
    assert repos.users.require(admin.user_id).role == "admin"
    assert api("PATCH", f"/users/{admin.user_id}", admin, json={"role": "admin"}).status_code == 200


def test_missing_user(api, callers):
    admin = callers["admin"]
    assert api("GET", "/users/nope", admin).status_code == 404
    r = api("PATCH", "/users/nope", admin, json={"role": "admin"})
    assert r.status_code == 404 and r.json["error"]["code"] == "not_found"
    assert repos.users.get("nope") is None
