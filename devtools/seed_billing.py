"""`make dev` billing: prices in localstripe for the seeded plans (monthly and yearly), and
localstripe's signed webhooks pointed at the dev server's stripeWebhook function."""
from __future__ import annotations

import httpx

PRICES = (("starter", "price_starter_monthly", 2900, "month"), ("starter", "price_starter_yearly", 29000, "year"),
          ("pro", "price_pro_monthly", 9900, "month"), ("pro", "price_pro_yearly", 99000, "year"))


def seed(env: dict[str, str], webhook_url: str) -> None:
    import stripe

    sc = stripe.StripeClient(env["STRIPE_SECRET_KEY"], base_addresses={"api": env["STRIPE_API_BASE"]})
    products: dict[str, str] = {}
    for slug, price_id, amount, interval in PRICES:
        if slug not in products:
            products[slug] = sc.v1.products.create({"name": slug.title(), "type": "service"}).id
        sc.v1.plans.create({"id": price_id, "amount": amount, "currency": "usd", "interval": interval,
                            "product": products[slug]})
    httpx.post(f"{env['LOCALSTRIPE_URL']}/_config/webhooks/dev",
               data={"url": webhook_url, "secret": env["STRIPE_WEBHOOK_SECRET"]}).raise_for_status()
