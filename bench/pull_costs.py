"""Benchmark: pullCosts and pullOpenrouterActivity for N users (default 10,000) against the
local provider stand-in answering every call after 50 ms, through the real path: scheduler
call -> run claim -> Cloud Tasks stand-in -> worker over HTTP -> Firestore emulator.

Prints wall time, the fan-out's share, the achieved concurrency of provider calls and Firestore
writes per user. The Cloud Tasks stand-in dispatches up to --queue-concurrency tasks at once
(the queue's max-concurrent-dispatches, 100 in deploy/manifest.py), as Cloud Tasks does.

costPullWorker is served by --worker-processes processes (default: one per core) accepting on one
listening socket, as Cloud Functions spreads a queue's deliveries over instances, each its own
process; pullCosts and the rest run in the benchmark's own process. The provider stand-in and the
Firestore emulator run on the same machine, so they share its cores with the workers.

Usage: .venv/bin/python -m bench.pull_costs [--users 10000] [--batch-size 500] [--concurrency 100]
                                            [--queue-concurrency 100] [--worker-processes N] [--only costs]
"""
from __future__ import annotations

import argparse
import hashlib
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devtools.stack import Stack, free_port  # noqa: E402

QUEUE = "cost-pulls"
# one costPullWorker instance: a threaded server on the listening socket it inherits (argv: fd, source)
WORKER = r"""
import logging, sys
from werkzeug.exceptions import NotFound
from werkzeug.serving import make_server
import functions_framework
from devtools.server import Dispatcher

logging.getLogger("werkzeug").setLevel(logging.ERROR)
logging.getLogger().setLevel(logging.WARNING)
app = Dispatcher(NotFound(), {"/costPullWorker": functions_framework.create_app(
    target="costPullWorker", source=sys.argv[2])})
make_server("127.0.0.1", 0, app, threaded=True, fd=int(sys.argv[1])).serve_forever()
"""


def start_workers(n: int) -> tuple[int, list[subprocess.Popen], socket.socket]:
    """`n` worker processes sharing one listening socket on 127.0.0.1: (port, processes, socket)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(256)
    sock.set_inheritable(True)
    source = str(ROOT / "functions" / "cost_pull_worker.py")
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(sock.fileno()), source], cwd=ROOT,
                              env=os.environ.copy(), pass_fds=(sock.fileno(),)) for _ in range(n)]
    port = sock.getsockname()[1]
    deadline = time.monotonic() + 120
    while True:  # ready when every process answers (a request to a process still importing waits in the backlog)
        try:
            if httpx.get(f"http://127.0.0.1:{port}/costPullWorker", timeout=60).status_code:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
            raise RuntimeError("costPullWorker processes did not start")
        time.sleep(0.2)
    return port, procs, sock


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


def cpu_seconds(pids=(), groups=()) -> float:
    """CPU time (user + system) used so far by the processes `pids` and the process groups `groups`."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # state, ppid, pgrp, ..., utime (11), stime (12)
        except (OSError, IndexError):
            continue
        if int(stat.parent.name) in pids or int(fields[2]) in groups:
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def run(app_url: str, providers: str, fn: str, when: str, parts: dict) -> dict:
    """`parts`: what to count CPU time for, name -> (pids, process groups)."""
    from google.cloud.firestore import FieldFilter

    from shared.costs import runs
    from shared.costs.ledger import batches
    from shared.costs.ledger import runs as runs_repo
    from shared.db import client

    httpx.post(f"{providers}/_control/reset")
    httpx.put(f"{providers}/_control/state", json={"synthetic": True, "delayMs": 50})
    cpu_before = {name: cpu_seconds(*ids) for name, ids in parts.items()}
    started = time.perf_counter()
    resp = httpx.post(f"{app_url}/{fn}", json={}, headers={"X-CloudScheduler-ScheduleTime": when}, timeout=600)
    resp.raise_for_status()
    fanout = time.perf_counter() - started
    rid = resp.json()["runId"]
    done_q = client().collection("costRunBatches").where(filter=FieldFilter("runId", "==", rid)).count()
    batches_n = resp.json()["batches"]
    while done_q.get()[0][0].value < batches_n:  # a count: cheaper to poll than the report, read once at the end
        time.sleep(0.2)
    wall = time.perf_counter() - started
    report = runs.report(runs_repo.require(rid))
    cpu = {name: cpu_seconds(*ids) - cpu_before[name] for name, ids in parts.items()}
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
            "writes_per_user": (report["writes"] + ledger_writes) / max(1, report["users"]), "cpu": cpu}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=10_000)
    ap.add_argument("--batch-size", type=int, default=500)
    ap.add_argument("--concurrency", type=int, default=100)
    ap.add_argument("--queue-concurrency", type=int, default=100)
    ap.add_argument("--worker-processes", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--only", choices=("costs", "activity"), default=None)
    args = ap.parse_args()

    with Stack() as stack:
        stack.firestore()
        # retried as the deployed queue retries (5 attempts), sooner: a batch failed by an overloaded machine
        stack.tasks([QUEUE], max_retries=4, max_concurrent=args.queue_concurrency, min_backoff=1.0, max_backoff=8.0)
        providers = stack.providers()
        stack.apply_env()
        port = free_port()
        os.environ.update({"APP_ENV": "local", "COSTS_QUEUE": QUEUE,
                           "FUNCTION_TIMEOUT_S": "540", "COSTS_BATCH_ATTEMPTS": "5",  # as deployed
                           "COSTS_BATCH_SIZE": str(args.batch_size), "COSTS_CONCURRENCY": str(args.concurrency),
                           "MAX_BODY_BYTES": str(1024 * 1024)})
        worker_port, workers, worker_sock = start_workers(args.worker_processes)
        os.environ["COSTS_WORKER_URL"] = f"http://127.0.0.1:{worker_port}/costPullWorker"
        import logging

        from werkzeug.serving import make_server

        from devtools.server import build_app

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        server = make_server("127.0.0.1", port, build_app(), threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        logging.getLogger().setLevel(logging.WARNING)  # the per-request access log would dominate the output

        print(f"seeding {args.users} users (a deployment and provider scopes each) ...", flush=True)
        print(f"  seeded in {seed(args.users):.1f}s", flush=True)
        fns = {"costs": "pullCosts", "activity": "pullOpenrouterActivity"}
        parts = {"costPullWorker processes": ({p.pid for p in workers}, ()),
                 "this process (pullCosts: fan-out; polling the run)": ({os.getpid()}, ()),
                 **{svc.name: ((), {svc.proc.pid}) for svc in stack.services}}
        try:
            results = [run(f"http://127.0.0.1:{port}", providers, fn, "2026-11-15T06:00:00Z", parts)
                       for kind, fn in fns.items() if args.only in (None, kind)]
        finally:
            server.shutdown()
            for proc in workers:
                proc.terminate()
            for proc in workers:
                proc.wait(timeout=30)
            worker_sock.close()

    print(f"\nprovider latency 50 ms; {args.batch_size} users per task; {args.concurrency} calls in flight per task;"
          f" costPullWorker in {args.worker_processes} process(es) on {os.cpu_count()} cores")
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
        total = sum(r["cpu"].values())
        per = 10_000 / max(1, r["users"])
        print(f"  CPU time               {total:.1f} s = {total * per:.1f} s per 10,000 users;"
              f" on {os.cpu_count()} cores"
              f" of our own that is at least {total / (os.cpu_count() or 1):.1f} s of wall time for this run:")
        for name, sec in sorted(r["cpu"].items(), key=lambda kv: -kv[1]):
            print(f"    {name:<50} {sec:6.1f} s  ({sec * per:.1f} s per 10,000 users)")
        print(f"  machine load average   {os.getloadavg()[0]:.1f} at the end (other work shares the cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
