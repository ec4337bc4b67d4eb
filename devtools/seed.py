"""Demo content for `make dev`: an admin (also in the auth emulator), the two plans,
a few CMS pages and nav links. Idempotent: re-running overwrites the same documents."""
from __future__ import annotations

from devtools.token import ADMIN_EMAIL, ADMIN_PASSWORD, emulator_account
from shared import clock, repos
from shared.auth import user_id_for
from shared.models import CmsPage, NavLink, PlanLimits, PricingPlan, User


def seed(auth_host: str) -> None:
    now = clock.now_ms()
    account = emulator_account(auth_host, ADMIN_EMAIL, ADMIN_PASSWORD)
    repos.users.set(User(_id=user_id_for(account["localId"]), clerkId=account["localId"], email=ADMIN_EMAIL,
                         name="Demo Admin", role="admin", createdAt=now))
    for plan in (
        PricingPlan(_id="starter", slug="starter", name="Starter", priceMonthly=29, priceYearly=290,
                    stripePriceId="price_starter_monthly", sortOrder=10,
                    features=["One OpenClaw bot", "Daily briefing skill", "Email support"],
                    limits=PlanLimits(maxDeployments=1, maxPluginsPerDeployment=3, maxSkillsPerDeployment=3)),
        PricingPlan(_id="pro", slug="pro", name="Pro", priceMonthly=99, priceYearly=990,
                    stripePriceId="price_pro_monthly", sortOrder=20,
                    features=["Everything in Starter", "All plugins and skills", "Knowledge base", "Priority support"],
                    limits=PlanLimits(maxDeployments=5)),
    ):
        repos.pricing_plans.set(plan)
    for slug, title, body, published in (
        ("about", "About", "# About\n\nWe host your own AI assistant.", True),
        ("terms", "Terms of service", "# Terms\n\nBe nice.", True),
        ("roadmap", "Roadmap", "# Roadmap\n\nDraft.", False),
    ):
        repos.cms_pages.set(CmsPage(_id=slug, slug=slug, title=title, body=body, published=published,
                                    createdAt=now, updatedAt=now))
    for i, (label, href, section, visible) in enumerate((
        ("Pricing", "/pricing", "header", True), ("Docs", "/docs", "header", True),
        ("Dashboard", "/dashboard", "sidebar", True), ("About", "/about", "footer", True),
        ("Terms", "/terms", "footer", True), ("Beta", "/beta", "header", False),
    )):
        repos.nav_links.set(NavLink(_id=f"seed-{i}", label=label, href=href, section=section,
                                    visible=visible, sortOrder=i * 10))
