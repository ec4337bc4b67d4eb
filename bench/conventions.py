"""What the rate limiter and Idempotency-Key add to a request, against a floor measured in the same run.

    .venv/bin/python -m bench.conventions [N]
The one-port app on a real 127.0.0.1 port with the Firestore and Auth emulators. Each row: N calls in
a row as one signed-in user, median and p95 latency, the ratio of its median to the floor's, and the
Firestore reads/writes of one call (devtools/firestore_meter.py):
- floor: GET /users/me with the rate limiter off (RATE_LIMITS default=0): authentication + one read;
- rate-limited: the same call counted by the limiter (one write, its answer carries the count);
- POST /navLinks (admin) without a key, with a fresh Idempotency-Key each time, and a replayed key.
"""
from __future__ import annotations

import os
import statistics
import sys
import time

import httpx

from bench.common import local_stack, percentile, served_app, token_for


def timed(call, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        r = call()
        out.append(time.perf_counter() - t)
        assert r.status_code < 400, r.text
    return out


def metered_call(call) -> tuple[int, int]:
    from devtools.firestore_meter import metered

    with metered() as m:
        call()
    return m.reads, m.writes


def main(n: int = 200) -> int:
    from shared import config

    with local_stack() as stack:
        os.environ["RATE_LIMITS"] = "default=0"
        config.reset()
        token, _ = token_for(stack, "bench@example.com", role="admin")
        auth = {"Authorization": f"Bearer {token}"}
        with served_app() as url, httpx.Client(base_url=url, headers=auth, timeout=30) as http:
            link = {"label": "L", "href": "/l", "section": "footer"}
            keys = iter(range(10**9))
            cases = [
                ("floor: GET /users/me, no limiter", "off", lambda: http.get("/users/me")),
                ("GET /users/me, rate-limited", "on", lambda: http.get("/users/me")),
                ("POST /navLinks, no key", "on", lambda: http.post("/navLinks", json=link)),
                ("POST /navLinks, fresh Idempotency-Key", "on",
                 lambda: http.post("/navLinks", json=link, headers={"Idempotency-Key": f"k{next(keys)}"})),
                ("POST /navLinks, replayed key", "on",
                 lambda: http.post("/navLinks", json=link, headers={"Idempotency-Key": "same"})),
            ]
            rows, floor = [], None
            for name, limiter, call in cases:
                os.environ["RATE_LIMITS"] = "default=0" if limiter == "off" else "default=1000000"
                config.reset()
                timed(call, 10)  # warm-up
                lat = timed(call, n)
                reads, writes = metered_call(call)
                med = statistics.median(lat)
                floor = floor or med
                rows.append((name, med, percentile(lat, 95), med / floor, reads, writes))
    print(f"{n} calls per row, one user, in a row (emulator on loopback)")
    print(f"{'case':<40}{'median ms':>11}{'p95 ms':>9}{'x floor':>9}{'reads':>7}{'writes':>8}")
    for name, med, p95, ratio, reads, writes in rows:
        print(f"{name:<40}{med * 1000:>11.1f}{p95 * 1000:>9.1f}{ratio:>9.2f}{reads:>7}{writes:>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200))
