"""Local stack: starts the emulators the project uses on free 127.0.0.1 ports.

Used by `make dev` (devtools/dev.py) and by the test suite (tests/conftest.py).
Each service is started in its own process group, so stopping it by its PID
also stops the java/node child that a gcloud/npx wrapper spawns. Nothing here
is deployed.
"""
from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEVTOOLS = ROOT / "devtools"
PROJECT_ID = "demo-openclaw"  # "demo-" prefix: the Firebase emulators never reach real services


_GIVEN: set[int] = set()


def free_port() -> int:
    """A 127.0.0.1 port nobody listens on, for a server we are about to start. From below the kernel's
    ephemeral range, so that nothing asking the kernel for a port (bind to 0, a connection out) takes it
    before our server binds it; and never one this process gave before (two servers on one port: the
    second fails to bind while the first answers for it)."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    for _ in range(1000):
        port = random.randrange(10000, max(low, 10001))
        if port in _GIVEN:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _GIVEN.add(port)
        return port
    raise RuntimeError("no free port below the ephemeral range")


def wait_http(url: str, timeout: float, what: str, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited early with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except urllib.error.HTTPError:
            return  # it answers: up
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} not ready at {url} after {timeout:.0f}s")


def wait_port(port: int, timeout: float, what: str, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited early with code {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} not listening on {port} after {timeout:.0f}s")


@dataclass
class Service:
    name: str
    proc: subprocess.Popen
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    err: Path | None = None  # stderr, when spawned with its own stderr log

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)  # our own group: wrapper and its child
            self.proc.wait(timeout=10)
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)


class Stack:
    """A set of running local services and the environment that points at them."""

    def __init__(self, logdir: Path | None = None):
        self.services: list[Service] = []
        self.logdir = logdir or Path(tempfile.mkdtemp(prefix="openclaw-stack-"))
        self.env: dict[str, str] = {"GOOGLE_CLOUD_PROJECT": PROJECT_ID, "GCLOUD_PROJECT": PROJECT_ID}
        self.urls: dict[str, str] = {}  # services started once per Stack

    def spawn(self, name: str, cmd: list[str], cwd: Path | None = None, env: dict[str, str] | None = None,
              split_stderr: bool = False) -> Service:
        """Starts `cmd` in its own process group, output to <logdir>/<name>.log (stderr to
        <name>.err.log with split_stderr); env: the process's whole environment (default: ours)."""
        log = self.logdir / f"{name}.log"
        err = self.logdir / f"{name}.err.log" if split_stderr else None
        with open(log, "wb") as out, open(err or os.devnull, "wb") as errfh:
            proc = subprocess.Popen(
                cmd, stdout=out, stderr=errfh if split_stderr else subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=cwd, env=env, start_new_session=True,
            )
        svc = Service(name, proc, log, err=err)
        self.services.append(svc)
        return svc

    def _gcloud_emulator(self, name: str, command: list[str], flag: str, what: str, variable: str) -> str:
        """`gcloud <command> start` on a free port; its host:port, also in the environment as `variable`."""
        host = f"127.0.0.1:{free_port()}"
        svc = self.spawn(name, ["gcloud", *command, "start", f"--host-port={host}", flag, "--quiet"])
        wait_http(f"http://{host}/", 60, what, svc.proc)
        self.env[variable] = host
        return host

    def firestore(self) -> str:
        return self._gcloud_emulator("firestore", ["emulators", "firestore"], f"--rules={ROOT / 'firestore.rules'}",
                                     "Firestore emulator", "FIRESTORE_EMULATOR_HOST")

    def pubsub(self) -> str:
        return self._gcloud_emulator("pubsub", ["beta", "emulators", "pubsub"], f"--project={PROJECT_ID}",
                                     "Pub/Sub emulator", "PUBSUB_EMULATOR_HOST")

    def auth(self) -> str:
        port = free_port()
        workdir = self.logdir / "firebase"
        workdir.mkdir(exist_ok=True)
        (workdir / "firebase.json").write_text(json.dumps({
            "emulators": {
                "auth": {"host": "127.0.0.1", "port": port},
                "ui": {"enabled": False},
                "hub": {"host": "127.0.0.1", "port": free_port()},
                "logging": {"host": "127.0.0.1", "port": free_port()},
            }
        }))
        firebase = DEVTOOLS / "node_modules" / ".bin" / "firebase"
        if not firebase.exists():
            raise RuntimeError("firebase-tools missing: run `make install` (npm ci in devtools/)")
        svc = self.spawn("auth", [
            str(firebase), "emulators:start", "--only", "auth", "--project", PROJECT_ID,
        ], cwd=workdir)
        host = f"127.0.0.1:{port}"
        wait_http(f"http://{host}/", 90, "Auth emulator", svc.proc)
        self.env["FIREBASE_AUTH_EMULATOR_HOST"] = host
        return host

    def tasks(self, queues: list[str], max_retries: int = 5, *, oidc_key: Path | None = None,
              url_map: dict[str, str] | None = None, max_concurrent: int = 10, min_backoff: float = 0.0,
              max_backoff: float = 0.0) -> str:
        """The Cloud Tasks stand-in, one per Stack; `queues` are short names in PROJECT_ID/us-central1,
        created at start or, once it runs, through its API (max_retries, oidc_key and url_map are
        fixed by the first call). oidc_key: a key file (devtools/standins/google_tokens.py) to sign
        the tasks' OIDC tokens with, as Cloud Tasks does; url_map: {URL prefix: replacement} for
        where tasks are dispatched (the tokens' audience stays the task's URL); max_concurrent: each
        queue's deliveries in flight at once (maxConcurrentDispatches); min/max_backoff: seconds
        between a failed task's retries, doubling (minBackoff/maxBackoff)."""
        paths = [f"projects/{PROJECT_ID}/locations/us-central1/queues/{q}" for q in queues]
        if "tasks" in self.urls:
            from google.api_core import exceptions as gexc
            from google.cloud import tasks_v2

            from shared.tasks import emulator_client

            client = emulator_client(self.urls["tasks"])
            for path in paths:
                try:
                    client.create_queue(parent=path.rsplit("/queues/", 1)[0], queue=tasks_v2.Queue(name=path))
                except gexc.AlreadyExists:
                    pass
            return self.urls["tasks"]
        port = free_port()
        options = ["--oidc-key", str(oidc_key)] if oidc_key else []
        options += ["--max-concurrent", str(max_concurrent), "--min-backoff", str(min_backoff),
                    "--max-backoff", str(max_backoff)]
        for prefix, replacement in (url_map or {}).items():
            options += ["--url-map", f"{prefix}={replacement}"]
        svc = self.spawn("tasks", [sys.executable, "-m", "devtools.standins.tasks_emulator", *options,
                                   str(port), str(max_retries), *paths], cwd=ROOT)
        host = f"127.0.0.1:{port}"
        wait_port(port, 30, "Cloud Tasks stand-in", svc.proc)
        self.env["CLOUD_TASKS_EMULATOR_HOST"] = self.urls["tasks"] = host
        return host

    def google_certs(self, key_file: Path) -> str:
        """Google's ID-token certificate endpoint for a local key (devtools/standins/google_tokens.py),
        e.g. the one `tasks(oidc_key=...)` signs with; sets GOOGLE_CERTS_URL (honoured with APP_ENV
        local or deploy-check) and returns it."""
        port = free_port()
        svc = self.spawn("google-certs", [sys.executable, "-m", "devtools.standins.google_tokens", "certs",
                                          str(port), str(key_file)], cwd=ROOT)
        url = f"http://127.0.0.1:{port}/oauth2/v3/certs"
        wait_http(url, 30, "Google certificate stand-in", svc.proc)
        self.env["GOOGLE_CERTS_URL"] = url
        return url

    def providers(self) -> str:
        """The OpenRouter + OpenAI stand-in (devtools/standins/providers.py: costs, activity and
        embeddings); started once per Stack; returns its URL."""
        if "providers" in self.urls:
            return self.urls["providers"]
        port = free_port()
        keys = {"OPENROUTER_MANAGEMENT_KEY": "sk-or-v1-mgmt-local", "OPENAI_ADMIN_KEY": "sk-admin-local"}
        svc = self.spawn("providers", [sys.executable, "-m", "devtools.standins.providers", str(port),
                                       keys["OPENROUTER_MANAGEMENT_KEY"], keys["OPENAI_ADMIN_KEY"]], cwd=ROOT)
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/_control/stats", 30, "provider stand-in", svc.proc)
        self.env.update(keys, OPENROUTER_BASE_URL=f"{url}/openrouter/api/v1", OPENAI_BASE_URL=f"{url}/openai/v1")
        self.urls["providers"] = url
        return url

    def stripe(self) -> str:
        """localstripe plus the front that adds Prices, Checkout, Portal and idempotency keys
        (devtools/standins/stripe_front.py); the app and tests reach both through the front."""
        ls_port, port = free_port(), free_port()
        svc = self.spawn("localstripe", [sys.executable, "-m", "devtools.standins.localstripe", str(ls_port)], cwd=ROOT)
        wait_port(ls_port, 30, "localstripe", svc.proc)
        svc = self.spawn("stripe-front", [sys.executable, "-m", "devtools.standins.stripe_front", str(port),
                                          f"http://127.0.0.1:{ls_port}"], cwd=ROOT)
        wait_port(port, 30, "Stripe front", svc.proc)
        url = f"http://127.0.0.1:{port}"
        self.env.update({"STRIPE_API_BASE": url, "LOCALSTRIPE_URL": f"http://127.0.0.1:{ls_port}",
                         "STRIPE_SECRET_KEY": "sk_test_local", "STRIPE_WEBHOOK_SECRET": "whsec_local_stand_in"})
        return url

    def storage(self, bucket: str = "demo-openclaw-media") -> str:
        """The Cloud Storage stand-in (in memory, one bucket) and a local signing key."""
        from devtools.standins.google_tokens import write_key

        port = free_port()
        svc = self.spawn("storage", [sys.executable, "-m", "devtools.standins.storage_emulator",
                                     str(port), bucket], cwd=ROOT)
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/", 30, "Cloud Storage stand-in", svc.proc)
        self.env["STORAGE_EMULATOR_HOST"] = url
        self.env["MEDIA_BUCKET"] = bucket
        self.env["MEDIA_SIGNING_KEY_FILE"] = str(write_key(self.logdir / "signing-key.json", PROJECT_ID))
        return url

    def embeddings(self) -> str:
        """OpenAI's embeddings API (deterministic vectors), served by the provider stand-in at
        the same OPENAI_BASE_URL as the costs endpoint; returns that base URL."""
        self.providers()
        self.env["OPENAI_API_KEY"] = "sk-local"
        return self.env["OPENAI_BASE_URL"]

    def compute(self, op_latency: float = 0.05, guest_events: bool = False) -> str:
        """Local Compute Engine (devtools/standins/compute.py). With guest_events (needs pubsub()
        first), booted VMs publish the startup script's progress like a real guest."""
        port = free_port()
        cmd = [sys.executable, "-m", "devtools.standins.compute", str(port), "--op-latency", str(op_latency),
               "--token-key", self.token_key]
        if guest_events:
            cmd += ["--pubsub-host", self.env["PUBSUB_EMULATOR_HOST"]]
        if "SECRET_MANAGER_API_ENDPOINT" in self.env:  # the guest reads its secrets as its own identity
            cmd += ["--secrets-host", self.env["SECRET_MANAGER_API_ENDPOINT"].removeprefix("http://")]
        if "IAM_API_ENDPOINT" in self.env:  # customer projects: what their owners granted (iam.py /_projects)
            cmd += ["--iam-host", self.env["IAM_API_ENDPOINT"].removeprefix("http://")]
        svc = self.spawn("compute", cmd, cwd=ROOT)
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/_calls", 30, "Compute stand-in", svc.proc)
        self.env["COMPUTE_API_ENDPOINT"] = url
        return url

    def secrets(self) -> str:
        """Local Secret Manager (devtools/standins/secrets.py); start it before compute() so the
        simulated guests read their secrets from it as their own service accounts. Started once."""
        if "SECRET_MANAGER_API_ENDPOINT" in self.env:
            return self.env["SECRET_MANAGER_API_ENDPOINT"]
        port = free_port()
        svc = self.spawn("secrets", [sys.executable, "-m", "devtools.standins.secrets", str(port),
                                     "--token-key", self.token_key], cwd=ROOT)
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/_calls", 30, "Secret Manager stand-in", svc.proc)
        self.env["SECRET_MANAGER_API_ENDPOINT"] = url
        return url

    def iam(self, quota: int = 100) -> str:
        """Local IAM admin API (devtools/standins/iam.py): service accounts of the bots. Started once."""
        if "IAM_API_ENDPOINT" in self.env:
            return self.env["IAM_API_ENDPOINT"]
        port = free_port()
        svc = self.spawn("iam", [sys.executable, "-m", "devtools.standins.iam", str(port), "--quota", str(quota)],
                         cwd=ROOT)
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/_calls", 30, "IAM stand-in", svc.proc)
        self.env["IAM_API_ENDPOINT"] = url
        return url

    @property
    def token_key(self) -> str:
        """Shared by the Compute (metadata server) and Secret Manager stand-ins: access tokens."""
        if not getattr(self, "_token_key", None):
            import secrets as _secrets

            self._token_key = _secrets.token_hex(16)
        return self._token_key

    def apply_env(self) -> None:
        os.environ.update(self.env)

    def stop(self) -> None:
        for svc in reversed(self.services):
            svc.stop()
        self.services.clear()

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
