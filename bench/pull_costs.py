"""Benchmark: pullCosts and pullOpenrouterActivity for N users (default 10,000) against the
local provider stand-in answering every call after 50 ms, through the real path: scheduler
call -> run claim -> Cloud Tasks stand-in -> worker over HTTP -> Firestore emulator.

Prints wall time, the fan-out's share, the achieved concurrency of provider calls and Firestore
writes per user. The Cloud Tasks stand-in dispatches up to --queue-concurrency tasks at once
(the queue's max-concurrent-dispatches, 100 in deploy/manifest.py), as Cloud Tasks does.

Usage: .venv/bin/python -m bench.pull_costs [--users 10000] [--batch-size 500] [--concurrency 100]
                                            [--queue-concurrency 100]
"""
from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devtools.stack import Stack, free_port  # noqa: E402

QUEUE = "cost-pulls"


def seed(n: int) -> float:
    from shared.costs.ledger import CostAccount
    from shared.db import client
    from shared.models import Deployment

    started = time.perf_counter()
    db = client()
    for lo in range(0, n, 250):
        wb = db.batch()
        for i in range(lo, min(n, lo + 250)):
            uid = f"bench-user-{i:05d}"
            dep = Deployment(_id=f"dep-{i:05d}", userId=uid, gcpProject="p", zone="us-central1-a", vmName=f"vm-{i}",
                             status="running" if i % 5 else "stopped", botName="bot", primaryModel="m",
                             createdAt=1_790_000_000_000)
            acct = CostAccount(_id=uid, openrouterKeyHash=hashlib.sha256(uid.encode()).hexdigest(),
                               openaiProjectId=f"proj_{i:05d}", updatedAt=1)
            wb.set(db.collection(dep.collection).document(dep.id), dep.to_store())
            wb.set(db.collection(acct.collection).document(acct.id), acct.to_store())
        wb.commit()
    return time.perf_counter() - started


def run(app_url: str, providers: str, fn: str, when: str) -> dict:
    from shared.costs import runs
    from shared.costs.ledger import batches
    from shared.costs.ledger import runs as runs_repo

    httpx.post(f"{providers}/_control/reset")
    httpx.put(f"{providers}/_control/state", json={"synthetic": True, "delayMs": 50})
    started = time.perf_counter()
    resp = httpx.post(f"{app_url}/{fn}", json={}, headers={"X-CloudScheduler-ScheduleTime": when}, timeout=600)
    resp.raise_for_status()
    fanout = time.perf_counter() - started
    rid = resp.json()["runId"]
    while True:
        report = runs.report(runs_repo.require(rid))
        if report["finished"]:
            break
        time.sleep(0.2)
    wall = time.perf_counter() - started
    stats = httpx.get(f"{providers}/_control/stats").json()
    done = batches.all({"runId": rid}, cap=10_000)
    durations = [b.durationMs / 1000 for b in done]
    ledger_writes = 2  # the claim and the dispatched mark
    return {"fn": fn, "users": report["users"], "tasks": report["batches"], "ok": report["ok"],
            "failed": report["failed"], "wall": wall, "fanout": fanout, "task_max": max(durations),
            "task_mean": statistics.mean(durations), "calls": stats["requests"],
            "max_inflight": stats["maxInflight"], "avg_inflight": stats["avgInflight"],
            "inflight_while_pulling": stats["busySeconds"] / (sum(b.pullMs for b in done) / 1000),
            "calls_per_s_in_tasks": stats["requests"] / sum(durations),
            "writes_per_user": (report["writes"] + ledger_writes) / max(1, report["users"])}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--batch-size", type=int, default=500)
    ap.add_argument("--concurrency", type=int, default=100)
    ap.add_argument("--queue-concurrency", type=int, default=100)
    args = ap.parse_args()

    with Stack() as stack:
        stack.firestore()
        stack.tasks([QUEUE], max_retries=0, max_concurrent=args.queue_concurrency)
        providers = stack.providers()
        stack.apply_env()
        port = free_port()
        os.environ.update({"APP_ENV": "local", "COSTS_QUEUE": QUEUE,
                           "COSTS_WORKER_URL": f"http://127.0.0.1:{port}/costPullWorker",
                           "COSTS_BATCH_SIZE": str(args.batch_size), "COSTS_CONCURRENCY": str(args.concurrency),
                           "MAX_BODY_BYTES": str(1024 * 1024)})
        import logging

        from werkzeug.serving import make_server

        from devtools.server import build_app

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        server = make_server("127.0.0.1", port, build_app(), threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        logging.getLogger().setLevel(logging.WARNING)  # the per-request access log would dominate the output

        print(f"seeding {args.users} users (a deployment and provider scopes each) ...", flush=True)
        print(f"  seeded in {seed(args.users):.1f}s", flush=True)
        results = [run(f"http://127.0.0.1:{port}", providers, "pullCosts", "2026-11-15T06:00:00Z"),
                   run(f"http://127.0.0.1:{port}", providers, "pullOpenrouterActivity", "2026-11-15T06:00:00Z")]
        server.shutdown()

    print(f"\nprovider latency 50 ms; {args.batch_size} users per task; {args.concurrency} calls in flight per task")
    for r in results:
        print(f"\n{r['fn']}: {r['users']} users in {r['tasks']} tasks, ok {r['ok']}, failed {r['failed']}")
        print(f"  wall time              {r['wall']:.1f} s  (up to {args.queue_concurrency} tasks at once;"
              f" fan-out {r['fanout']:.1f} s = {r['fanout'] / max(1, r['users']) * 10_000:.2f} s per 10,000 users)")
        print(f"  longest / mean task    {r['task_max']:.2f} s / {r['task_mean']:.2f} s"
              f"  (with parallel dispatch a run takes about the longest task)")
        print(f"  provider calls         {r['calls']}  ({r['calls_per_s_in_tasks']:.0f}/s while tasks ran)")
        print(f"  achieved concurrency   mean {r['inflight_while_pulling']:.1f} calls in flight while tasks pulled,"
              f" max {r['max_inflight']}; mean {r['avg_inflight']} over the whole run")
        print(f"  Firestore writes/user  {r['writes_per_user']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
