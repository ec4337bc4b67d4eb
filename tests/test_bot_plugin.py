"""The bot plugin (bot/): its tool handlers run by Node's test runner against the local stack with a
real bot credential, and the artifact `make deploy` publishes (npm pack) loads and registers them."""
from __future__ import annotations

import json
import os
import subprocess
import tarfile

import pytest
from knowledge_support import make_deployment

from deploy import run as deploy_run
from shared.deploy import startup

ROOT = deploy_run.ROOT


def node(*args: str, env: dict | None = None, cwd=ROOT, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(["node", *args], cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True,
                          text=True, timeout=timeout)


def test_tools_against_the_local_stack(kb, callers, live_url, tmp_path):
    """knowledge add + search, media from base64 and from a URL, list, cost summary, no token in logs."""
    owner = callers["owner"]
    assert kb("GET", "/users/me", owner).status_code == 200
    dep = make_deployment(owner.user_id)
    r = kb("POST", f"/knowledge/bot-credentials/{dep}", owner)
    assert r.status_code == 201, r.json
    token = r.json["token"]
    # what the VM holds: the token the refresh timer writes, the config.json the startup script writes
    (tmp_path / "token").write_text(token)
    (tmp_path / "config.json").write_text(json.dumps({"backend": startup.backend_urls(live_url)}))
    done = node("--test", "bot/test/backend.test.js", env={
        "HOSTING_CONFIG_FILE": str(tmp_path / "config.json"), "HOSTING_TOKEN_FILE": str(tmp_path / "token"),
        "HOSTING_OWNER_ID": owner.user_id})
    report = done.stdout + done.stderr
    assert done.returncode == 0, report
    assert "# pass 5" in report and "# skipped 0" in report, report
    assert token not in report


def test_retries_and_token_hygiene():
    """The client alone against a local server: 429/503 with Retry-After, bounded attempts and time."""
    done = node("--test", "bot/test/client.test.js")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "# fail 0" in done.stdout


def test_the_published_artifact_loads_and_registers_the_tools(tmp_path):
    """What `make deploy` uploads: `npm pack` of bot/ (deterministic, so its checksum can be pinned in
    the manifest run), holding only the plugin, whose entry registers the manifest's tools."""
    tgz, sha = deploy_run.pack_bot_plugin(tmp_path / "a")
    again, sha_again = deploy_run.pack_bot_plugin(tmp_path / "b")
    assert sha == sha_again and len(sha) == 64
    with tarfile.open(tgz) as tar:
        names = sorted(tar.getnames())
        assert names == ["package/index.js", "package/lib/client.js", "package/lib/tools.js",
                         "package/openclaw.plugin.json", "package/package.json"]
        tar.extractall(tmp_path / "x", filter="data")
    plugin = tmp_path / "x" / "package"
    manifest = json.loads((plugin / "openclaw.plugin.json").read_text())
    done = node("--input-type=module", "-e", f"""
const m = await import({json.dumps(str(plugin / "index.js"))});
const names = [];
m.default.register({{ pluginConfig: {{}}, logger: console, registerTool: (t) => names.push(t.name) }});
console.log(JSON.stringify({{ id: m.default.id, names }}));""")
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout)
    assert loaded == {"id": manifest["id"], "names": manifest["contracts"]["tools"]}


@pytest.fixture
def script_env(tmp_path):
    """The startup script's functions with the metadata server, gcloud and OpenClaw's CLI stubbed."""
    state, etc = tmp_path / "state", tmp_path / "etc"
    state.mkdir()
    etc.mkdir()
    calls = tmp_path / "calls"
    preamble = startup.STARTUP_SCRIPT.split("\ntrap ")[0].replace("STATE=/var/lib/openclaw", f"STATE={state}")
    stubs = f"""
curl() {{ case "$*" in *openclaw-events-topic) echo projects/p/topics/provisioning-events;; *) echo dep1;; esac; }}
gcloud() {{ case "$1 $2" in
  "secrets versions") printf '%s' {"ee" * 32};;
  "storage cp") echo "gcloud $*" >> '{calls}'; cp "$3" "$4";;
  *) echo "gcloud $*" >> '{calls}';;
esac; }}
runuser() {{ shift 3; echo "$*" >> '{calls}'; }}
chown() {{ :; }}
"""
    script = preamble.replace("set -euo pipefail", "set -euo pipefail\n" + stubs, 1)

    def run(call: str, moved: bool = True) -> subprocess.CompletedProcess:  # moved: /etc/openclaw/ under tmp_path
        text = script.replace("/etc/openclaw/", f"{etc}/") if moved else script
        return subprocess.run(["bash", "-c", f"{text}\n{call}\n"], capture_output=True, text=True, timeout=30)

    def install(artifact, sha: str) -> subprocess.CompletedProcess:
        return run(f'install_plugin "{artifact}" "{sha}"', moved=False)
    install.run, install.etc = run, etc
    return install, calls, state


def test_startup_script_installs_the_verified_plugin_once(script_env, tmp_path):
    install, calls, state = script_env
    tgz, sha = deploy_run.pack_bot_plugin(tmp_path / "pack")
    done = install(tgz, sha)
    assert done.returncode == 0, done.stderr
    lines = calls.read_text().splitlines()
    oc = [line for line in lines if not line.startswith("gcloud ")]
    assert oc == [
        f"env HOME={state} openclaw config set plugins.entries.openclaw-hosting.config "
        '{"configFile":"/etc/openclaw/config.json","tokenFile":"/etc/openclaw/secrets/openclaw-bot-token"}'
        ' --strict-json',
        f"env HOME={state} openclaw plugins install npm-pack:{state}/openclaw-hosting-bot.tgz "
        "--force --accept-capabilities",
        f"env HOME={state} openclaw plugins enable openclaw-hosting --accept-capabilities"]
    assert (state / ".bot-plugin.sha256").read_text() == sha
    calls.write_text("")
    assert install(tgz, sha).returncode == 0  # the next boot: already in, nothing downloaded
    assert calls.read_text() == ""


def test_startup_script_refuses_a_checksum_mismatch_and_reports_it(script_env, tmp_path):
    install, calls, state = script_env
    tgz, sha = deploy_run.pack_bot_plugin(tmp_path / "pack")
    other = "0" * 64
    done = install(tgz, other)
    assert done.returncode == 1
    lines = calls.read_text().splitlines()
    published = [line for line in lines if line.startswith("gcloud pubsub topics publish")]
    assert len(published) == 1 and '"stage":"failed"' in published[0]
    assert f"bot plugin checksum mismatch: {tgz} has sha256 {sha}, expected {other}; not installed" in published[0]
    assert not any("openclaw" in line and "plugins install" in line for line in lines)
    assert not (state / ".bot-plugin.sha256").exists() and not list(state.glob("*.tgz*"))


def test_startup_script_installs_the_packages_a_configured_key_needs_once(script_env):
    """Discord (a channel) and Brave (web search) are OpenClaw's official packages outside its core: installed,
    pinned, when their key is configured, once; Telegram is in OpenClaw's core."""
    install, calls, state = script_env
    (install.etc / "config.json").write_text(json.dumps({"secrets": {
        k: "s" for k in ("telegram-bot-token", "discord-bot-token", "brave-search-api-key", "openclaw-bot-token")}}))
    done = install.run("install_channel_plugins")
    assert done.returncode == 0, done.stderr
    assert calls.read_text().splitlines() == [
        f"env HOME={state} openclaw plugins install npm:@openclaw/brave-plugin@2026.9.5 --force --accept-capabilities",
        f"env HOME={state} openclaw plugins install npm:@openclaw/discord@{startup.OPENCLAW_VERSION} "
        "--force --accept-capabilities"]
    calls.write_text("")
    assert install.run("install_channel_plugins").returncode == 0 and calls.read_text() == ""  # the next boot


class BucketIam:
    """Cloud Storage's bucket IAM endpoints (JSON API wire format, etag preconditions) on 127.0.0.1:
    the Storage emulator has none. `race` changes the policy behind the caller's back once."""

    def __init__(self):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.policy = {"bindings": [{"role": "roles/storage.admin",
                                     "members": ["serviceAccount:oc-functions@p.iam.gserviceaccount.com"]}]}
        self.version, self.race, self.puts = 1, False, 0
        iam = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def answer(self, status: int, body: dict):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def current(self):
                return {"kind": "storage#policy", "resourceId": "projects/_/buckets/p-artifacts", "version": 1,
                        "etag": f"CA{iam.version}=", **iam.policy}

            def do_GET(self):
                assert self.path.startswith("/storage/v1/b/p-artifacts/iam"), self.path
                self.answer(200, self.current())

            def do_PUT(self):
                assert self.path.startswith("/storage/v1/b/p-artifacts/iam"), self.path
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                iam.puts += 1
                if iam.race:  # someone else wrote first: the caller's etag is stale now
                    iam.race, iam.version = False, iam.version + 1
                if body.get("etag") != f"CA{iam.version}=":
                    return self.answer(412, {"error": {"code": 412, "message": "Precondition Failed",
                                                       "errors": [{"reason": "conditionNotMet"}]}})
                iam.version += 1
                iam.policy = {"bindings": body["bindings"]}
                self.answer(200, self.current())

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def readers(self) -> list[str]:
        return [m for b in self.policy["bindings"] if b["role"] == "roles/storage.objectViewer" for m in b["members"]]


def test_each_bots_account_may_read_the_plugin_bucket_until_deleted(monkeypatch):
    """deployWorker's grant/revoke on the artifacts bucket through the real storage client: read-modify-
    write with the etag (a lost race is retried), other bindings kept, idempotent."""
    from types import SimpleNamespace

    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    from shared.deploy import identity, settings

    iam = BucketIam()
    try:
        monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
        monkeypatch.setattr(settings, "get", lambda: SimpleNamespace(
            bot_plugin_url=f"gs://p-artifacts/bot-plugin/{'ab' * 32}.tgz", call_timeout_s=10))
        client = storage.Client(project="p", credentials=AnonymousCredentials(),
                                client_options={"api_endpoint": iam.url})
        monkeypatch.setattr(identity, "_storage", lambda: client)
        a, b = "ocb-a@p.iam.gserviceaccount.com", "ocb-b@p.iam.gserviceaccount.com"
        identity.grant_plugin_reader(a)
        iam.race = True
        identity.grant_plugin_reader(b)  # the first write loses to a concurrent one, the retry lands
        assert iam.readers() == [f"serviceAccount:{a}", f"serviceAccount:{b}"]
        puts = iam.puts
        identity.grant_plugin_reader(a)  # already there: nothing written
        assert iam.puts == puts
        identity.revoke_plugin_reader(a)
        assert iam.readers() == [f"serviceAccount:{b}"]
        assert {"role": "roles/storage.admin", "members": ["serviceAccount:oc-functions@p.iam.gserviceaccount.com"]} \
            in iam.policy["bindings"]
    finally:
        iam.server.shutdown()
