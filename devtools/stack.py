"""Local stack: starts the emulators the project uses on free 127.0.0.1 ports.

Used by `make dev` (devtools/dev.py) and by the test suite (tests/conftest.py).
Each service is started in its own process group, so stopping it by its PID
also stops the java/node child that a gcloud/npx wrapper spawns. Nothing here
is deployed.
"""
from __future__ import annotations

import json
import os
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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

    def spawn(self, name: str, cmd: list[str], cwd: Path | None = None) -> Service:
        log = self.logdir / f"{name}.log"
        fh = open(log, "wb")
        proc = subprocess.Popen(
            cmd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=cwd, start_new_session=True,
        )
        svc = Service(name, proc, log)
        self.services.append(svc)
        return svc

    def firestore(self) -> str:
        port = free_port()
        svc = self.spawn("firestore", [
            "gcloud", "emulators", "firestore", "start", f"--host-port=127.0.0.1:{port}",
            f"--rules={ROOT / 'firestore.rules'}", "--quiet",
        ])
        host = f"127.0.0.1:{port}"
        wait_http(f"http://{host}/", 60, "Firestore emulator", svc.proc)
        self.env["FIRESTORE_EMULATOR_HOST"] = host
        return host

    def pubsub(self) -> str:
        port = free_port()
        svc = self.spawn("pubsub", [
            "gcloud", "beta", "emulators", "pubsub", "start", f"--host-port=127.0.0.1:{port}",
            f"--project={PROJECT_ID}", "--quiet",
        ])
        host = f"127.0.0.1:{port}"
        wait_http(f"http://{host}/", 60, "Pub/Sub emulator", svc.proc)
        self.env["PUBSUB_EMULATOR_HOST"] = host
        return host

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

    def tasks(self, queues: list[str], max_retries: int = 5) -> str:
        """The Cloud Tasks stand-in; `queues` are short names created in PROJECT_ID/us-central1."""
        port = free_port()
        paths = [f"projects/{PROJECT_ID}/locations/us-central1/queues/{q}" for q in queues]
        svc = self.spawn("tasks", [sys.executable, "-m", "devtools.standins.tasks_emulator",
                                   str(port), str(max_retries), *paths], cwd=ROOT)
        host = f"127.0.0.1:{port}"
        wait_port(port, 30, "Cloud Tasks stand-in", svc.proc)
        self.env["CLOUD_TASKS_EMULATOR_HOST"] = host
        return host

    def compute(self, op_latency: float = 0.05, guest_events: bool = False) -> str:
        """Local Compute Engine (devtools/standins/compute.py). With guest_events (needs pubsub()
        first), booted VMs publish the startup script's progress like a real guest."""
        port = free_port()
        cmd = [sys.executable, "-m", "devtools.standins.compute", str(port), "--op-latency", str(op_latency)]
        if guest_events:
            cmd += ["--pubsub-host", self.env["PUBSUB_EMULATOR_HOST"]]
        svc = self.spawn("compute", cmd, cwd=ROOT)
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/_calls", 30, "Compute stand-in", svc.proc)
        self.env["COMPUTE_API_ENDPOINT"] = url
        return url

    def secrets(self) -> str:
        """Local Secret Manager (devtools/standins/secrets.py)."""
        port = free_port()
        svc = self.spawn("secrets", [sys.executable, "-m", "devtools.standins.secrets", str(port)], cwd=ROOT)
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/_calls", 30, "Secret Manager stand-in", svc.proc)
        self.env["SECRET_MANAGER_API_ENDPOINT"] = url
        return url

    def apply_env(self) -> None:
        os.environ.update(self.env)

    def stop(self) -> None:
        for svc in reversed(self.services):
            svc.stop()
        self.services.clear()

    def __enter__(self) -> "Stack":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
