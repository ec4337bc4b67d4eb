"""Benchmark: what the health check and the heartbeats cost in Firestore operations, for N watched
deployments of which K are overdue, against the Firestore emulator (metered as Firestore bills:
devtools/firestore_meter.py).

- check: healthCheck's pass over deployments (shared/health/monitor.check). Its reads follow K (the
  overdue ones, found by the `healthDeadline <= now` query), not N. Half of the overdue bots are stopped
  (-> paused), half running with automatic recovery off (-> degraded, one notification each).
  Floor: the same check with nothing overdue, measured in the same run (one billed read for the empty
  query); the ratio is reads / floor. A scan of every deployment would read N.
- heartbeats: H heartbeats from each of 1,000 bots, with HEALTH_WRITE_EVERY_S at its default (240 s):
  only the first of each bot is written (and read); the others cost nothing.

Usage: .venv/bin/python -m bench.health_check [--n 10000]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import local_stack  # noqa: E402


def wipe(stack) -> None:
    import httpx

    from devtools.stack import PROJECT_ID

    httpx.delete(f"http://{stack.env['FIRESTORE_EMULATOR_HOST']}/emulator/v1/projects/{PROJECT_ID}"
                 "/databases/(default)/documents", timeout=120).raise_for_status()


def seed(n: int, now: int, with_deployments: int = 500) -> None:
    """N watched deployments, none overdue; the first `with_deployments` have their deployment document
    (even: stopped, odd: running with automatic recovery off)."""
    from shared import db
    from shared.health.monitor import Health
    from shared.models import Deployment

    client = db.client()
    batch, pending = client.batch(), 0
    for i in range(n):
        doc = Health(_id=f"dep{i:06d}", userId=f"user{i % 500}", state="ok", lastHeartbeatAt=now - 600_000,
                     lastWriteAt=now - 600_000, monitoredSince=now - 86_400_000, autoRecovery=False,
                     healthDeadline=now + 300_000 + i, updatedAt=now)
        batch.set(client.collection("deploymentHealth").document(doc.id), doc.to_store())
        if i < with_deployments:
            dep = Deployment(_id=doc.id, userId=doc.userId, gcpProject="acme-bots", zone="us-central1-a",
                             vmName=f"oc-{i}", status="stopped" if i % 2 == 0 else "running", botName=f"Bot {i}",
                             primaryModel="m", createdAt=now)
            batch.set(client.collection("deployments").document(dep.id), dep.to_store())
            pending += 1
        pending += 1
        if pending >= 400:
            batch.commit()
            batch, pending = client.batch(), 0
    if pending:
        batch.commit()


def make_overdue(k: int, now: int) -> None:
    """The first k deployments' heartbeats stopped: healthy until a second ago."""
    from shared import db

    client = db.client()
    for lo in range(0, k, 400):
        batch = client.batch()
        for i in range(lo, min(k, lo + 400)):
            batch.update(client.collection("deploymentHealth").document(f"dep{i:06d}"),
                         {"state": "ok", "healthDeadline": now - 1000, "reason": "", "downSince": None,
                          "outages": []})
        batch.commit()


def measure_check(now: int) -> tuple[int, int, float, dict]:
    from devtools.firestore_meter import metered
    from shared.health import monitor

    started = time.perf_counter()
    with metered() as m:
        outcome = monitor.check(now)
    return m.reads, m.writes, time.perf_counter() - started, outcome


def measure_heartbeats(bots: int, beats: int) -> tuple[int, int]:
    from devtools.firestore_meter import metered
    from shared import clock
    from shared.health import monitor

    base = clock.now_ms()
    with metered() as m:
        for b in range(beats):
            for i in range(bots):
                monitor.heartbeat(f"dep{i:06d}", base + b, "ok", "")
    return m.reads, m.writes


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=10_000)
    args = parser.parse_args()
    with local_stack("firestore") as stack:
        os.environ["APP_ENV"] = "local"
        from shared import clock, config

        config.reset()
        print("health check over N watched deployments, K overdue (reads/writes as Firestore bills them)")
        print(f"{'N':>7} {'K':>6} {'reads':>7} {'writes':>7} {'seconds':>8} {'reads/floor':>12} {'reads/N':>8}"
              "  outcome")
        floor = None
        for n, ks in ((1000, (0, 10)), (args.n, (0, 10, 100, 500))):
            wipe(stack)
            seed(n, clock.now_ms())
            for k in ks:
                now = clock.now_ms()
                make_overdue(k, now)
                reads, writes, secs, outcome = measure_check(now)
                floor = floor or reads
                print(f"{n:>7} {k:>6} {reads:>7} {writes:>7} {secs:>8.2f} {reads / floor:>12.1f} "
                      f"{reads / n:>8.4f}  {outcome}")
        print("a scan of every deployment would read N; the check reads a few per overdue deployment + 1")

        wipe(stack)
        now = clock.now_ms()
        seed(1000, now, with_deployments=0)
        from shared import db
        from shared.models import Deployment

        batch = db.client().batch()
        for i in range(1000):
            batch.set(db.client().collection("deployments").document(f"dep{i:06d}"), Deployment(
                _id=f"dep{i:06d}", userId="u", gcpProject="acme-bots", zone="us-central1-a", vmName=f"oc-{i}",
                status="running", botName="b", primaryModel="m", createdAt=now).to_store())
            if i % 400 == 399:
                batch.commit()
                batch = db.client().batch()
        batch.commit()
        beats = 10
        reads, writes = measure_heartbeats(1000, beats)
        print(f"\nheartbeats: {beats} from each of 1000 bots = {beats * 1000} reports -> {reads} reads, "
              f"{writes} writes "
              f"({writes / (beats * 1000):.2f} writes per heartbeat; unthrottled: 1 read + 1 write each)")


if __name__ == "__main__":
    main()
