"""The 14 collections of SCHEMA.md as pydantic models, field names exactly as there.

`id` is the Firestore document id; it is read and written as `_id` on the wire,
as the old backend did, and is never stored inside the document.
Timestamps are epoch milliseconds.
"""
from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["user", "admin"]
UserStatus = Literal["active", "suspended"]
DeploymentStatus = Literal["provisioning", "running", "stopped", "error"]
SubscriptionStatus = Literal["trialing", "active", "canceled", "past_due", "pending"]
Plan = Literal["starter", "pro"]
JobAction = Literal["deploy", "delete", "start", "stop", "reset", "update"]  # update: issue 8
JobStatus = Literal["pending", "running", "completed", "failed"]
MediaType = Literal["image", "video"]
NavSection = Literal["header", "footer", "sidebar"]


class Doc(BaseModel):
    """A stored document. Subclasses set `collection`."""

    # built on first use: faster cold start
    model_config = ConfigDict(populate_by_name=True, extra="ignore", defer_build=True)
    collection: ClassVar[str]
    etag_ignores: ClassVar[tuple[str, ...]] = ()  # fields that change without an edit (shared/http.py etag_of)

    id: str = Field(alias="_id")

    def to_store(self) -> dict[str, Any]:
        return self.model_dump(exclude={"id"})

    def to_api(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, mode="json")

    def updated(self, fields: dict[str, Any]):
        """This document with `fields` written over it, validated again (a nested model given as a
        dict, e.g. a plan's `limits`, becomes that model, as when the document is read back)."""
        return type(self).model_validate({**self.model_dump(by_alias=True), **fields})


class User(Doc):
    collection = "users"
    etag_ignores: ClassVar[tuple[str, ...]] = ("lastSeenAt",)  # refreshed by sign-ins, not an edit of the profile
    clerkId: str
    email: str = ""
    emailVerified: bool = False  # the identity provider vouched for `email` (only then may accounts link by it)
    name: str = ""
    pictureUrl: str = ""
    role: Role = "user"
    status: UserStatus = "active"
    lastSeenAt: int = 0
    createdAt: int


class StatusReason(BaseModel):
    model_config = ConfigDict(defer_build=True)
    code: str  # plan_limit: stopped because the plan allows fewer bots
    message: str
    at: int


class Deployment(Doc):
    collection = "deployments"
    userId: str
    gcpProject: str
    zone: str
    vmName: str
    status: DeploymentStatus
    botName: str
    brandEmoji: str = ""
    primaryModel: str
    fallbackModels: list[str] = []
    createdAt: int
    statusReason: StatusReason | None = None  # why the system (not the owner) changed the status, e.g. plan_limit


class Subscription(Doc):
    collection = "subscriptions"
    userId: str
    stripeCustomerId: str | None = None
    stripeSubscriptionId: str | None = None
    status: SubscriptionStatus
    plan: Plan | None = None
    trialEnd: int | None = None
    currentPeriodEnd: int | None = None
    createdAt: int
    updatedAt: int


class PluginConfig(Doc):
    collection = "pluginConfigs"
    deploymentId: str
    userId: str
    pluginId: str
    enabled: bool
    config: dict[str, Any] = {}


class SkillConfig(Doc):
    collection = "skillConfigs"
    deploymentId: str
    userId: str
    skillId: str
    enabled: bool
    cronOverride: str | None = None


class ApiKey(Doc):
    collection = "apiKeyRegistry"
    deploymentId: str
    userId: str
    keyName: str
    maskedValue: str


class DeployJob(Doc):
    collection = "deployJobs"
    userId: str
    deploymentId: str
    action: JobAction
    status: JobStatus
    log: str = ""
    startedAt: int | None = None
    completedAt: int | None = None


class CostSnapshot(Doc):
    collection = "costSnapshots"
    userId: str
    openrouterBalance: float | None = None
    openaiSpend: float | None = None
    gcpEstimate: float | None = None
    fetchedAt: int


class OpenrouterActivity(Doc):
    collection = "openrouterActivity"
    userId: str
    date: str
    model: str
    requests: int
    promptTokens: int
    completionTokens: int
    totalCostUsd: float


class Media(Doc):
    collection = "media"
    userId: str
    type: MediaType
    prompt: str = ""
    storageId: str
    driveUrl: str | None = None
    mimeType: str
    createdAt: int


class Knowledge(Doc):
    collection = "knowledge"
    userId: str
    text: str
    embedding: list[float] = []
    source: str
    createdAt: int

    def to_api(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, mode="json", exclude={"embedding"})  # 1536 floats: never sent back


class PlanLimits(BaseModel):
    """What a plan allows; null = no limit. Bots count every deployment the owner has, and running
    ones those not stopped (see shared/plan_limits.py)."""
    model_config = ConfigDict(defer_build=True)
    maxDeployments: int | None = Field(default=None, ge=0, le=1000)
    maxPluginsPerDeployment: int | None = Field(default=None, ge=0, le=1000)
    maxSkillsPerDeployment: int | None = Field(default=None, ge=0, le=1000)


class PricingPlan(Doc):
    collection = "pricingPlans"
    slug: Plan
    name: str
    priceMonthly: float
    priceYearly: float
    stripePriceId: str
    features: list[str] = []
    sortOrder: int = 0
    active: bool = True
    # absent on a stored plan: no limits (as before limits existed)
    limits: PlanLimits = Field(default_factory=lambda: PlanLimits())


class CmsPage(Doc):
    collection = "cmsPages"
    slug: str
    title: str
    body: str
    published: bool = False
    createdAt: int
    updatedAt: int


class NavLink(Doc):
    collection = "navLinks"
    label: str
    href: str
    section: NavSection
    placement: str = ""
    visible: bool = True
    sortOrder: int = 0


ALL_MODELS: tuple[type[Doc], ...] = (
    User, Deployment, Subscription, PluginConfig, SkillConfig, ApiKey, DeployJob,
    CostSnapshot, OpenrouterActivity, Media, Knowledge, PricingPlan, CmsPage, NavLink,
)
