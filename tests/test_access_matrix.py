"""Every endpoint x {anonymous, other user, owner, admin, suspended}: the expected status.
"owner" owns the addressed item where items have owners (users: the addressed user)."""
import pytest

from shared import clock, repos
from shared.models import CmsPage, NavLink, PricingPlan

CALLERS = ("anonymous", "other", "owner", "admin", "suspended")
PLAN = {"slug": "pro", "name": "Pro", "priceMonthly": 99, "priceYearly": 990, "stripePriceId": "price_pro"}
PAGE = {"title": "T", "body": "B", "published": True}
LINK = {"label": "L", "href": "/l", "section": "header"}



def admin_only(status: int) -> tuple:
    return (401, 403, 403, status, 403)


MATRIX = [
    # method, path, body, statuses in CALLERS order
    ("GET", "/users/me", None, (401, 200, 200, 200, 200)),
    ("PATCH", "/users/me", {"name": "N"}, (401, 200, 200, 200, 403)),
    ("GET", "/users", None, admin_only(200)),
    ("GET", "/users/{owner}", None, admin_only(200)),
    ("PATCH", "/users/{owner}", {"role": "user"}, admin_only(200)),
    ("GET", "/cmsPages", None, admin_only(200)),
    ("GET", "/cmsPages/about", None, (200, 200, 200, 200, 403)),
    ("GET", "/cmsPages/draft", None, (404, 404, 404, 200, 403)),
    ("PUT", "/cmsPages/about", PAGE, admin_only(200)),
    ("PUT", "/cmsPages/new-page", PAGE, admin_only(201)),
    ("DELETE", "/cmsPages/about", None, admin_only(204)),
    ("GET", "/navLinks?section=header", None, (200, 200, 200, 200, 403)),
    ("GET", "/navLinks?section=header&all=true", None, (403, 403, 403, 200, 403)),
    ("POST", "/navLinks", LINK, admin_only(201)),
    ("PATCH", "/navLinks/link1", {"label": "M"}, admin_only(200)),
    ("DELETE", "/navLinks/link1", None, admin_only(204)),
    ("POST", "/navLinks/reorder", {"section": "header", "ids": ["link1"]}, admin_only(200)),
    ("GET", "/pricingPlans", None, (200, 200, 200, 200, 403)),
    ("GET", "/pricingPlans?all=true", None, (403, 403, 403, 200, 403)),
    ("GET", "/pricingPlans/starter", None, (200, 200, 200, 200, 403)),
    ("POST", "/pricingPlans", PLAN, admin_only(201)),
    ("PATCH", "/pricingPlans/starter", {"name": "S"}, admin_only(200)),
    ("DELETE", "/pricingPlans/starter", None, admin_only(204)),
]

CASES = [pytest.param(m, p, b, who, st, id=f"{m} {p} as {who}")
         for m, p, b, statuses in MATRIX for who, st in zip(CALLERS, statuses)]


@pytest.fixture
def world(api, callers):
    now = clock.now_ms()
    api("GET", "/users/me", callers["owner"])  # creates the owner's user
    repos.cms_pages.set(CmsPage(_id="about", slug="about", title="A", body="b", published=True,
                                createdAt=now, updatedAt=now))
    repos.cms_pages.set(CmsPage(_id="draft", slug="draft", title="D", body="b", published=False,
                                createdAt=now, updatedAt=now))
    repos.nav_links.set(NavLink(_id="link1", label="L", href="/l", section="header"))
    repos.pricing_plans.set(PricingPlan(_id="starter", slug="starter", name="S", priceMonthly=1, priceYearly=10,
                                        stripePriceId="price_s"))
    return callers


@pytest.mark.parametrize("method,path,body,who,status", CASES)
def test_access(api, world, method, path, body, who, status):
    path = path.replace("{owner}", world["owner"].user_id)
    r = api(method, path, world[who], json=body)
    assert r.status_code == status, r.get_data(as_text=True)
    if status >= 400:
        assert set(r.json["error"]) >= {"code", "message"}
