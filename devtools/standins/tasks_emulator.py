"""Runs PyPI gcloud-tasks-emulator bound to 127.0.0.1 (it binds [::] by itself).

Usage: python -m devtools.standins.tasks_emulator PORT MAX_RETRIES QUEUE [QUEUE ...]
           [--oidc-key FILE] [--url-map PREFIX=REPLACEMENT ...]
           [--max-concurrent N] [--min-backoff S] [--max-backoff S]
(queues as projects/P/locations/L/queues/Q). Dispatches HTTP tasks to their URLs with the task's
headers and the X-CloudTasks-* headers.

Dispatch is parallel, as Cloud Tasks' is (the PyPI emulator sends one task at a time per queue):
up to `--max-concurrent` deliveries of each queue in flight at once (the queue's
maxConcurrentDispatches; default 10). A delivery answering 4xx/5xx (or not answering) is tried
again after a backoff doubling from `--min-backoff` to `--max-backoff` seconds (the queue's
minBackoff/maxBackoff; default 0: at once), until MAX_RETRIES retries were made.

Like Cloud Tasks, and unlike the PyPI emulator (which keeps a task's `oidc_token` but ignores it):
- `--oidc-key FILE`: a service-account key JSON (devtools/standins/google_tokens.py write_key;
  its `private_key_id` is the token's `kid`). A task whose http_request has an `oidc_token` is
  dispatched with `Authorization: Bearer <ID token>` signed with that key (RS256): iss
  https://accounts.google.com, aud = the token's audience (default: the task's URL as created),
  email/azp = its service_account_email, email_verified, sub, iat, exp = iat + 3600. Serve the
  key's JWK Set as GOOGLE_CERTS_URL (`python -m devtools.standins.google_tokens certs PORT FILE`)
  for the functions to verify it. Without the option no Authorization header is added.
- `--url-map PREFIX=REPLACEMENT` (repeatable): a task URL starting with PREFIX is dispatched to
  REPLACEMENT + the rest (e.g. https://us-central1-proj.cloudfunctions.net=http://127.0.0.1:9000);
  the token's audience stays the URL the task was created with.
"""
from __future__ import annotations

import argparse
import logging
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from urllib import error

import grpc
from gcloud_tasks_emulator import server
from google.cloud.tasks_v2 import Task

from devtools.standins.google_tokens import GoogleKey


def _run(self):  # APIThread.run, with a loopback-only listener
    self._httpd = grpc.server(server.futures.ThreadPoolExecutor(max_workers=4))
    server.add_CloudTasksServicer_to_server(server.Greeter(self._state), self._httpd)
    self._httpd.add_insecure_port(f"127.0.0.1:{self._port}")
    self._httpd.start()
    while self._is_running.is_set():
        server.time.sleep(server._LOOP_SLEEP_TIME)


def rewrite(url: str, url_map: list[tuple[str, str]]) -> str:
    for prefix, replacement in url_map:
        if url.startswith(prefix):
            return replacement + url[len(prefix):]
    return url


def dispatcher(key: GoogleKey | None, url_map: list[tuple[str, str]]):
    """The emulator's task request, on a copy of the task carrying the token and the mapped URL
    (the stored task keeps its own URL, so a retry is minted and mapped again)."""
    make_request = server._make_task_request

    def make_task_request(queue_name: str, task: Task, host: str, port: int):
        http = task.http_request
        if http.url and (url_map or (key and http.oidc_token.service_account_email)):
            task = Task.deserialize(Task.serialize(task))
            original = task.http_request.url
            oidc = task.http_request.oidc_token
            if key is not None and oidc.service_account_email:
                token = key.token(audience=oidc.audience or original, email=oidc.service_account_email)
                task.http_request.headers["Authorization"] = f"Bearer {token}"
            task.http_request.url = rewrite(original, url_map)
        return make_request(queue_name, task, host, port)
    return make_task_request


class ParallelProcessor(threading.Thread):
    """Replaces the emulator's Processor: every queue's due tasks, up to `max_concurrent` of each in
    flight, dispatched from a thread pool; failures retried with backoff (see the module doc)."""

    def __init__(self, state, max_concurrent: int, min_backoff: float, max_backoff: float):
        super().__init__(daemon=True)
        self._state = state
        self._max = max_concurrent
        self._backoff = (min_backoff, max_backoff)
        self._in_flight: dict[str, int] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._running = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=min(512, max_concurrent * 8))

    def run(self):
        self._running.set()
        while self._running.is_set():
            self._dispatch_due()
            self._wake.wait(0.02)  # new tasks are picked up within 20 ms
            self._wake.clear()

    def _dispatch_due(self):
        now = datetime.now(timezone.utc)
        for name in self._state.queue_names():
            queue = self._state._queues.get(name)
            tasks = self._state._queue_tasks.get(name)
            if queue is None or tasks is None or queue.state != server.Queue.State.RUNNING:
                continue
            for task in list(tasks):
                with self._lock:
                    if self._in_flight.get(name, 0) >= self._max:
                        break
                    if task.schedule_time and task.schedule_time > now:
                        continue
                    try:
                        tasks.remove(task)  # in place: create_task appends to this list concurrently
                    except ValueError:
                        continue
                    self._in_flight[name] = self._in_flight.get(name, 0) + 1
                self._pool.submit(self._deliver, name, task)

    def _deliver(self, queue_name: str, task: Task):
        task.dispatch_count += 1
        try:
            status = self._send(queue_name, task)
            server.logger.info("[TASKS] %s answered %s", task.name, status)
            if 400 <= status < 600 and (self._state._max_retries < 0
                                        or task.dispatch_count <= self._state._max_retries):
                wait = min(self._backoff[1], self._backoff[0] * 2 ** (task.dispatch_count - 1))
                task.schedule_time = datetime.now(timezone.utc) + timedelta(seconds=wait)
                self._state._queue_tasks.get(queue_name, []).append(task)
            elif 400 <= status < 600:
                server.logger.info("[TASKS] Giving up failed task %s", task.name)
        finally:
            with self._lock:
                self._in_flight[queue_name] -= 1
            self._wake.set()

    def _send(self, queue_name: str, task: Task) -> int:
        try:
            with server._make_task_request(queue_name, task, self._state._target_host,
                                           self._state._target_port) as response:
                response.read()
                return response.status
        except error.HTTPError as exc:
            exc.close()
            return exc.code
        except Exception as exc:  # refused, reset, timed out: Cloud Tasks retries these too
            server.logger.warning("[TASKS] %s not delivered: %s", task.name, exc)
            return 503

    def join(self, timeout=None):
        self._running.clear()
        self._wake.set()
        self._pool.shutdown(wait=False, cancel_futures=True)
        super().join(timeout)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devtools.standins.tasks_emulator")
    parser.add_argument("port", type=int)
    parser.add_argument("max_retries", type=int)
    parser.add_argument("queues", nargs="+", help="projects/P/locations/L/queues/Q")
    parser.add_argument("--oidc-key", help="service-account key JSON to sign the tasks' OIDC tokens with")
    parser.add_argument("--url-map", action="append", default=[], metavar="PREFIX=REPLACEMENT",
                        help="dispatch URLs starting with PREFIX to REPLACEMENT instead (repeatable)")
    parser.add_argument("--max-concurrent", type=int, default=10,
                        help="deliveries of one queue in flight at once (maxConcurrentDispatches)")
    parser.add_argument("--min-backoff", type=float, default=0.0, help="seconds before a failed task's first retry")
    parser.add_argument("--max-backoff", type=float, default=0.0, help="longest wait between retries, seconds")
    args = parser.parse_args(argv)
    pairs = [m.split("=", 1) for m in args.url_map]
    if any(len(p) != 2 or not p[0] for p in pairs):
        parser.error("--url-map takes PREFIX=REPLACEMENT")
    args.url_map = [tuple(p) for p in pairs]
    return args


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.INFO, stream=sys.stdout)
    server.APIThread.run = _run
    key = GoogleKey.load(args.oidc_key) if args.oidc_key else None
    server._make_task_request = dispatcher(key, args.url_map)
    emulator = server.create_server("127.0.0.1", args.port, "127.0.0.1", 0, args.queues, args.max_retries)
    emulator._processor = ParallelProcessor(emulator._state, max(1, args.max_concurrent), args.min_backoff,
                                            max(args.min_backoff, args.max_backoff))
    emulator.run()


if __name__ == "__main__":
    main()
