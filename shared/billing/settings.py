"""Configuration of the billing domain: Stripe keys, URLs, trial length and plan.

Read on first use by the billing functions only, so no other function needs these variables.
Under production rules (APP_ENV production or deploy-check) each function's section requires its
own: `checkout()` (billing: STRIPE_SECRET_KEY, APP_URL), `webhook()` (stripeWebhook:
STRIPE_WEBHOOK_SECRET and where its events are queued: STRIPE_EVENTS_QUEUE, TASKS_LOCATION,
STRIPE_EVENT_WORKER_URL, TASKS_INVOKER_SA), `event_worker()` (stripeEventWorker: STRIPE_SECRET_KEY,
TASKS_INVOKER_SA, STRIPE_EVENT_WORKER_URL), `reconcile()` (billingReconcile: STRIPE_SECRET_KEY,
BILLING_SCHEDULER_SA, BILLING_RECONCILE_URL). STRIPE_API_BASE (a local stand-in) is accepted only
with APP_ENV local or deploy-check.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from shared import config
from shared.config import ConfigError, env, env_choice, env_int


@dataclass(frozen=True)
class Settings:
    secret_key: str | None  # STRIPE_SECRET_KEY
    webhook_secret: str | None  # STRIPE_WEBHOOK_SECRET (whsec_...)
    api_base: str | None  # STRIPE_API_BASE: local stand-in only; None = api.stripe.com
    success_url: str
    cancel_url: str
    portal_return_url: str
    trial_days: int
    webhook_tolerance_s: int  # a signature older than this is refused (replay protection)
    network_retries: int
    scheduler_sa: str | None  # BILLING_SCHEDULER_SA: the Cloud Scheduler job's service account
    scheduler_audience: str | None  # BILLING_RECONCILE_URL: audience of the scheduler's OIDC token
    queue: str  # STRIPE_EVENTS_QUEUE: the Cloud Tasks queue of recorded webhook events
    worker_url: str | None  # STRIPE_EVENT_WORKER_URL: stripeEventWorker's URL (its tasks' OIDC audience)
    invoker_sa: str | None  # TASKS_INVOKER_SA: the account Cloud Tasks signs the worker's token for
    trial_plan: str  # BILLING_TRIAL_PLAN: whose plan limits a free trial (no plan yet) has

    def require_secret_key(self) -> str:
        if not self.secret_key:
            raise ConfigError("missing environment variable STRIPE_SECRET_KEY")
        return self.secret_key

    def require_webhook_secret(self) -> str:
        if not self.webhook_secret:
            raise ConfigError("missing environment variable STRIPE_WEBHOOK_SECRET")
        return self.webhook_secret


@lru_cache(maxsize=1)
def get() -> Settings:
    app_url = (env("APP_URL", "http://localhost:3000") or "").rstrip("/")
    config.refuse_local_endpoint("STRIPE_API_BASE")
    api_base = env("STRIPE_API_BASE")
    return Settings(
        secret_key=env("STRIPE_SECRET_KEY"),
        webhook_secret=env("STRIPE_WEBHOOK_SECRET"),
        api_base=api_base.rstrip("/") if api_base else None,
        success_url=env("BILLING_SUCCESS_URL", f"{app_url}/billing?checkout=success"),
        cancel_url=env("BILLING_CANCEL_URL", f"{app_url}/billing?checkout=cancel"),
        portal_return_url=env("BILLING_PORTAL_RETURN_URL", f"{app_url}/billing"),
        trial_days=env_int("BILLING_TRIAL_DAYS", 14, lo=1, hi=90),
        webhook_tolerance_s=env_int("STRIPE_WEBHOOK_TOLERANCE_S", 300, lo=10, hi=3600),
        network_retries=env_int("STRIPE_NETWORK_RETRIES", 2, lo=0, hi=5),
        scheduler_sa=env("BILLING_SCHEDULER_SA"),
        scheduler_audience=env("BILLING_RECONCILE_URL"),
        queue=env("STRIPE_EVENTS_QUEUE", "stripe-events"),
        worker_url=env("STRIPE_EVENT_WORKER_URL"),
        invoker_sa=env("TASKS_INVOKER_SA"),
        trial_plan=env_choice("BILLING_TRIAL_PLAN", "starter", ("starter", "pro")),
    )


STRIPE_SECRET = config.prefixed("sk_", "rk_")  # secret or restricted key


def checkout() -> Settings:
    """billing: Stripe, and the app's URL Checkout and the Portal return to."""
    config.require({"STRIPE_SECRET_KEY": STRIPE_SECRET, "APP_URL": config.https_url})
    return get()


def webhook() -> Settings:
    """stripeWebhook: the secret Stripe's deliveries are signed with, and the queue its events go to
    (it calls no Stripe API: the worker does)."""
    config.require({"STRIPE_WEBHOOK_SECRET": config.prefixed("whsec_"), "STRIPE_EVENTS_QUEUE": config.non_empty,
                    "TASKS_LOCATION": config.region, "STRIPE_EVENT_WORKER_URL": config.https_url,
                    "TASKS_INVOKER_SA": config.service_account})
    return get()


def event_worker() -> Settings:
    """stripeEventWorker: Stripe, and who may call it (Cloud Tasks' account, the token audience)."""
    config.require({"STRIPE_SECRET_KEY": STRIPE_SECRET, "TASKS_INVOKER_SA": config.service_account,
                    "STRIPE_EVENT_WORKER_URL": config.https_url})
    return get()


def reconcile() -> Settings:
    """billingReconcile: Stripe, and who may call it (the scheduler's account, the token audience)."""
    config.require({"STRIPE_SECRET_KEY": STRIPE_SECRET, "BILLING_SCHEDULER_SA": config.service_account,
                    "BILLING_RECONCILE_URL": config.https_url})
    return get()


def reset() -> None:
    get.cache_clear()
