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
    """The startup script's install_plugin with the metadata server, gcloud and OpenClaw's CLI stubbed."""
    state = tmp_path / "state"
    state.mkdir()
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

    def install(artifact, sha: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", "-c", script + f'\ninstall_plugin "{artifact}" "{sha}"\n'],
                              capture_output=True, text=True, timeout=30)
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
        '{"configFile":"/etc/openclaw/config.json","tokenFile":"/etc/openclaw/secrets/openclaw-bot-token"} --strict-json',
        f"env HOME={state} openclaw plugins install npm-pack:{state}/openclaw-hosting-bot.tgz --force --accept-capabilities",
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
