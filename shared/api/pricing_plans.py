"""`pricingPlans`: the plans shown on the pricing page; admins write them."""
from __future__ import annotations

from typing import Annotated

from google.api_core import exceptions as gexc
from pydantic import Field, StringConstraints

from shared import db, repos
from shared.api.inputs import Flag, ShortText, Strict
from shared.errors import Forbidden, conflict, not_found
from shared.http import Api, Request, list_of, precondition
from shared.models import Plan, PricingPlan

api = Api("pricingPlans", "Pricing plans of the public site")

Price = Annotated[float, Field(ge=0, le=100_000)]
PriceId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_]{1,255}$")]
Features = Annotated[list[Annotated[str, StringConstraints(min_length=1, max_length=200)]], Field(max_length=30)]


Limit = Annotated[int | None, Field(None, ge=0, le=1000)]


class LimitsInput(Strict):
    """What the plan allows (null: no limit); shared/plan_limits.py enforces it."""
    maxDeployments: Limit = None
    maxPluginsPerDeployment: Limit = None
    maxSkillsPerDeployment: Limit = None


class PlanCreate(Strict):
    slug: Plan
    name: ShortText
    priceMonthly: Price
    priceYearly: Price
    stripePriceId: PriceId
    features: Features = []
    sortOrder: int = Field(0, ge=0, le=10_000)
    active: bool = True
    limits: LimitsInput = Field(default_factory=LimitsInput)


class PlanUpdate(Strict):
    name: ShortText | None = None
    priceMonthly: Price | None = None
    priceYearly: Price | None = None
    stripePriceId: PriceId | None = None
    features: Features | None = None
    sortOrder: int | None = Field(None, ge=0, le=10_000)
    active: bool | None = None
    limits: LimitsInput | None = Field(None, description="replaces the plan's limits as a whole")


class PlanListQuery(Strict):
    all: Flag = Field(False, description="admin: include inactive plans")


@api.route("GET", "/", access="public", query=PlanListQuery, response=list_of(PricingPlan))
def list_plans(req: Request):
    """Active plans by sortOrder (admins may ask for all)."""
    if req.query.all:
        if not req.by_admin:
            raise Forbidden("forbidden", "only admins see inactive plans")
        return {"items": repos.pricing_plans.all({}, (("sortOrder", "ASCENDING"),))}
    return {"items": repos.pricing_plans.all({"active": True}, (("sortOrder", "ASCENDING"),))}


@api.route("GET", "/{slug}", access="public", response=PricingPlan, etag=True)
def get_plan(req: Request):
    """One active plan by slug (admins also see inactive ones)."""
    plan = repos.pricing_plans.first(slug=req.params["slug"])
    if plan is None or not (plan.active or req.by_admin):
        raise not_found(f"plan {req.params['slug']!r}")
    return plan


@api.route("POST", "/", access="admin", body=PlanCreate, status=201, response=PricingPlan, idempotent=True)
def create_plan(req: Request):
    """Admin: add a plan (slug unique: the document id is the slug, so create() is the atomic check;
    the query catches plans imported under other ids)."""
    body = req.body
    if repos.pricing_plans.first(slug=body.slug):
        raise conflict(f"a plan with slug {body.slug!r} exists")
    try:
        return repos.pricing_plans.create(PricingPlan(_id=body.slug, **body.model_dump()))
    except gexc.AlreadyExists:
        raise conflict(f"a plan with slug {body.slug!r} exists") from None


def _plan(tx, req: Request) -> PricingPlan:
    plan = repos.pricing_plans.first(tx, slug=req.params["slug"])
    if plan is None:
        raise not_found(f"plan {req.params['slug']!r}")
    precondition(req, plan)
    return plan


@api.route("PATCH", "/{slug}", access="admin", body=PlanUpdate, response=PricingPlan, etag=True)
@db.transactional
def update_plan(tx, req: Request):
    """Admin: change a plan."""
    # a null inside `limits` is "no limit" and is stored
    return repos.pricing_plans.patch(_plan(tx, req), req.body.changes(), tx)


@api.route("DELETE", "/{slug}", access="admin", status=204, etag=True)
@db.transactional
def delete_plan(tx, req: Request):
    """Admin: remove a plan."""
    repos.pricing_plans.delete(_plan(tx, req).id, tx)
