"""Benchmark: 1,000 signed Stripe events, with duplicates and in shuffled order, posted to the
`stripeWebhook` function served locally (functions-framework, as Cloud Functions runs it); its
Cloud Tasks queue (the stand-in, parallel) delivers them to `stripeEventWorker` (functions-framework).

Starts its own Firestore emulator, localstripe, the Stripe front and the Cloud Tasks stand-in on free
127.0.0.1 ports, builds customers and subscriptions in localstripe with the real `stripe` library.
First the floor: the same deliveries posted to bench/webhook_floor.py (verify the signature + one
Firestore commit, nothing else); then to stripeWebhook. Prints the acknowledgement latency p50/p99 of
both and their ratio, the time until every event was applied, and whether Firestore's final state
matches Stripe's (and the ledger holds each event once, applied).

    .venv/bin/python -m bench.billing_webhook [--events 1000] [--unique 700] [--customers 25] [--concurrency 16]
                                              [--queue-concurrency 8]
"""
from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import random
import secrets
import statistics
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devtools.stack import Stack, free_port, wait_port  # noqa: E402

PRICES = {"price_starter_month": ("starter", 2900, "month"), "price_pro_month": ("pro", 9900, "month")}
STATUS = {"active": "active", "trialing": "trialing", "past_due": "past_due", "canceled": "canceled",
          "incomplete": "pending"}


def sign(body: bytes, secret: str) -> str:
    t = int(time.time())
    return f"t={t},v1={hmac.new(secret.encode(), f'{t}.'.encode() + body, hashlib.sha256).hexdigest()}"


def event(etype: str, obj: dict) -> dict:
    return {"id": "evt_" + secrets.token_hex(12), "object": "event", "type": etype, "created": int(time.time()),
            "livemode": False, "data": {"object": obj}}


def setup_stripe(sc, customers: int, rng: random.Random) -> tuple[dict[str, str], list[dict]]:
    """Customers with subscriptions that change plan, get canceled, resubscribe. Returns
    {user id: customer id} and a pool of real Stripe objects to wrap in events."""
    from shared import clock, repos
    from shared.models import PricingPlan, Subscription

    product = {}
    for price_id, (slug, amount, interval) in PRICES.items():
        product[slug] = sc.v1.products.create({"name": slug.title(), "type": "service"}).id
        sc.v1.plans.create({"id": price_id, "amount": amount, "currency": "usd", "interval": interval,
                            "product": product[slug]})
        repos.pricing_plans.set(PricingPlan(_id=slug, slug=slug, name=slug.title(), priceMonthly=amount / 100,
                                            priceYearly=amount / 10, stripePriceId=price_id))
    users, objects = {}, []
    for n in range(customers):
        uid = f"u_bench_{n:03d}"
        cus = sc.v1.customers.create({"email": f"{uid}@example.com", "metadata": {"userId": uid}}).id
        pm = sc.v1.payment_methods.create({"type": "card", "card": {"number": "4242424242424242", "exp_month": 12,
                                                                    "exp_year": 2035, "cvc": "123"}})
        sc.v1.payment_methods.attach(pm.id, {"customer": cus})
        sc.v1.customers.update(cus, {"invoice_settings": {"default_payment_method": pm.id}})
        sub = sc.v1.subscriptions.create({"customer": cus, "items": [{"plan": "price_starter_month"}]}).to_dict()
        objects.append({"type": "customer.subscription.created", "obj": sub})
        if n % 2:
            sc.v1.subscriptions.update(sub["id"], {"items": [{"id": sub["items"]["data"][0]["id"],
                                                              "plan": "price_pro_month"}]})
            objects.append({"type": "customer.subscription.updated",
                            "obj": sc.v1.subscriptions.retrieve(sub["id"]).to_dict()})
        if n % 3 == 0:
            sc.v1.subscriptions.cancel(sub["id"])
            objects.append({"type": "customer.subscription.deleted",
                            "obj": sc.v1.subscriptions.retrieve(sub["id"]).to_dict()})
        for inv in sc.v1.invoices.list({"customer": cus}).auto_paging_iter():
            objects.append({"type": rng.choice(["invoice.paid", "invoice.payment_succeeded"]), "obj": inv.to_dict()})
        now = clock.now_ms()
        repos.subscriptions.set(Subscription(_id=uid, userId=uid, stripeCustomerId=cus, status="pending",
                                             createdAt=now, updatedAt=now))
        users[uid] = cus
    return users, objects


def expected(sc, customer: str) -> dict:
    subs = [s.to_dict() for s in sc.v1.subscriptions.list({"customer": customer, "status": "all"}).auto_paging_iter()]
    live = [s for s in subs if s["status"] != "canceled"]
    cur = max(live or subs, key=lambda s: (s["created"], s["id"]))
    return {"stripeSubscriptionId": cur["id"], "status": STATUS[cur["status"]],
            "plan": PRICES[cur["items"]["data"][0]["plan"]["id"]][0],
            "currentPeriodEnd": cur["current_period_end"] * 1000}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1000)
    ap.add_argument("--unique", type=int, default=700, help="distinct events; the rest are redeliveries")
    ap.add_argument("--customers", type=int, default=25)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--queue-concurrency", type=int, default=8, help="the queue's max concurrent dispatches")
    args = ap.parse_args()
    if not 0 < args.unique <= args.events or args.events > 20_000 or args.concurrency > 64:
        ap.error("need 0 < unique <= events <= 20000 and concurrency <= 64")
    rng = random.Random(args.seed)

    with Stack() as stack:
        print("starting Firestore emulator, localstripe, Stripe front, Cloud Tasks stand-in ...", flush=True)
        stack.firestore()
        stack.stripe()
        stack.tasks(["stripe-events"], max_retries=20, max_concurrent=args.queue_concurrency,
                    min_backoff=0.1, max_backoff=2)
        worker_port = free_port()
        os.environ.update(stack.env)
        os.environ.update({"APP_ENV": "local", "STRIPE_EVENTS_QUEUE": "stripe-events",
                           "STRIPE_EVENT_WORKER_URL": f"http://127.0.0.1:{worker_port}/"})
        import stripe
        from google.cloud.firestore import FieldFilter

        from shared import db
        from shared.billing.sync import HANDLED, LEDGER, RECEIVED

        sc = stripe.StripeClient(os.environ["STRIPE_SECRET_KEY"], base_addresses={"api": os.environ["STRIPE_API_BASE"]})
        users, objects = setup_stripe(sc, args.customers, rng)

        # distinct events: real Stripe objects wrapped as Stripe sends them, some for an unknown customer
        stranger = dict(objects[0]["obj"], customer="cus_unknown_to_us")
        pool = [event(o["type"], o["obj"]) for o in objects]
        while len(pool) < args.unique:
            o = (rng.choice(objects) if rng.random() > 0.02
                 else {"type": "customer.subscription.updated", "obj": stranger})
            pool.append(event(o["type"], o["obj"]))
        pool = pool[:args.unique]
        deliveries = pool + [rng.choice(pool) for _ in range(args.events - len(pool))]
        rng.shuffle(deliveries)
        bodies = [json.dumps(e).encode() for e in deliveries]

        def serve(name: str, source: str, port: int):
            fn = stack.spawn(name, [str(Path(sys.executable).parent / "functions-framework"), "--target", name,
                                    "--source", source, "--host", "127.0.0.1", "--port", str(port)], cwd=ROOT)
            wait_port(port, 30, name, fn.proc)
            return f"http://127.0.0.1:{port}/"

        floor_url = serve("floor", "bench/webhook_floor.py", free_port())
        serve("stripeEventWorker", "functions/stripe_event_worker.py", worker_port)
        url = serve("stripeWebhook", "functions/stripe_webhook.py", free_port())
        secret = os.environ["STRIPE_WEBHOOK_SECRET"]

        def post_all(target: str, http: httpx.Client) -> tuple[list, float]:
            http.post(target, content=b"{}", headers={"Stripe-Signature": "t=0,v1=0"})  # warm the function up

            def post(body: bytes) -> tuple[int, float]:
                t0 = time.perf_counter()
                r = http.post(target, content=body, headers={"Content-Type": "application/json",
                                                             "Stripe-Signature": sign(body, secret)})
                return r.status_code, time.perf_counter() - t0
            started = time.perf_counter()
            with ThreadPoolExecutor(args.concurrency) as ex:
                results = list(ex.map(post, bodies))
            return results, time.perf_counter() - started

        def latency(results: list) -> tuple[float, float, float]:
            lat = sorted(ms * 1000 for _, ms in results)
            return statistics.median(lat), lat[min(len(lat) - 1, int(len(lat) * 0.99))], lat[-1]

        print(f"posting {len(bodies)} events ({len(pool)} distinct, {len(bodies) - len(pool)} redeliveries, "
              f"shuffled) with {args.concurrency} concurrent clients: first to the floor, then to {url}", flush=True)
        with httpx.Client(limits=httpx.Limits(max_connections=args.concurrency), timeout=120) as http:
            floor_results, floor_wall = post_all(floor_url, http)
            results, wall = post_all(url, http)
            started = time.perf_counter() - wall
        handled = {e["id"] for e in pool if e["type"] in HANDLED}
        pending = lambda: [s.id for s in db.client().collection(LEDGER).where(  # noqa: E731
            filter=FieldFilter("outcome", "==", RECEIVED)).select([]).stream()]
        deadline = time.monotonic() + 600
        while pending() and time.monotonic() < deadline:
            time.sleep(0.2)
        applied_after = time.perf_counter() - started

        codes = Counter(code for code, _ in results)
        floor_codes = Counter(code for code, _ in floor_results)
        f50, f99, fmax = latency(floor_results)
        p50, p99, pmax = latency(results)

        mismatched = []
        from shared import repos

        for uid, cus in users.items():
            doc = repos.subscriptions.require(uid)
            want = expected(sc, cus)
            got = {k: getattr(doc, k) for k in want}
            if got != want:
                mismatched.append((uid, got, want))
        book = {s.id: s.get("outcome") for s in db.client().collection(LEDGER).stream()}
        ledger_ok = set(book) == handled and all(o in ("applied", "unchanged", "unknown_customer")
                                                 for o in book.values())

        print(f"events posted     {len(results)}  (HTTP {dict(codes)}; floor HTTP {dict(floor_codes)})")
        print(f"floor: verify + one commit   p50 {f50:.1f} ms  p99 {f99:.1f} ms  (max {fmax:.1f} ms)  "
              f"{len(results) / floor_wall:.1f} events/s")
        print(f"stripeWebhook acknowledged   p50 {p50:.1f} ms  p99 {p99:.1f} ms  (max {pmax:.1f} ms)  "
              f"{len(results) / wall:.1f} events/s")
        print(f"ack / floor       p50 {p50 / f50:.2f}x  p99 {p99 / f99:.2f}x")
        print(f"all applied       {applied_after:.2f} s after the first post (queue: {args.queue_concurrency} "
              f"dispatches at once)")
        print(f"final state       {'MATCHED' if not mismatched else 'MISMATCH'} Stripe for {len(users)} customers"
              + (f" ({len(mismatched)} differ, e.g. {mismatched[0]})" if mismatched else ""))
        print(f"ledger            {len(book)} entries for {len(handled)} distinct handled events: "
              f"{'each exactly once, applied' if ledger_ok else 'WRONG'}")
        return 0 if (not mismatched and ledger_ok and codes == Counter({200: len(results)})) else 1


if __name__ == "__main__":
    sys.exit(main())
