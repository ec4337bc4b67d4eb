"""Firestore reads and writes of one call to each endpoint, counted against the emulator.

    .venv/bin/python -m bench.cost_per_request
Lists run with their default page (20) over more rows than a page, so their cost
shows as page size + constant. Every documented operation must have a scenario here.
"""
from __future__ import annotations

import httpx

from bench.common import ROOT, local_stack, served_app, token_for  # noqa: F401

# (method, path, caller, body); {owner} is the owner's user id
SCENARIOS = [
    ("GET", "/users/me", "owner", None),
    ("PATCH", "/users/me", "owner", {"name": "Ada"}),
    ("GET", "/users", "admin", None),
    ("GET", "/users?role=user", "admin", None),
    ("GET", "/users/{owner}", "admin", None),
    ("PATCH", "/users/{owner}", "admin", {"role": "user"}),
    ("GET", "/cmsPages", "admin", None),
    ("GET", "/cmsPages/page-1", None, None),
    ("PUT", "/cmsPages/page-1", "admin", {"title": "T", "body": "B", "published": True}),
    ("DELETE", "/cmsPages/page-2", "admin", None),
    ("GET", "/navLinks?section=header", None, None),
    ("POST", "/navLinks", "admin", {"label": "L", "href": "/l", "section": "footer"}),
    ("POST", "/navLinks/reorder", "admin", {"section": "sidebar", "ids": ["link-0", "link-1"]}),
    ("PATCH", "/navLinks/link-3", "admin", {"label": "M"}),
    ("DELETE", "/navLinks/link-4", "admin", None),
    ("GET", "/pricingPlans", None, None),
    ("GET", "/pricingPlans/starter", None, None),
    ("POST", "/pricingPlans", "admin", {"slug": "pro", "name": "Pro", "priceMonthly": 9, "priceYearly": 90,
                                        "stripePriceId": "price_pro"}),
    ("PATCH", "/pricingPlans/starter", "admin", {"name": "S"}),
    ("DELETE", "/pricingPlans/starter", "admin", None),
]


def seed() -> None:
    from shared import clock, repos
    from shared.models import CmsPage, NavLink, PricingPlan, User

    now = clock.now_ms()
    for i in range(50):
        repos.users.set(User(_id=f"bench-u{i}", clerkId=f"bench-c{i}", createdAt=now - i))
        repos.cms_pages.set(CmsPage(_id=f"page-{i}", slug=f"page-{i}", title="t", body="b", published=True,
                                    createdAt=now, updatedAt=now - i))
    for i in range(10):
        section = "sidebar" if i < 2 else "header"
        repos.nav_links.set(NavLink(_id=f"link-{i}", label=f"L{i}", href=f"/{i}", section=section, sortOrder=i))
    repos.pricing_plans.set(PricingPlan(_id="starter", slug="starter", name="S", priceMonthly=1, priceYearly=10,
                                        stripePriceId="price_s"))


def main() -> None:
    from devtools import openapi
    from devtools.firestore_meter import metered

    with local_stack() as stack:
        tokens = {"owner": token_for(stack, "owner@example.com"), "admin": token_for(stack, "admin@example.com", "admin")}
        seed()
        documented = {(m.upper(), p) for p, ops in openapi.document()["paths"].items() for m in ops}
        covered = set()
        rows = []
        with served_app() as base, httpx.Client(base_url=base) as http:
            for method, path, who, body in SCENARIOS:
                url = path.replace("{owner}", tokens["owner"][1])
                headers = {"Authorization": f"Bearer {tokens[who][0]}"} if who else {}
                with metered() as m:
                    r = http.request(method, url, headers=headers, json=body)
                rows.append((method, path, who or "anonymous", r.status_code, m.reads, m.writes))
                covered.add((method, openapi.template_of(method, url)))
        print(f"{'method':<7}{'path':<34}{'caller':<11}{'status':>7}{'reads':>7}{'writes':>7}")
        for method, path, who, status, reads, writes in rows:
            print(f"{method:<7}{path:<34}{who:<11}{status:>7}{reads:>7}{writes:>7}")
        missing = sorted(documented - covered)
        print(f"\n{len(rows)} scenarios; documented operations without a scenario: {missing or 'none'}")


if __name__ == "__main__":
    main()
