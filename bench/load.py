"""Load run: N concurrent clients (default 50) for S seconds (default 60) against the local
stack (every function on one threaded HTTP server), mixed reads and writes.

    .venv/bin/python -m bench.load [--clients 50] [--seconds 60]
Prints requests/s, errors and p50/p99 latency per operation.
"""
from __future__ import annotations

import argparse
import random
import threading
import time
from collections import defaultdict

import httpx

from bench.common import local_stack, percentile, served_app, token_for

# (weight, name, method, path, body, needs the admin)
MIX = [
    (25, "GET /pricingPlans", "GET", "/pricingPlans", None, False),
    (15, "GET /navLinks", "GET", "/navLinks?section=header", None, False),
    (10, "GET /cmsPages/{slug}", "GET", "/cmsPages/about", None, False),
    (15, "GET /users/me", "GET", "/users/me", None, False),
    (10, "GET /billing/subscription", "GET", "/billing/subscription", None, False),
    (10, "GET /costs/snapshots", "GET", "/costs/snapshots", None, False),
    (10, "PATCH /users/me", "PATCH", "/users/me", "name", False),
    (5, "PUT /cmsPages/{slug}", "PUT", "/cmsPages/load-{n}", "page", True),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    with local_stack() as stack:
        from devtools import seed

        seed.seed(stack.env["FIREBASE_AUTH_EMULATOR_HOST"])
        users = [token_for(stack, f"load{i}@example.com")[0] for i in range(args.clients)]
        admin = token_for(stack, "loadadmin@example.com", "admin")[0]
        latencies: dict[str, list[float]] = defaultdict(list)
        errors: dict[str, int] = defaultdict(int)
        lock = threading.Lock()
        weights = [m[0] for m in MIX]
        with served_app() as base:
            deadline = time.monotonic() + args.seconds

            def client(i: int) -> None:
                rng = random.Random(i)
                with httpx.Client(base_url=base, timeout=30) as http:
                    while time.monotonic() < deadline:
                        _, name, method, path, body, needs_admin = rng.choices(MIX, weights)[0]
                        token = admin if needs_admin else users[i]
                        payload = {"name": f"user {rng.randint(0, 999)}"} if body == "name" else \
                            {"title": "Load", "body": "x" * 200, "published": True} if body == "page" else None
                        started = time.perf_counter()
                        try:
                            r = http.request(method, path.format(n=rng.randint(0, 9)), json=payload,
                                             headers={"Authorization": f"Bearer {token}"})
                            ok = r.status_code < 400
                        except httpx.HTTPError:
                            ok = False
                        took = time.perf_counter() - started
                        with lock:
                            latencies[name].append(took)
                            if not ok:
                                errors[name] += 1

            threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
            started = time.monotonic()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.monotonic() - started
    everything = [x for v in latencies.values() for x in v]
    print(f"{args.clients} clients x {args.seconds:.0f} s: {len(everything)} requests, "
          f"{len(everything) / wall:.0f} req/s, {sum(errors.values())} errors")
    print(f"{'operation':<24}{'count':>7}{'errors':>7}{'p50 ms':>8}{'p99 ms':>8}")
    for _, name, *_ in MIX:
        v = latencies[name]
        print(f"{name:<24}{len(v):>7}{errors[name]:>7}{percentile(v, 50) * 1000:>8.0f}{percentile(v, 99) * 1000:>8.0f}")
    print(f"{'all':<24}{len(everything):>7}{sum(errors.values()):>7}"
          f"{percentile(everything, 50) * 1000:>8.0f}{percentile(everything, 99) * 1000:>8.0f}")


if __name__ == "__main__":
    main()
