"""`make deploy-check`: the deploy manifest is the truth, proven locally.

    .venv/bin/python -m devtools.deploycheck.check [--keep]

1. Runs cloudbuild.yaml (deploy/run.py, as Cloud Build would) against a fresh local control plane
   (devtools/deploycheck/fake_gcloud.py first on PATH), project demo-openclaw (the emulators' project),
   adds a version to every operator secret with `gcloud secrets versions add` as an operator would
   (values of the local stand-ins), and runs it again.
2. Starts the emulators and stand-ins (devtools/stack.py), a local Google signing key and its
   certificate endpoint, and creates in them what the control plane recorded: secrets and their
   versions, topics, queues, the media bucket.
3. Starts EVERY function the control plane recorded as Google would: its own functions-framework
   process with exactly the manifest's variables, its secrets resolved from (local) Secret Manager,
   APP_ENV=deploy-check in place of production, plus only the variables of OVERLAY.
4. Puts Google's front before them (devtools/deploycheck/front.py): /<name>/... -> that function;
   private functions admit only Google-signed tokens of their invokers, signature stripped.
5. Wires the callers as the manifest does: Cloud Tasks (tasks to the functions' https URLs with OIDC
   tokens, sent to the front), Eventarc (the topic's messages pushed as CloudEvents with the trigger's
   service account token), Cloud Scheduler (each recorded job fired like `gcloud scheduler jobs run`).
6. Runs a user's whole journey through the front only (JOURNEY), one line per step; a failure names
   the step, the function, the status and the body.
7. Prints a summary; exit 0 on success, 1 on failure; stops everything it started.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import httpx
import yaml
from werkzeug.serving import WSGIRequestHandler, make_server

from deploy import run as cloudbuild
from devtools.deploycheck.front import Front, Target
from devtools.stack import PROJECT_ID, ROOT, Stack, free_port, wait_port
from devtools.standins.google_tokens import GoogleKey

REGION = "us-central1"
BIN = Path(__file__).resolve().parent / "bin"
FUNCTIONS_FRAMEWORK = Path(sys.executable).parent / "functions-framework"

# What a function's process gets besides the manifest's own variables and its resolved secrets (and
# APP_ENV=production replaced by APP_ENV=deploy-check: production rules, local endpoints allowed). Nothing
# else: a variable the manifest forgets is missing here as it would be in production.
OVERLAY = (
    # where the clients reach Google's services and the providers: the emulators and stand-ins
    "FIRESTORE_EMULATOR_HOST", "FIREBASE_AUTH_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST", "CLOUD_TASKS_EMULATOR_HOST",
    "COMPUTE_API_ENDPOINT", "SECRET_MANAGER_API_ENDPOINT", "IAM_API_ENDPOINT", "STORAGE_EMULATOR_HOST",
    "MEDIA_SIGNING_KEY_FILE",  # a key file in place of IAM signBlob as the runtime account
    "STRIPE_API_BASE", "OPENROUTER_BASE_URL", "OPENAI_BASE_URL",
    "GOOGLE_CERTS_URL",  # Google's ID-token keys: the local signing key's
    # what the platform (Cloud Run) sets in every instance
    "PORT", "K_SERVICE", "FUNCTION_TARGET",
)


class QuietHandler(WSGIRequestHandler):
    def log_request(self, *args) -> None:  # the front records its calls itself (Front.calls)
        pass


class CheckFailed(Exception):
    """What is wrong, said so the operator knows where to look."""


def say(out, line: str) -> None:
    print(line, file=out, flush=True)


# ---------------------------------------------------------------------------------------------- 1. deploy


class ControlPlane:
    """The local control plane of one check: its state file and the `gcloud` an operator types."""

    def __init__(self, workdir: Path, project: str = PROJECT_ID, region: str = REGION):
        self.state = workdir / "control-plane.json"
        self.project, self.region = project, region
        self.env = {"FAKE_GCLOUD_STATE": str(self.state), "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
                    "DEPLOYCHECK_PYTHON": sys.executable}

    def deploy(self, doc: dict, only: set[str] | None = None, jobs: int = 8) -> str:
        """Runs the manifest's steps; CheckFailed with the failing steps' output."""
        out = io.StringIO()
        code = cloudbuild.run(doc, self.project, {"_REGION": self.region}, jobs=jobs, only=only, env=self.env,
                              out=out)
        text = out.getvalue()
        if code:
            failed = [m.group(1) for m in re.finditer(r"^\[([^\]]+)\] FAILED \(exit \d+\)$", text, re.M)]
            lines = [line for line in text.splitlines() if any(line.startswith(f"[{s}]") for s in failed)]
            raise CheckFailed("deploy: the manifest failed at step(s) " + ", ".join(failed) + ":\n  "
                              + "\n  ".join(lines[-12:]))
        return text

    def gcloud(self, *args: str, stdin: str | None = None) -> str:
        proc = subprocess.run([str(BIN / "gcloud"), *args], input=stdin, capture_output=True, text=True,
                              env={**os.environ, **self.env}, cwd=ROOT)
        if proc.returncode:
            raise CheckFailed(f"gcloud {' '.join(args)}: {proc.stderr.strip()}")
        return proc.stdout

    def add_secret_version(self, secret: str, value: str) -> None:
        """What the manifest's summary tells the operator to do."""
        self.gcloud("secrets", "versions", "add", secret, f"--project={self.project}", "--data-file=-", stdin=value)

    def resources(self) -> dict:
        return json.loads(self.state.read_text())["resources"]


def with_prerequisites(doc: dict, steps: set[str]) -> set[str]:
    """These steps of the manifest and every step they wait for (to run only part of it)."""
    deps = cloudbuild.order(doc["steps"])
    todo, out = list(steps), set()
    while todo:
        step = todo.pop()
        if step not in out:
            out.add(step)
            todo.extend(deps[step])
    return out


def secret_vars(doc: dict) -> dict[str, str]:
    """secret -> the variable a function reads it as, from the manifest's `--set-secrets`."""
    out = {}
    for step in doc["steps"]:
        for arg in step.get("args", []):
            if str(arg).startswith("--set-secrets="):
                for item in str(arg).split("=", 1)[1].split(","):
                    var, _, ref = item.partition("=")
                    out[ref.split(":", 1)[0]] = var
    return out


def prefixed(resources: dict, kind: str) -> dict[str, dict]:
    """Resources of a kind by the rest of their key (e.g. "function" -> {"<p>/<region>/<name>": ...})."""
    return {k.split(":", 1)[1]: v for k, v in resources.items() if k.startswith(kind + ":")}


# ---------------------------------------------------------------------------------------------- 2.-5. run


@dataclass
class Function:
    name: str
    record: dict  # the control plane's
    port: int
    env: dict[str, str] = field(default_factory=dict)
    service: object = None  # devtools.stack.Service

    @property
    def private(self) -> bool:
        return not self.record["public"]


def last_line(path: Path | None, severe: bool = False) -> str:
    """The last line of a log; severe: the last WARNING or worse of a JSON log (the functions' stdout)."""
    if path is None or not path.exists():
        return ""
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    if severe:
        lines = [line for line in lines if re.search(r'"severity": ?"(WARNING|ERROR|CRITICAL|ALERT)"', line)]
    return lines[-1] if lines else ""


def check_trigger(fn: Function) -> None:
    """The trigger the manifest deploys a function with matches what its code is: a CloudEvent function
    needs an event trigger (Pub/Sub through Eventarc), an HTTP function an HTTP trigger."""
    import ast

    tree = ast.parse((ROOT / fn.record["source"]).read_text())
    kinds = {d.attr for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == fn.record["entryPoint"]
             for d in node.decorator_list if isinstance(d, ast.Attribute)}
    event = "topic" in fn.record["trigger"]
    if event and "cloud_event" not in kinds:
        raise CheckFailed(f"function {fn.name}: deployed with --trigger-topic, but its code is not a CloudEvent "
                          f"function (@functions_framework.cloud_event): give it --trigger-http")
    if not event and "cloud_event" in kinds:
        raise CheckFailed(f"function {fn.name}: its code is a CloudEvent function, but the manifest deploys it with "
                          f"an HTTP trigger: nothing would deliver its events (give it --trigger-topic)")


class Eventarc:
    """A Pub/Sub trigger of a gen2 function, as Eventarc runs it: a subscription on the topic whose messages
    are pushed to the function's URL (here through the front) as binary-mode CloudEvents of type
    google.cloud.pubsub.topic.v1.messagePublished, with an OIDC token of the trigger's service account for the
    function's URL. A non-2xx answer is retried (the trigger's --retry) or dropped."""

    def __init__(self, pubsub_host: str, project: str, region: str, function: Function, front_url: str,
                 key: GoogleKey):
        trigger = function.record["trigger"]
        self.pubsub = f"http://{pubsub_host}/v1"
        self.topic = f"projects/{project}/topics/{trigger['topic']}"
        self.subscription = f"projects/{project}/subscriptions/eventarc-{region}-{function.name}-sub"
        self.account, self.retry = trigger["serviceAccount"], bool(trigger.get("retry"))
        self.url, self.audience, self.key = f"{front_url}/{function.name}", function.record["url"], key
        self.deliveries: list[tuple[str, int]] = []  # (message id, status)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name=f"eventarc-{function.name}")
        self.http = httpx.Client(timeout=60)

    def start(self) -> None:
        r = self.http.put(f"{self.pubsub}/{self.subscription}", json={"topic": self.topic, "ackDeadlineSeconds": 60})
        if r.status_code not in (200, 409):
            raise CheckFailed(f"Eventarc: subscription {self.subscription}: {r.status_code} {r.text[:300]}")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self.http.close()

    def failures(self) -> list[tuple[str, int]]:
        return [d for d in self.deliveries if not 200 <= d[1] < 300]

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                got = self.http.post(f"{self.pubsub}/{self.subscription}:pull",
                                     json={"maxMessages": 10, "returnImmediately": True}).json()
            except (httpx.HTTPError, ValueError):
                self._stop.wait(0.5)
                continue
            received = got.get("receivedMessages") or []
            if not received:
                self._stop.wait(0.1)
            for item in received:
                self._deliver(item)

    def _deliver(self, item: dict) -> None:
        msg = item["message"]
        mid, published = msg.get("messageId", ""), msg.get("publishTime", "")
        body = {"message": {**msg, "message_id": mid, "publish_time": published}, "subscription": self.subscription}
        headers = {"ce-id": mid, "ce-source": f"//pubsub.googleapis.com/{self.topic}", "ce-specversion": "1.0",
                   "ce-type": "google.cloud.pubsub.topic.v1.messagePublished", "ce-time": published,
                   "Content-Type": "application/json",
                   "Authorization": f"Bearer {self.key.token(audience=self.audience, email=self.account)}"}
        try:
            status = self.http.post(self.url, json=body, headers=headers).status_code
        except httpx.HTTPError:
            status = 599
        self.deliveries.append((mid, status))
        ack = 200 <= status < 300 or not self.retry
        if ack:
            self.http.post(f"{self.pubsub}/{self.subscription}:acknowledge", json={"ackIds": [item["ackId"]]})
        else:  # back to the subscription: delivered again after a short backoff
            self._stop.wait(1)
            self.http.post(f"{self.pubsub}/{self.subscription}:modifyAckDeadline",
                           json={"ackIds": [item["ackId"]], "ackDeadlineSeconds": 0})


class Deployed:
    """Everything the check runs: the local services, the functions as the control plane recorded them,
    the front, and the callers. Each part is started on its own (the negative tests start only what they
    need); `close()` stops all of it."""

    def __init__(self, workdir: Path, project: str = PROJECT_ID, region: str = REGION):
        self.workdir, self.project, self.region = workdir, project, region
        self.stack = Stack(workdir / "logs")
        self.stack.logdir.mkdir(exist_ok=True)
        self.resources: dict = {}
        self.functions: dict[str, Function] = {}
        self.base = f"https://{region}-{project}.cloudfunctions.net"
        self.key: GoogleKey | None = None
        self.front: Front | None = None
        self.front_url = ""
        self._server = None
        self.eventarc: list[Eventarc] = []

    def load(self, resources: dict) -> None:
        """What the control plane recorded: the functions of this project and region get their ports."""
        self.resources = resources
        self.functions = {rec["name"]: Function(rec["name"], rec, free_port())
                          for key, rec in prefixed(resources, "function").items()
                          if key.startswith(f"{self.project}/{self.region}/")}

    # -- local services
    def start(self, *services: str) -> None:
        """Stack services by method name (firestore, pubsub, auth, stripe, providers, embeddings, secrets)."""
        for name in services:
            getattr(self.stack, name)()

    def start_storage(self) -> None:
        """Cloud Storage with the bucket the manifest made for the media function."""
        buckets = list(prefixed(self.resources, "bucket"))
        media = self.functions.get("media")
        bucket = media.record["env"].get("MEDIA_BUCKET") if media else (buckets[0] if buckets else None)
        if bucket not in buckets:
            raise CheckFailed(f"storage: the media function's bucket {bucket!r} is not one the manifest created "
                              f"({', '.join(buckets) or 'none'})")
        self.stack.storage(bucket)

    def start_google(self) -> None:
        """A local key in place of Google's ID-token signing key, and its certificate endpoint."""
        self.key = GoogleKey.generate("deploycheck-1")
        self.key.write(self.key_file, f"google@{self.project}.iam.gserviceaccount.com", self.project)
        self.stack.google_certs(self.key_file)

    @property
    def key_file(self) -> Path:
        return self.stack.logdir / "google-key.json"

    def materialise(self) -> None:
        """What the control plane recorded, in the local services that are running: secrets and their
        versions in Secret Manager, topics in Pub/Sub."""
        env = self.stack.env
        if "SECRET_MANAGER_API_ENDPOINT" in env:
            self._fill_secret_manager()
        if "PUBSUB_EMULATOR_HOST" in env:
            for name in prefixed(self.resources, "topic"):
                project, topic = name.split("/", 1)
                r = httpx.put(f"http://{env['PUBSUB_EMULATOR_HOST']}/v1/projects/{project}/topics/{topic}")
                if r.status_code not in (200, 409):
                    raise CheckFailed(f"Pub/Sub: topic {topic}: {r.status_code} {r.text[:200]}")

    def _fill_secret_manager(self) -> None:
        """The control plane's secrets and versions, in the local Secret Manager."""
        url = self.stack.env["SECRET_MANAGER_API_ENDPOINT"]
        for name, secret in prefixed(self.resources, "secret").items():
            project, sid = name.split("/", 1)
            r = httpx.post(f"{url}/v1/projects/{project}/secrets", params={"secretId": sid},
                           json={"replication": {"automatic": {}}})
            if r.status_code not in (200, 409):
                raise CheckFailed(f"Secret Manager: create {sid}: {r.status_code} {r.text[:200]}")
            for value in secret["versions"]:
                data = base64.b64encode(value.encode()).decode()
                httpx.post(f"{url}/v1/projects/{project}/secrets/{sid}:addVersion",
                           json={"payload": {"data": data}}).raise_for_status()

    def start_tasks(self) -> None:
        """Cloud Tasks with the control plane's queues; tasks carry OIDC tokens signed by the local Google
        key and go to the front wherever they are addressed to the functions' https URLs."""
        queues = {name.rsplit("/", 1)[1]: q for name, q in prefixed(self.resources, "queue").items()
                  if name.startswith(f"{self.project}/{self.region}/")}
        # the stand-in has one retry limit for all queues: the strictest of the manifest's
        retries = min((int(q.get("max-attempts", 100)) - 1 for q in queues.values()), default=5)
        self.stack.tasks(list(queues), max_retries=retries, oidc_key=self.key_file,
                         url_map={self.base: self.front_url})

    # -- functions
    def secret_value(self, ref: dict) -> str:
        """A `--set-secrets` reference resolved as Cloud Run does at instance start."""
        url = self.stack.env.get("SECRET_MANAGER_API_ENDPOINT")
        if not url:
            raise CheckFailed("Secret Manager is not running: secrets cannot be resolved")
        r = httpx.get(f"{url}/v1/projects/{self.project}/secrets/{ref['secret']}/versions/{ref['version']}:access")
        if r.status_code != 200:
            raise CheckFailed(f"secret {ref['secret']}:{ref['version']}: {r.status_code} {r.text[:200]}")
        return base64.b64decode(r.json()["payload"]["data"]).decode()

    def function_env(self, fn: Function) -> dict[str, str]:
        env = dict(fn.record["env"])
        if env.get("APP_ENV") != "production":
            raise CheckFailed(f"function {fn.name}: the manifest sets APP_ENV={env.get('APP_ENV')!r}, not production")
        clash = sorted(set(env) & set(OVERLAY))
        if clash:
            raise CheckFailed(f"function {fn.name}: the manifest sets {', '.join(clash)} (local or platform "
                              "variables have no place in a production deploy)")
        env["APP_ENV"] = "deploy-check"
        for var, ref in fn.record.get("secrets", {}).items():
            env[var] = self.secret_value(ref)
        overlay = {k: v for k, v in self.stack.env.items() if k in OVERLAY}
        overlay.update(PORT=str(fn.port), K_SERVICE=fn.name, FUNCTION_TARGET=fn.record["entryPoint"])
        assert set(overlay) <= set(OVERLAY)
        return {**env, **overlay}

    def start_functions(self, only: set[str] | None = None, timeout: float = 60) -> None:
        """Each function in its own process as Cloud Run starts an instance; CheckFailed naming every
        function whose process exits at start, with the last line of its stderr."""
        chosen = [fn for name, fn in self.functions.items() if only is None or name in only]
        for fn in chosen:
            check_trigger(fn)
            fn.env = self.function_env(fn)
            cmd = [str(FUNCTIONS_FRAMEWORK), "--source", fn.record["source"], "--target", fn.record["entryPoint"],
                   "--host", "127.0.0.1", "--port", str(fn.port)]
            if "topic" in fn.record["trigger"]:
                cmd += ["--signature-type", "cloudevent"]
            fn.service = self.stack.spawn(f"fn-{fn.name}", cmd, cwd=ROOT, env=fn.env, split_stderr=True)
        failed = []
        deadline = time.monotonic() + timeout
        for fn in chosen:
            try:
                wait_port(fn.port, max(1.0, deadline - time.monotonic()), fn.name, fn.service.proc)
            except RuntimeError:
                fn.service.proc.poll()
                code = fn.service.proc.returncode
                why = last_line(fn.service.err) or last_line(fn.service.log) or "(no output)"
                failed.append(f"function {fn.name} " + (f"exited at start with status {code}" if code is not None
                                                        else f"is not listening after {timeout:.0f}s") + f": {why}")
        if failed:
            raise CheckFailed("start: " + "; ".join(failed))

    # -- the front and the callers
    def start_front(self) -> str:
        bindings = [k.split(":", 1)[1] for k in self.resources if k.startswith("binding:function:")]
        targets = {}
        for fn in self.functions.values():
            resource = f"function:{self.project}/{self.region}/{fn.name}"
            invokers = {member for res, member, role, _ in (b.split("|") for b in bindings)
                        if res == resource and role == "roles/run.invoker"}
            timeout = float(str(fn.record["sizing"].get("timeout") or "60s").rstrip("s"))
            targets[fn.name] = Target(fn.name, fn.record["url"], fn.port, fn.record["public"], invokers, timeout)
        self.front = Front(targets, self.key.jwks(), f"{self.region}-{self.project}.cloudfunctions.net")
        self._server = make_server("127.0.0.1", 0, self.front, threaded=True, request_handler=QuietHandler)
        threading.Thread(target=self._server.serve_forever, daemon=True, name="front").start()
        self.front_url = f"http://127.0.0.1:{self._server.server_port}"
        return self.front_url

    def start_eventarc(self) -> None:
        host = self.stack.env["PUBSUB_EMULATOR_HOST"]
        for fn in self.functions.values():
            if "topic" in fn.record["trigger"] and fn.service is not None:  # a trigger of a running function
                trigger = Eventarc(host, self.project, self.region, fn, self.front_url, self.key)
                trigger.start()
                self.eventarc.append(trigger)

    def jobs(self) -> dict[str, dict]:
        return {name.rsplit("/", 1)[1]: job for name, job in prefixed(self.resources, "job").items()
                if name.startswith(f"{self.project}/{self.region}/")}

    def fire(self, job_name: str) -> httpx.Response:
        """A Cloud Scheduler job run now (`gcloud scheduler jobs run`): its method, URI (through the front),
        body and headers, the scheduler's own headers and an OIDC token of its service account."""
        job = self.jobs()[job_name]
        uri = job["uri"]
        if not uri.startswith(self.base + "/"):
            raise CheckFailed(f"scheduler job {job_name}: {uri} is not one of this project's functions")
        headers = dict(h.split("=", 1) for h in job.get("headers", "").split(",") if h)
        schedule_time = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        headers.update({"X-CloudScheduler": "true", "X-CloudScheduler-JobName": job_name,
                        "X-CloudScheduler-ScheduleTime": schedule_time, "User-Agent": "Google-Cloud-Scheduler"})
        if job.get("oidc-service-account-email"):
            token = self.key.token(audience=job.get("oidc-token-audience") or uri,
                                   email=job["oidc-service-account-email"])
            headers["Authorization"] = f"Bearer {token}"
        return httpx.request(job.get("http-method", "POST"), self.front_url + uri[len(self.base):],
                             content=job.get("message-body", "").encode(), headers=headers, timeout=600)

    def diagnose(self, *functions: str) -> str:
        """What the operator needs when a step fails: the front's refusals, failed Eventarc deliveries and
        the last stderr line of each function involved."""
        notes = []
        for name in functions:
            fn = self.functions.get(name)
            if self.front is not None:
                refused = self.front.refusals(name)
                if refused:
                    notes.append(f"the front refused {len(refused)} call(s) to {name}, last: {refused[-1].refused}")
                errors = [c for c in self.front.errors(name) if c.caller]  # machine callers the function refused
                if errors:
                    last = errors[-1]
                    notes.append(f"{name} itself answered {len(errors)} call(s) of {last.caller} with an error, "
                                 f"last: {last.status} {last.answer}")
            if fn is not None and fn.service is not None:
                if fn.service.proc.poll() is not None:
                    notes.append(f"{name} exited with status {fn.service.proc.returncode}")
                for what, line in (("stderr", last_line(fn.service.err)),
                                   ("last warning", last_line(fn.service.log, severe=True))):
                    if line:
                        notes.append(f"{name} {what}: {line[:500]}")
        for trigger in self.eventarc:
            bad = trigger.failures()
            if bad:
                notes.append(f"Eventarc: {len(bad)} failed deliveries to {trigger.url}, last status {bad[-1][1]}")
        return ("\n  " + "\n  ".join(notes)) if notes else ""

    def close(self) -> None:
        for trigger in self.eventarc:
            trigger.stop()
        if self._server is not None:
            self._server.shutdown()
        if self.front is not None:
            self.front.close()
        self.stack.stop()


# ---------------------------------------------------------------------------------------------- 6. journey

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 200
NOTES = ("Apple pie needs apples, cinnamon, sugar and butter. Bake the pie for forty minutes. "
         "Serve the apple pie warm with vanilla ice cream.")
ANTHROPIC_KEY = "sk-ant-api03-" + "Q" * 40 + "wxyz"


class Journey:
    """A user's (and, where the product needs one, an admin's) calls through the front only."""

    def __init__(self, d: Deployed, out):
        self.d, self.out = d, out
        self.http = httpx.Client(base_url=d.front_url, timeout=120)
        self.steps: list[tuple[str, float, str]] = []
        self.user: dict = {}
        self.admin: dict = {}
        self.dep: dict = {}
        self.reembed_run: str = ""

    def call(self, step: str, method: str, path: str, token: str | None = None, expect=(200,), **kw) -> dict:
        headers = dict(kw.pop("headers", {}))
        if token:
            headers["Authorization"] = f"Bearer {token}"
        r = self.http.request(method, path, headers=headers, **kw)
        fn = path.lstrip("/").split("/")[0].split("?")[0]
        if r.status_code not in expect:
            raise CheckFailed(f"step {step!r}: function {fn}: {method} {path} answered {r.status_code} "
                              f"(expected {', '.join(map(str, expect))}): {r.text[:600]}" + self.d.diagnose(fn))
        return r.json() if r.content and r.headers.get("content-type", "").startswith("application/json") else {}

    def poll(self, step: str, what: str, path: str, token: str, done: Callable[[dict], bool],
             functions: tuple[str, ...], timeout: float = 60) -> dict:
        """GET `path` until `done(answer)`. CheckFailed after `timeout` with the last answer, or at once
        when the front, or one of `functions` itself, turns a Google caller away (that does not heal)."""
        deadline = time.monotonic() + timeout

        def turned_away() -> dict[str, int]:  # by the front, or by the function itself (401/403 to a machine)
            return {name: len(self.d.front.refusals(name))
                    + sum(1 for c in self.d.front.errors(name) if c.caller and c.status in (401, 403))
                    for name in functions}
        before = turned_away()
        while True:
            body = self.call(step, "GET", path, token)
            if done(body):
                return body
            if turned_away() != before:
                raise CheckFailed(f"step {step!r}: waiting for {what}: a caller was turned away"
                                  + self.d.diagnose(*functions))
            if time.monotonic() > deadline:
                raise CheckFailed(f"step {step!r}: {what}: not after {timeout:.0f}s; GET {path} answers "
                                  f"{json.dumps(body)[-600:]}" + self.d.diagnose(*functions))
            time.sleep(0.5)  # 120 calls a minute at most: well inside the default rate limit (300)

    def run(self, steps: list[str] | None = None) -> None:
        try:
            for name, fn in JOURNEY:
                if steps is not None and name not in steps:
                    continue
                started = time.monotonic()
                line = fn(self)
                took = time.monotonic() - started
                self.steps.append((name, took, line))
                say(self.out, f"  ok  {name:<22} {took:5.1f}s  {line}")
        finally:
            self.http.close()

    # -- helpers
    def sign_up(self, email: str) -> dict:
        from devtools.token import emulator_account

        acc = emulator_account(self.d.stack.env["FIREBASE_AUTH_EMULATOR_HOST"], email, "password-123")
        return {"email": email, "token": acc["idToken"], "uid": acc["localId"]}

    def job_done(self, step: str, dep_id: str, job_id: str, timeout: float = 90) -> dict:
        job = self.poll(step, f"deploy job {job_id} finished", f"/deployments/{dep_id}/jobs/{job_id}",
                        self.user["token"], lambda j: j.get("status") in ("completed", "failed"), ("deployWorker",),
                        timeout)
        if job["status"] != "completed":
            raise CheckFailed(f"step {step!r}: function deployWorker: job {job_id} {job['status']}: "
                              f"{job.get('log', '')[-600:]}" + self.d.diagnose("deployWorker"))
        return job

    def dep_running(self, step: str, dep_id: str) -> dict:
        return self.poll(step, f"deployment {dep_id} running (the VM's report over Pub/Sub)", f"/deployments/{dep_id}",
                         self.user["token"], lambda d: d.get("status") == "running", ("provisioningEvents",))

    def run_finished(self, step: str, fn: str, run_id: str) -> dict:
        report = self.poll(step, f"{fn} run {run_id} finished", f"/{fn}/runs/{run_id}", self.admin["token"],
                           lambda r: r.get("finished"), ("costPullWorker",))
        if report["failed"] or report["batchesDone"] < 1:
            raise CheckFailed(f"step {step!r}: function costPullWorker: run {run_id}: {json.dumps(report)[:600]}"
                              + self.d.diagnose("costPullWorker"))
        return report


def step_sign_up(j: Journey) -> str:
    j.user = j.sign_up("deploycheck-user@example.com")
    me = j.call("sign-up", "GET", "/users/me", j.user["token"])
    if me.get("email") != j.user["email"]:
        raise CheckFailed(f"step 'sign-up': function users: /users/me answered {me}")
    j.user["id"] = me["_id"]
    return f"users: {me['_id']} ({me['email']}) created on the first call to /users/me"


def step_operator(j: Journey) -> str:
    """What an operator does once (outside the product): the first admin (a role set in the Firestore
    console), a plan with its Stripe price, Stripe's prices and its webhook endpoint at the function's URL."""
    from devtools import seed_billing

    j.admin = j.sign_up("deploycheck-admin@example.com")
    j.admin["id"] = j.call("operator", "GET", "/users/me", j.admin["token"])["_id"]
    host = j.d.stack.env["FIRESTORE_EMULATOR_HOST"]
    doc = f"http://{host}/v1/projects/{j.d.project}/databases/(default)/documents/users/{j.admin['id']}"
    httpx.patch(doc, params={"updateMask.fieldPaths": "role"}, headers={"Authorization": "Bearer owner"},
                json={"fields": {"role": {"stringValue": "admin"}}}).raise_for_status()
    seed_billing.seed(j.d.stack.env, f"{j.d.front_url}/stripeWebhook")
    plan = {"slug": "starter", "name": "Starter", "priceMonthly": 29, "priceYearly": 290,
            "stripePriceId": seed_billing.PRICES[0][1], "features": ["One OpenClaw bot"]}
    j.call("operator", "POST", "/pricingPlans", j.admin["token"], expect=(201,), json=plan)
    listed = [p["slug"] for p in j.call("operator", "GET", "/pricingPlans")["items"]]
    if listed != ["starter"]:
        raise CheckFailed(f"step 'operator': function pricingPlans: the public list is {listed}")
    return f"first admin {j.admin['id']}; Stripe prices and webhook; plan starter ({plan['stripePriceId']}) listed"


def step_trial(j: Journey) -> str:
    sub = j.call("trial", "POST", "/billing/trial", j.user["token"], expect=(201,))["subscription"]
    if sub.get("status") != "trialing":
        raise CheckFailed(f"step 'trial': function billing: {sub}")
    return f"billing: trialing until {datetime.fromtimestamp(sub['trialEnd'] / 1000, timezone.utc):%Y-%m-%d}"


def step_deployment(j: Journey) -> str:
    body = {"gcpProject": j.d.project, "zone": f"{j.d.region}-a", "botName": "Deploy Check",
            "primaryModel": "anthropic/claude-sonnet-4"}
    created = j.call("deployment", "POST", "/deployments", j.user["token"], expect=(201,), json=body)
    j.dep = created["deployment"]
    job = j.job_done("deployment", j.dep["_id"], created["job"]["_id"])
    j.dep_running("deployment", j.dep["_id"])
    took = (job["completedAt"] - job["startedAt"]) / 1000
    return (f"deployments -> Cloud Tasks -> deployWorker ({took:.1f}s) -> Compute -> VM report -> Pub/Sub -> "
            f"provisioningEvents: {j.dep['vmName']} running")


def step_config_change(j: Journey) -> str:
    dep = j.dep["_id"]
    tok = j.user["token"]
    key = j.call("config change", "PUT", f"/apiKeys/{dep}/anthropic-api-key", tok, json={"value": ANTHROPIC_KEY})
    # a plugin is enabled only with its API keys in place (409 missing_keys otherwise)
    j.call("config change", "PUT", f"/apiKeys/{dep}/beehiiv-api-key", tok, json={"value": "bh-" + "k" * 30})
    j.call("config change", "PUT", f"/pluginConfigs/{dep}/beehiiv", tok, expect=(201, 200),
           json={"enabled": True, "config": {"publicationId": "pub_1234abcd"}})
    j.call("config change", "PUT", f"/skillConfigs/{dep}/daily-briefing", tok, expect=(201, 200),
           json={"enabled": True})
    j.call("config change", "PATCH", f"/deployments/{dep}", tok, json={"botName": "Deploy Check 2"})
    job = j.call("config change", "POST", f"/deployments/{dep}/actions", tok, expect=(202,),
                 json={"action": "update"})["job"]
    j.job_done("config change", dep, job["_id"])
    j.dep_running("config change", dep)
    return f"plugin, skill, API key ({key['maskedValue']}), bot name; `update` job completed, VM back to running"


def step_knowledge(j: Journey) -> str:
    out = j.call("knowledge", "POST", "/knowledge", j.user["token"], expect=(201,),
                 json={"text": NOTES, "source": "recipes"})
    hits = j.call("knowledge", "POST", "/knowledge/search", j.user["token"],
                  json={"query": "how long to bake an apple pie", "limit": 3})["items"]
    if not hits or hits[0]["source"] != "recipes":
        raise CheckFailed(f"step 'knowledge': function knowledge: search found {hits}")
    return f"ingested {out['stored']} chunk(s) (OpenAI embeddings), search top hit score {hits[0]['score']:.3f}"


def step_media(j: Journey) -> str:
    tok = j.user["token"]
    up = j.call("media", "POST", "/media/uploads", tok, expect=(201,),
                json={"type": "image", "mimeType": "image/png", "size": len(PNG)})
    put = httpx.request(up["method"], up["uploadUrl"], content=PNG, headers=up["headers"])
    if put.status_code != 200:
        raise CheckFailed(f"step 'media': Cloud Storage refused the signed upload URL: "
                          f"{put.status_code} {put.text[:300]}")
    media = j.call("media", "POST", "/media", tok, expect=(201,),
                   json={"storageId": up["storageId"], "type": "image", "mimeType": "image/png", "prompt": "a pie"})
    got = j.call("media", "GET", f"/media/{media['_id']}", tok)
    if httpx.get(got["downloadUrl"]).content != PNG:
        raise CheckFailed("step 'media': function media: the signed download URL does not return the upload")
    return f"signed PUT to bucket {j.d.functions['media'].record['env']['MEDIA_BUCKET']}, registered, downloaded"


def step_cost_pull(j: Journey) -> str:
    key_hash = hashlib.sha256(b"sk-or-v1-deploycheck-user").hexdigest()
    today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    # the user's accounts at the providers (their stand-in): an OpenRouter key and an OpenAI project
    httpx.put(f"{j.d.stack.urls['providers']}/_control/state",
              json={"keys": {key_hash: {"limit": 10.0, "usage": 2.5}},
                    "openai": {"proj_deploycheck": {today: 1.25}}}).raise_for_status()
    j.call("scheduled cost pull", "PUT", f"/costs/accounts/{j.user['id']}", j.admin["token"],
           json={"openrouterKeyHash": key_hash, "openaiProjectId": "proj_deploycheck"})
    reports = []
    for job, fn in (("pullCosts-every-6h", "pullCosts"), ("pullOpenrouterActivity-every-6h", "pullOpenrouterActivity")):
        r = j.d.fire(job)
        if r.status_code != 202:
            raise CheckFailed(f"step 'scheduled cost pull': function {fn}: scheduler job {job} answered "
                              f"{r.status_code}: {r.text[:600]}" + j.d.diagnose(fn))
        reports.append(j.run_finished("scheduled cost pull", fn, r.json()["runId"]))
    snaps = j.call("scheduled cost pull", "GET", "/costs/snapshots", j.user["token"])["items"]
    if not snaps:
        raise CheckFailed("step 'scheduled cost pull': function costs: no snapshot for the user after the run")
    runs = "; ".join(f"{r['kind']} ok {r['ok']} failed {r['failed']}" for r in reports)
    return (f"pullCosts + pullOpenrouterActivity -> cost-pulls queue -> costPullWorker: {runs}; "
            f"user sees {len(snaps)} snapshot(s)")


def step_stripe(j: Journey) -> str:
    import stripe

    tok = j.user["token"]
    checkout = j.call("stripe webhook", "POST", "/billing/checkout", tok, json={"plan": "starter"})
    env = j.d.stack.env
    sc = stripe.StripeClient(env["STRIPE_SECRET_KEY"], base_addresses={"api": env["STRIPE_API_BASE"]})
    # what Stripe does when the user completes Checkout: a card and the subscription, then signed events
    pm = sc.v1.payment_methods.create({"type": "card", "card": {"number": "4242424242424242", "exp_month": 12,
                                                                "exp_year": 2035, "cvc": "123"}})
    sc.v1.payment_methods.attach(pm.id, {"customer": checkout["customerId"]})
    sc.v1.customers.update(checkout["customerId"], {"invoice_settings": {"default_payment_method": pm.id}})
    sub = sc.v1.subscriptions.create({"customer": checkout["customerId"], "items": [{"plan": checkout["priceId"]}]})
    view = j.poll("stripe webhook", "the subscription active after Stripe's signed events", "/billing/subscription",
                  tok, lambda v: (v.get("subscription") or {}).get("status") == "active", ("stripeWebhook",), 30)
    accepted = [c for c in j.d.front.calls if c.function == "stripeWebhook" and c.status == 200]
    got = view["subscription"]
    if got.get("stripeSubscriptionId") != sub.id or got.get("plan") != "starter":
        raise CheckFailed(f"step 'stripe webhook': function stripeWebhook: subscription {got}, Stripe's {sub.id}")
    return f"checkout customer {checkout['customerId']}; {len(accepted)} signed event(s) accepted; active, starter"


def step_reconcile(j: Journey) -> str:
    r = j.d.fire("billing-reconcile")
    if r.status_code != 200:
        raise CheckFailed(f"step 'billing reconcile': function billingReconcile: scheduler job answered "
                          f"{r.status_code}: {r.text[:600]}" + j.d.diagnose("billingReconcile"))
    report = r.json()
    if report["errors"] or report["changed"]:
        raise CheckFailed(f"step 'billing reconcile': function billingReconcile: drift or errors: {r.text[:600]}")
    return f"scheduler job billing-reconcile: checked {report['checked']}, no drift"


def step_site(j: Journey) -> str:
    j.call("site content", "PUT", "/cmsPages/about", j.admin["token"], expect=(201, 200),
           json={"title": "About", "body": "# About", "published": True})
    page = j.call("site content", "GET", "/cmsPages/about")
    link = j.call("site content", "POST", "/navLinks", j.admin["token"], expect=(201,),
                  json={"label": "Pricing", "href": "/pricing", "section": "header"})
    links = j.call("site content", "GET", "/navLinks?section=header")["items"]
    if page.get("slug") != "about" or link["_id"] not in [i["_id"] for i in links]:
        raise CheckFailed(f"step 'site content': {page} {links}")
    return "cmsPages and navLinks written by the admin, read anonymously"


def step_reembed_start(j: Journey) -> str:
    """An installation made with an older embedding model (its record as an earlier version left it):
    the admin starts re-embedding into the configured one; it runs while the journey goes on (the first
    task waits for the run to settle, KNOWLEDGE_REEMBED_SETTLE_S)."""
    host = j.d.stack.env["FIRESTORE_EMULATOR_HOST"]
    doc = f"http://{host}/v1/projects/{j.d.project}/databases/(default)/documents/knowledgeModel/current"
    older = {"mapValue": {"fields": {"model": {"stringValue": "text-embedding-ada-002"},
                                     "dimensions": {"integerValue": "1536"}, "slot": {"stringValue": "embeddingAlt"}}}}
    httpx.patch(doc, headers={"Authorization": "Bearer owner"},
                json={"fields": {"active": older, "target": {"nullValue": None}}}).raise_for_status()
    r = j.call("re-embedding", "POST", "/knowledge/reembed", j.admin["token"], expect=(202,))
    j.reembed_run = r["run"]["runId"]
    return f"run {j.reembed_run}: {r['active']['model']} -> {r['target']['model']} (slot {r['target']['slot']})"


def step_reembed_done(j: Journey) -> str:
    report = j.poll("re-embedding", f"re-embedding run {j.reembed_run} completed", "/knowledge/reembed",
                    j.admin["token"], lambda r: (r.get("run") or {}).get("status") == "completed",
                    ("knowledgeReembedWorker",), timeout=240)
    run = report["run"]
    return (f"knowledgeReembedWorker: {run['usersDone']} users switched, {run['chunksEmbedded']} chunks "
            f"re-embedded; search now on {report['active']['model']}")


def step_watch(j: Journey) -> str:
    """The scheduled health check and backup cleanup, what the owner reads of them (notifications, audit
    log, backups), and one webhook-delivery task through the front to webhookWorker: a delivery that does
    not exist, so no request leaves (the deploy check reaches nothing outside this machine)."""
    for job in ("health-check", "backups-cleanup"):
        r = j.d.fire(job)
        if r.status_code != 200:
            raise CheckFailed(f"step 'watch': scheduler job {job} answered {r.status_code}: {r.text[:600]}")
    notices = j.call("watch", "GET", "/notifications", j.user["token"])["items"]
    audit = j.call("watch", "GET", "/auditLog/me", j.user["token"])["items"]
    backups = j.call("watch", "GET", "/backups", j.user["token"])["items"]
    if not audit:
        raise CheckFailed("step 'watch': the audit log holds none of the user's calls")
    from google.cloud import tasks_v2

    from shared.tasks import emulator_client

    env = j.d.functions["webhookWorker"].record["env"]
    parent = f"projects/{j.d.project}/locations/{j.d.region}/queues/{env['WEBHOOKS_QUEUE']}"
    request = tasks_v2.HttpRequest(http_method=tasks_v2.HttpMethod.POST, url=env["WEBHOOKS_WORKER_URL"],
                                   headers={"Content-Type": "application/json"},
                                   body=json.dumps({"deliveryId": "deploy-check-none", "attempt": 1}).encode(),
                                   oidc_token=tasks_v2.OidcToken(service_account_email=env["TASKS_INVOKER_SA"],
                                                                 audience=env["WEBHOOKS_WORKER_URL"]))
    emulator_client(j.d.stack.env["CLOUD_TASKS_EMULATOR_HOST"]).create_task(
        parent=parent, task=tasks_v2.Task(http_request=request))
    deadline = time.monotonic() + 60
    while not any(c.function == "webhookWorker" and 200 <= c.status < 300 for c in j.d.front.calls):
        if time.monotonic() > deadline:
            raise CheckFailed("step 'watch': the webhook-deliveries task never reached webhookWorker"
                              + j.d.diagnose("webhookWorker"))
        time.sleep(0.5)
    return (f"health-check and backups-cleanup ran; {len(notices)} notification(s), {len(audit)} audit "
            f"entries, {len(backups)} backup record(s); webhook-deliveries -> webhookWorker")


def step_private(j: Journey) -> str:
    """Google's front keeps everyone but their invokers out of the private functions."""
    private = [fn for fn in j.d.functions.values() if fn.private]
    for fn in private:
        for who, token in (("anonymous", None), ("a signed-in user", j.user["token"])):
            before = len(j.d.front.refusals(fn.name))
            j.call("private functions", "POST", f"/{fn.name}", token, expect=(401, 403), json={})
            if len(j.d.front.refusals(fn.name)) != before + 1:
                raise CheckFailed(f"step 'private functions': {fn.name} answered {who} itself: the front let it in")
    return f"{', '.join(fn.name for fn in private)}: anonymous and user callers refused by the front"


JOURNEY: list[tuple[str, Callable[[Journey], str]]] = [
    ("sign-up", step_sign_up),
    ("operator", step_operator),
    ("re-embedding", step_reembed_start),
    ("trial", step_trial),
    ("deployment", step_deployment),
    ("config change", step_config_change),
    ("knowledge", step_knowledge),
    ("media", step_media),
    ("scheduled cost pull", step_cost_pull),
    ("stripe webhook", step_stripe),
    ("billing reconcile", step_reconcile),
    ("site content", step_site),
    ("re-embedding finished", step_reembed_done),
    ("watch", step_watch),
    ("private functions", step_private),
]


# ---------------------------------------------------------------------------------------------- the whole


def load_manifest() -> dict:
    return yaml.safe_load((ROOT / "cloudbuild.yaml").read_text())


def coverage(d: Deployed) -> list[str]:
    """One line a function: who reached it through the front, how often, with what."""
    lines = []
    for name, fn in sorted(d.functions.items()):
        calls = [c for c in d.front.calls if c.function == name]
        callers = sorted({c.caller.split("@")[0] for c in calls if c.caller and not c.refused})
        who = "anyone (public)" if fn.record["public"] else "private: " + (", ".join(callers) or "nobody")
        ok = sum(200 <= c.status < 300 for c in calls)
        refused = sum(bool(c.refused) for c in calls)
        lines.append(f"  {name:<24}{who[:42]:<42}{len(calls):>6}{ok:>5}{refused:>9}")
    return lines


def deploy_with_secrets(doc: dict, plane: ControlPlane, values: dict[str, str], out,
                        only: set[str] | None = None) -> None:
    """The manifest twice, with a version added to every operator secret in between; a secret's value is
    `values[<the variable the manifest reads it as>]` (the local stand-ins' keys, as the Stack sets them)."""
    plane.deploy(doc, only)
    missing = sorted(name.split("/", 1)[1] for name, s in prefixed(plane.resources(), "secret").items()
                     if not s["versions"])
    variables = secret_vars(doc)
    for secret in missing:
        var = variables.get(secret)
        if var not in values:
            raise CheckFailed(f"secrets: no local stand-in value for {secret} (read as {var or 'no variable'})")
        plane.add_secret_version(secret, values[var])
    say(out, f"  ok  manifest run; versions added to {len(missing)} secret(s) ({', '.join(missing)}); running it again")
    plane.deploy(doc, only)


def bring_up(doc: dict, workdir: Path, out, functions: set[str] | None = None) -> Deployed:
    """Steps 1-5: the manifest in the control plane, then everything it recorded running locally
    (`functions`: only these functions, their manifest steps and what those wait for)."""
    only = None
    if functions is not None:
        only = with_prerequisites(doc, {s["id"] for s in doc["steps"]
                                        if s["id"].startswith(("fn-", "invoker-")) and
                                        s["id"].split("-", 1)[1] in functions})
    plane = ControlPlane(workdir)
    d = Deployed(workdir)
    try:
        t0 = time.monotonic()
        d.start("stripe", "providers", "embeddings")  # their keys are the operator's secret values
        with ThreadPoolExecutor(1) as pool:  # the emulators start while the manifest runs
            emulators = pool.submit(d.start, "secrets", "firestore", "pubsub", "auth")
            deploy_with_secrets(doc, plane, d.stack.env, out, only)
            emulators.result()
        d.load(plane.resources())
        say(out, f"  ok  control plane: {len(d.functions)} functions, {len(d.jobs())} scheduler jobs, "
                 f"{len(prefixed(d.resources, 'queue'))} queues, {len(prefixed(d.resources, 'secret'))} secrets "
                 f"({time.monotonic() - t0:.0f}s with the emulators starting)")
        t0 = time.monotonic()
        d.start_storage()
        d.stack.iam()  # each bot's own service account
        d.stack.compute(guest_events=True)  # booted VMs report over Pub/Sub like the startup script, signed
        d.start_google()
        d.materialise()
        d.start_front()
        d.start_tasks()
        say(out, f"  ok  local services, Google's key and front ({d.front_url}) ({time.monotonic() - t0:.0f}s)")
        t0 = time.monotonic()
        d.start_functions(functions)
        d.start_eventarc()
        say(out, f"  ok  {len(functions or d.functions)} functions started as deployed, callers wired "
                 f"({time.monotonic() - t0:.0f}s)")
        return d
    except BaseException:
        d.close()
        raise


def run_check(doc: dict | None = None, out=None, keep: bool = False) -> dict:
    """The whole check; returns its summary, raises CheckFailed. Stops everything it started."""
    out = out or sys.stdout
    doc = doc or load_manifest()
    workdir = Path(tempfile.mkdtemp(prefix="deploycheck-"))
    started = time.monotonic()
    say(out, f"deploy-check: project {PROJECT_ID}, region {REGION}, work folder {workdir}")
    ok = False
    try:
        d = bring_up(doc, workdir, out)
        try:
            journey = Journey(d, out)
            journey.run()
            served = {c.function for c in d.front.calls if 200 <= c.status < 300}
            say(out, "  function                callers through the front                  calls  2xx  refused")
            for line in coverage(d):
                say(out, line)
            unserved = sorted(set(d.functions) - served)
            if unserved:
                raise CheckFailed(f"coverage: no successful call reached {', '.join(unserved)}")
            calls = len(d.front.calls)
        finally:
            d.close()
        summary = {"seconds": round(time.monotonic() - started, 1), "functions": sorted(d.functions),
                   "steps": [name for name, _, _ in journey.steps], "calls": calls}
        say(out, f"deploy-check PASSED in {summary['seconds']}s: {len(d.functions)} functions deployed from the "
                 f"manifest, each served through Google's front; {len(journey.steps)} journey steps, {calls} calls")
        ok = True
        return summary
    finally:
        if not ok:
            say(out, f"deploy-check: logs and control plane kept in {workdir}")
        elif not keep:
            shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keep", action="store_true", help="keep the work folder (control plane, logs) on success")
    args = ap.parse_args(argv)
    try:
        run_check(keep=args.keep)
    except CheckFailed as exc:
        print(f"deploy-check FAILED: {exc}", file=sys.stderr, flush=True)
        return 1
    except Exception:  # an answer the check did not expect, or a bug in it: still a failed check
        traceback.print_exc()
        print("deploy-check FAILED: unexpected error (traceback above)", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
