"""Every endpoint x {anonymous, other user, owner, admin, suspended}: the expected status.
"owner" owns the addressed item where items have owners (users: the addressed user).

Each call is also metered (Firestore reads and writes); `pytest --cost-table` prints what the
successful calls cost (bench/cost_per_request.py)."""
import pytest

from devtools.firestore_meter import metered
from shared import clock, repos
from shared.models import CmsPage, NavLink

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
    ("GET", "/users?include=deployments,subscription", None, admin_only(200)),
    ("GET", "/users/{owner}", None, admin_only(200)),
    ("GET", "/users/{owner}?include=deployments,subscription", None, admin_only(200)),
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
    ("GET", "/navLinks/link1", None, (200, 200, 200, 200, 403)),
    ("GET", "/navLinks/hidden1", None, (404, 404, 404, 200, 403)),
    ("PATCH", "/navLinks/link1", {"label": "M"}, admin_only(200)),
    ("DELETE", "/navLinks/link1", None, admin_only(204)),
    ("POST", "/navLinks/reorder", {"section": "header", "ids": ["link1"]}, admin_only(200)),
    ("GET", "/pricingPlans", None, (200, 200, 200, 200, 403)),
    ("GET", "/pricingPlans?all=true", None, (403, 403, 403, 200, 403)),
    ("GET", "/pricingPlans/starter", None, (200, 200, 200, 200, 403)),
    ("POST", "/pricingPlans", PLAN, admin_only(201)),
    ("PATCH", "/pricingPlans/starter", {"name": "S"}, admin_only(200)),
    ("DELETE", "/pricingPlans/starter", None, admin_only(204)),
    # billing (Stripe: localstripe and its front)
    ("GET", "/billing/subscription", None, (401, 200, 200, 200, 403)),
    ("POST", "/billing/trial", None, (401, 201, 201, 201, 403)),
    ("POST", "/billing/checkout", {"plan": "starter"}, (401, 200, 200, 200, 403)),
    ("POST", "/billing/portal", None, (401, 409, 409, 409, 403)),  # no Stripe customer yet
    ("POST", "/stripeWebhook", {"id": "evt_1"}, (401, 401, 401, 401, 401)),  # unsigned: the signature is its credential
    ("POST", "/stripeEventWorker", {"eventId": "evt_1"}, (403, 403, 403, 403, 403)),  # only Cloud Tasks
    ("POST", "/billingReconcile", None, admin_only(200)),
    # costs ("owner" = the user whose costs are asked for)
    ("GET", "/costs/snapshots?userId={owner}", None, (401, 403, 200, 200, 403)),
    ("GET", "/costs/activity?userId={owner}&from=2026-11-01&to=2026-11-02", None, (401, 403, 200, 200, 403)),
    ("GET", "/costs/summary?userId={owner}", None, (401, 403, 200, 200, 403)),
    ("GET", "/costs/summary?userId=all", None, (401, 403, 403, 200, 403)),
    ("GET", "/costs/budget", None, (401, 404, 404, 404, 403)),  # none set
    ("GET", "/costs/budget?userId={owner}", None, (401, 403, 404, 404, 403)),
    ("PUT", "/costs/budget", {"monthlyUsd": 25, "action": "stop"}, (401, 200, 200, 200, 403)),  # one's own
    ("DELETE", "/costs/budget", None, (401, 404, 404, 404, 403)),
    ("GET", "/costs/runs/nope", None, admin_only(404)),
    ("GET", "/costs/accounts/{owner}", None, admin_only(404)),
    ("PUT", "/costs/accounts/{owner}", {"openaiProjectId": "proj_abc"}, admin_only(200)),
    ("POST", "/pullCosts", {}, admin_only(202)),
    ("GET", "/pullCosts/runs/nope", None, admin_only(404)),
    ("POST", "/pullOpenrouterActivity", {}, admin_only(202)),
    ("GET", "/pullOpenrouterActivity/runs/nope", None, admin_only(404)),
    ("POST", "/costPullWorker", {"runId": "r", "kind": "costs", "batch": 0, "scheduleTime": 1, "users": []},
     (403, 403, 403, 403, 403)),  # only Cloud Tasks (its headers; in production its OIDC token via IAM)
]

COST_ROWS: list[tuple] = []  # (method, path, caller, status, reads, writes) of every call made

CASES = [pytest.param(m, p, b, who, st, id=f"{m} {p} as {who}")
         for m, p, b, statuses in MATRIX for who, st in zip(CALLERS, statuses)]


@pytest.fixture
def world(api, callers, plans, providers):
    now = clock.now_ms()
    api("GET", "/users/me", callers["owner"])  # creates the owner's user
    repos.cms_pages.set(CmsPage(_id="about", slug="about", title="A", body="b", published=True,
                                createdAt=now, updatedAt=now))
    repos.cms_pages.set(CmsPage(_id="draft", slug="draft", title="D", body="b", published=False,
                                createdAt=now, updatedAt=now))
    repos.nav_links.set(NavLink(_id="link1", label="L", href="/l", section="header"))
    repos.nav_links.set(NavLink(_id="hidden1", label="H", href="/h", section="footer", visible=False))
    repos.pricing_plans.delete("pro")  # `plans` made both; the matrix creates "pro" again
    return callers


@pytest.mark.parametrize("method,path,body,who,status", CASES)
def test_access(api, world, method, path, body, who, status):
    path = path.replace("{owner}", world["owner"].user_id)
    with metered() as meter:
        r = api(method, path, world[who], json=body)
    COST_ROWS.append((method, path.replace(world["owner"].user_id, "{owner}"), who, r.status_code,
                      meter.reads, meter.writes))
    assert r.status_code == status, r.get_data(as_text=True)
    if status >= 400:
        assert set(r.json["error"]) >= {"code", "message"}
