"""Benchmark: 200 deploy actions across 50 deployments through the real queue.

Starts the Firestore emulator, the Cloud Tasks stand-in and the local Compute server, serves the
functions on a real port (the queue delivers to deployWorker over HTTP), then for each of 50
deployments runs deploy, stop, start, reset (200 jobs), each action also clicked a second time at
once (which must answer 409). Prints the worker's overhead per job over the Compute server's own
time (request handling plus operation latency), the queue delay, and checks that no deployment
ever had two jobs running at once.

Run: .venv/bin/python -m bench.deploy_jobs [--deployments 50] [--op-latency 0.02]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

from devtools.stack import Stack, free_port  # noqa: E402

QUEUE = "deploy-jobs"
ACTIONS = ("stop", "start", "reset")


def wait_done(job_id: str, timeout: float = 120):
    from shared import repos

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = repos.deploy_jobs.get(job_id)
        if job.status in ("completed", "failed"):
            return job
        time.sleep(0.02)
    raise RuntimeError(f"job {job_id} not done after {timeout}s")


def drive(index: int, owner: str, refused: list[int]) -> list:
    """One deployment's life: create (deploy), then stop, start, reset; each also clicked twice."""
    from shared import clock
    from shared.api.deployments import vm_name
    from shared.deploy import jobs
    from shared.errors import Conflict
    from shared.models import Deployment

    dep_id = f"bench{index:015d}"
    dep = Deployment(_id=dep_id, userId=owner, gcpProject="bench-project", zone="us-central1-a",
                     vmName=vm_name(f"bench {index}", dep_id), status="provisioning", botName=f"bench {index}",
                     primaryModel="anthropic/claude-sonnet-4", createdAt=clock.now_ms())
    done = [wait_done(jobs.create_deployment(dep, owner).id)]
    for action in ACTIONS:
        job = jobs.request_action(dep_id, action, owner)
        try:
            jobs.request_action(dep_id, action, owner)  # the second click while the first is active
        except Conflict:
            refused.append(1)
        done.append(wait_done(job.id))
    return done


def overlaps(jobs: list) -> bool:
    spans = sorted((j.startedAt, j.completedAt) for j in jobs)
    return any(b_start < a_end for (_, a_end), (b_start, _) in zip(spans, spans[1:]))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deployments", type=int, default=50)
    parser.add_argument("--op-latency", type=float, default=0.02, help="seconds each Compute operation takes")
    parser.add_argument("--parallel", type=int, default=10, help="deployments driven at once")
    args = parser.parse_args()
    with Stack() as stack:
        print("starting Firestore emulator, Cloud Tasks stand-in, local Compute ...", flush=True)
        stack.firestore()
        stack.tasks([QUEUE], max_retries=5)
        stack.secrets()  # bot credentials and report keys
        stack.iam()  # each bot's own service account
        compute_url = stack.compute(op_latency=args.op_latency)
        port = free_port()
        stack.env.update({"APP_ENV": "local", "DEPLOY_WORKER_URL": f"http://127.0.0.1:{port}/deployWorker",
                          "DEPLOY_QUEUE": QUEUE})
        stack.apply_env()
        import logging

        from devtools.server import build_app

        server = make_server("127.0.0.1", port, build_app(), threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        logging.getLogger().setLevel(logging.WARNING)  # keep the per-request lines out of the figures

        refused: list[int] = []
        started = time.perf_counter()
        with ThreadPoolExecutor(args.parallel) as pool:
            results = list(pool.map(lambda i: drive(i, "u_bench", refused), range(args.deployments)))
        wall = time.perf_counter() - started
        server.shutdown()
        state = httpx.get(f"{compute_url}/_state").json()

    jobs = [j for per_dep in results for j in per_dep]
    failed = [j for j in jobs if j.status != "completed"]
    worker_ms = [j.completedAt - j.startedAt for j in jobs]
    queue_ms = [j.startedAt - (10**13 - 1 - int(j.id[:13])) for j in jobs]  # job ids encode their request time
    compute_s = sum(state["busySeconds"].values())
    overhead_ms = (sum(worker_ms) - compute_s * 1000) / len(jobs)
    double = [per_dep[0].deploymentId for per_dep in results if overlaps(per_dep)]
    max_ops = max(state["maxActiveOps"].values())
    p = statistics.quantiles(worker_ms, n=20)
    print(f"\njobs: {len(jobs)} across {len(results)} deployments in {wall:.1f}s "
          f"({len(jobs) / wall:.1f} jobs/s through one queue); failed: {len(failed)}")
    print(f"second clicks refused with 409: {len(refused)} of {len(jobs) - len(results)}")
    print(f"worker time per job: mean {statistics.mean(worker_ms):.0f} ms, p50 {p[9]:.0f} ms, p95 {p[18]:.0f} ms")
    print(f"Compute server's own time per job (requests + {args.op_latency * 1000:.0f} ms operations): "
          f"{compute_s * 1000 / len(jobs):.0f} ms")
    print(f"worker overhead per job over Compute: {overhead_ms:.0f} ms "
          "(claim, log lines and finish as Firestore transactions, client calls)")
    print(f"queue delay (requested -> running): mean {statistics.mean(queue_ms):.0f} ms, max {max(queue_ms):.0f} ms")
    print(f"VMs created: {state['inserts']} for {len(results)} deployments")
    print(f"deployments that ever had two running jobs: {len(double)} (max concurrent operations on one VM: {max_ops})")
    ok = not failed and not double and max_ops == 1 and state["inserts"] == len(results)
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.setdefault("GOOGLE_CLOUD_PROJECT", "demo-openclaw")
    sys.exit(main())
