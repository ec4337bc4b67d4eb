"""Runs PyPI gcloud-tasks-emulator bound to 127.0.0.1 (it binds [::] by itself).

Usage: python -m devtools.standins.tasks_emulator PORT MAX_RETRIES QUEUE [QUEUE ...]
           [--oidc-key FILE] [--url-map PREFIX=REPLACEMENT ...]
(queues as projects/P/locations/L/queues/Q). Dispatches HTTP tasks to their URLs with the task's
headers and the X-CloudTasks-* headers.

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


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devtools.standins.tasks_emulator")
    parser.add_argument("port", type=int)
    parser.add_argument("max_retries", type=int)
    parser.add_argument("queues", nargs="+", help="projects/P/locations/L/queues/Q")
    parser.add_argument("--oidc-key", help="service-account key JSON to sign the tasks' OIDC tokens with")
    parser.add_argument("--url-map", action="append", default=[], metavar="PREFIX=REPLACEMENT",
                        help="dispatch URLs starting with PREFIX to REPLACEMENT instead (repeatable)")
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
    server.create_server("127.0.0.1", args.port, "127.0.0.1", 0, args.queues, args.max_retries).run()


if __name__ == "__main__":
    main()
