"""The Stripe calls billing makes, through the official `stripe` library.

Objects come back as plain dicts (`to_dict()`), so the sync code reads Stripe's
JSON as documented, whatever the library's object classes do.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from functools import lru_cache

import stripe

from shared import config, faults
from shared.billing import settings as billing_settings
from shared.errors import Unavailable, UpstreamFailed

CALL_TIMEOUT_S = 15.0  # stripe's own default is 80 s

logging.getLogger("stripe").setLevel(logging.WARNING)  # the library logs every request at INFO


@lru_cache(maxsize=1)
def client() -> stripe.StripeClient:
    cfg = billing_settings.get()
    kwargs = {"base_addresses": {"api": cfg.api_base}} if cfg.api_base else {}
    # Each try is bounded so that all of them (the library retries connection errors, 409, 429 and 5xx
    # with backoff and jitter, reusing the idempotency key) end inside the function's budget.
    budget = config.get().function_timeout_s - faults.reserve_s(config.get().function_timeout_s)
    per_try = max(1.0, min(CALL_TIMEOUT_S, budget / (cfg.network_retries + 1) - 1))
    return stripe.StripeClient(cfg.require_secret_key(), max_network_retries=cfg.network_retries,
                               http_client=stripe.RequestsClient(timeout=per_try), **kwargs)


def reset() -> None:
    client.cache_clear()


@contextmanager
def user_facing():
    """Stripe failures on a user's request become a 502 JSON error instead of a bare 500."""
    try:
        yield
    except stripe.InvalidRequestError as exc:
        raise UpstreamFailed("payment_provider_error", f"Stripe refused the request: {exc.user_message}") from None
    except stripe.StripeError as exc:
        if faults.is_transient(exc):  # down, timed out or rate limiting after the library's retries
            raise Unavailable("payment_provider_unavailable",
                              f"Stripe could not be reached: {type(exc).__name__}; try again",
                              retry_after=faults.RETRY_AFTER_S) from None
        raise UpstreamFailed("payment_provider_error", f"Stripe refused the request: {type(exc).__name__}") from None


def customer_subscriptions(customer_id: str) -> list[dict]:
    """Every subscription of the customer, canceled ones too (Stripe's current state)."""
    page = client().v1.subscriptions.list({"customer": customer_id, "status": "all", "limit": 100})
    return [s.to_dict() for s in page.auto_paging_iter()]


@lru_cache(maxsize=256)
def price(price_id: str) -> dict:
    """A price never changes its product or interval once created: cache per instance."""
    return client().v1.prices.retrieve(price_id).to_dict()


def price_for_interval(price_id: str, interval: str) -> str | None:
    """The plan's price if it bills at `interval`, else an active price of the same product that does."""
    base = price(price_id)
    if (base.get("recurring") or {}).get("interval") == interval:
        return price_id
    found = client().v1.prices.list({"product": base["product"], "active": True, "type": "recurring",
                                     "recurring": {"interval": interval}, "limit": 10})
    return found.data[0].id if found.data else None


def create_customer(user_id: str, email: str, name: str) -> str:
    # One idempotency key per user: a retried or concurrent create returns the same customer.
    params = {"metadata": {"userId": user_id}}
    if email:
        params["email"] = email
    if name:
        params["name"] = name
    return client().v1.customers.create(params, {"idempotency_key": f"customer-{user_id}"}).id


def delete_customer(customer_id: str) -> None:
    client().v1.customers.delete(customer_id)


def checkout_session(params: dict) -> dict:
    return client().v1.checkout.sessions.create(params).to_dict()


def portal_session(customer_id: str, return_url: str) -> dict:
    return client().v1.billing_portal.sessions.create({"customer": customer_id, "return_url": return_url}).to_dict()
