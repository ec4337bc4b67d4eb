"""cmsPages, navLinks and pricingPlans: public reads, admin writes."""
from shared import repos

PAGE = {"title": "About us", "body": "# Hello\n\nmarkdown", "published": True}
PLAN = {"slug": "starter", "name": "Starter", "priceMonthly": 29, "priceYearly": 290,
        "stripePriceId": "price_123", "features": ["a", "b"], "sortOrder": 1}


def test_cms_page_lifecycle(api, callers):
    admin = callers["admin"]
    r = api("PUT", "/cmsPages/about", admin, json=PAGE)
    assert r.status_code == 201 and r.json["slug"] == "about"
    created = r.json["createdAt"]
    r = api("PUT", "/cmsPages/about", admin, json={**PAGE, "title": "About", "published": False})
    assert r.status_code == 200 and r.json["createdAt"] == created and r.json["updatedAt"] >= created
    assert api("GET", "/cmsPages/about").status_code == 404  # draft: hidden from the public
    assert api("GET", "/cmsPages/about", callers["owner"]).status_code == 404
    assert api("GET", "/cmsPages/about", admin).json["title"] == "About"
    api("PUT", "/cmsPages/about", admin, json=PAGE)
    assert api("GET", "/cmsPages/about").json["body"] == PAGE["body"]
    assert len(repos.cms_pages.all({"slug": "about"})) == 1
    assert api("DELETE", "/cmsPages/about", admin).status_code == 204
    assert api("GET", "/cmsPages/about", admin).status_code == 404
    assert api("DELETE", "/cmsPages/about", admin).status_code == 404


def test_cms_admin_list_and_bad_input(api, callers):
    admin = callers["admin"]
    for slug in ("a", "b", "c"):
        api("PUT", f"/cmsPages/{slug}", admin, json={**PAGE, "published": slug != "b"})
    r = api("GET", "/cmsPages", admin, query_string={"limit": 2})
    assert len(r.json["items"]) == 2 and r.json["nextCursor"]
    r2 = api("GET", "/cmsPages", admin, query_string={"limit": 2, "cursor": r.json["nextCursor"]})
    assert len(r2.json["items"]) == 1 and r2.json["nextCursor"] is None
    assert [p["slug"] for p in api("GET", "/cmsPages?published=false", admin).json["items"]] == ["b"]
    assert api("PUT", "/cmsPages/Bad_Slug", admin, json=PAGE).status_code == 422
    assert api("PUT", "/cmsPages/ok", admin, json={**PAGE, "body": "x" * 100_001}).status_code == 422
    assert api("PUT", "/cmsPages/ok", admin, json={**PAGE, "createdAt": 1}).status_code == 422
    assert api("PUT", "/cmsPages/ok", admin, json={"title": "t"}).status_code == 422
    assert repos.cms_pages.get("ok") is None


def test_nav_links(api, callers):
    admin = callers["admin"]
    ids = []
    for i, label in enumerate(["Home", "Pricing", "Docs"]):
        r = api("POST", "/navLinks", admin, json={"label": label, "href": f"/{label.lower()}",
                                                 "section": "header", "sortOrder": 30 - i * 10})
        assert r.status_code == 201
        ids.append(r.json["_id"])
    api("POST", "/navLinks", admin, json={"label": "Hidden", "href": "/h", "section": "header", "visible": False})
    api("POST", "/navLinks", admin, json={"label": "Terms", "href": "/terms", "section": "footer"})
    r = api("GET", "/navLinks?section=header")
    assert [link["label"] for link in r.json["items"]] == ["Docs", "Pricing", "Home"]
    assert api("GET", "/navLinks?section=header&all=true").status_code == 403
    assert len(api("GET", "/navLinks?section=header&all=true", admin).json["items"]) == 4
    assert api("GET", "/navLinks").status_code == 422  # section is required
    assert api("GET", "/navLinks?section=top").status_code == 422

    r = api("PATCH", f"/navLinks/{ids[0]}", admin, json={"label": "Start", "visible": False})
    assert r.status_code == 200 and r.json["label"] == "Start"
    assert [link["label"] for link in api("GET", "/navLinks?section=header").json["items"]] == ["Docs", "Pricing"]
    assert api("PATCH", "/navLinks/nope", admin, json={"label": "x"}).status_code == 404
    assert api("PATCH", f"/navLinks/{ids[0]}", admin, json={"href": "javascript:x"}).status_code == 422
    assert api("DELETE", f"/navLinks/{ids[0]}", admin).status_code == 204
    assert api("DELETE", f"/navLinks/{ids[0]}", admin).status_code == 404


def test_nav_links_reorder_is_all_or_nothing(api, callers):
    admin = callers["admin"]
    ids = [api("POST", "/navLinks", admin, json={"label": f"L{i}", "href": f"/{i}", "section": "sidebar"}).json["_id"]
           for i in range(3)]
    r = api("POST", "/navLinks/reorder", admin, json={"section": "sidebar", "ids": ids[::-1]})
    assert r.status_code == 200
    assert [link["_id"] for link in api("GET", "/navLinks?section=sidebar").json["items"]] == ids[::-1]
    for bad in (ids[:2], ids + ["nope"], [ids[0]] * 3):
        r = api("POST", "/navLinks/reorder", admin, json={"section": "sidebar", "ids": bad})
        assert r.status_code == 422 and r.json["error"]["code"] == "invalid_order"
    assert [link["_id"] for link in api("GET", "/navLinks?section=sidebar").json["items"]] == ids[::-1]


def test_pricing_plans(api, callers):
    admin = callers["admin"]
    assert api("POST", "/pricingPlans", admin, json=PLAN).status_code == 201
    r = api("POST", "/pricingPlans", admin, json=PLAN)
    assert r.status_code == 409 and r.json["error"]["code"] == "conflict"
    api("POST", "/pricingPlans", admin, json={**PLAN, "slug": "pro", "name": "Pro", "sortOrder": 0})
    assert [p["slug"] for p in api("GET", "/pricingPlans").json["items"]] == ["pro", "starter"]
    r = api("PATCH", "/pricingPlans/pro", admin, json={"active": False, "priceMonthly": 120})
    assert r.status_code == 200 and r.json["priceMonthly"] == 120
    assert [p["slug"] for p in api("GET", "/pricingPlans").json["items"]] == ["starter"]
    assert api("GET", "/pricingPlans/pro").status_code == 404
    assert api("GET", "/pricingPlans/pro", admin).status_code == 200
    assert api("GET", "/pricingPlans?all=true", callers["owner"]).status_code == 403
    assert len(api("GET", "/pricingPlans?all=true", admin).json["items"]) == 2
    for bad in ({**PLAN, "slug": "gold"}, {**PLAN, "priceMonthly": -1}, {**PLAN, "features": ["x"] * 31},
                {**PLAN, "stripePriceId": "bad id"}, {**PLAN, "extra": 1}):
        assert api("POST", "/pricingPlans", admin, json=bad).status_code == 422
    assert api("PATCH", "/pricingPlans/gold", admin, json={"name": "x"}).status_code == 404
    assert api("DELETE", "/pricingPlans/pro", admin).status_code == 204
    assert api("DELETE", "/pricingPlans/pro", admin).status_code == 404
