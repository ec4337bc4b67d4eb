"""Bot health on the local stack: heartbeats over the signed reports channel (Pub/Sub emulator ->
provisioningEvents), the check (healthCheck), automatic restarts as deploy jobs with a crash-loop
guard, the owner's switch, the notifications and signed webhook deliveries that go with them."""
from __future__ import annotations

import json
import os

import pytest
from test_deployments_api import create
from test_provisioning_events import publish
from test_webhooks import register, verify_like_a_receiver

from shared import clock, repos
from shared.health import monitor
from shared.notifications.store import deliveries, notifications

HEALTH = {"HEALTH_HEARTBEAT_S": "1", "HEALTH_WRITE_EVERY_S": "0", "HEALTH_GRACE_S": "2",
          "HEALTH_RECOVERY_WAIT_S": "2", "HEALTH_MAX_RESTARTS_PER_HOUR": "2"}


@pytest.fixture
def henv(nenv, monkeypatch):
    from shared.health import settings

    for k, v in HEALTH.items():
        monkeypatch.setenv(k, v)
    settings.reset()
    monitor._seen.clear()
    yield nenv
    for k in HEALTH:
        monkeypatch.delenv(k)
    settings.reset()


def running_bot(api, owner, henv) -> dict:
    dep, job = create(api, owner)
    henv.wait_job(job["_id"])
    henv.wait_for(lambda: repos.deployments.get(dep["_id"]).status == "running",
                  what="ready from the guest")
    return dep


def beat(dep: dict, gateway: str = "ok", message: str = "") -> None:
    publish({"deploymentId": dep["_id"], "stage": "heartbeat", "gateway": gateway, "message": message})


def state(dep: dict):
    return monitor.health.get(dep["_id"])


def kinds(user_id: str) -> list[str]:
    return sorted(n.kind for n in notifications.all({"userId": user_id}, (("createdAt", "DESCENDING"),)))


def later(seconds: float) -> int:
    return clock.now_ms() + int(seconds * 1000)


def test_stopped_heartbeats_degrade_restart_and_give_up_with_notifications(henv, api, callers):
    owner = callers["owner"]
    made = register(api, owner, f"{henv.receiver.url}/hook", ["*"])
    dep = running_bot(api, owner, henv)
    beat(dep)
    henv.wait_for(lambda: (h := state(dep)) and h.lastHeartbeatAt and h.state == "ok", what="heartbeat recorded")
    health = api("GET", f"/deployments/{dep['_id']}/health", owner).get_json()
    assert health["state"] == "ok" and health["lastHeartbeatAt"] and health["autoRecovery"] is True
    assert health["uptime"]["last24h"] == 1.0
    assert api("GET", f"/deployments/{dep['_id']}/health", callers["other"]).status_code == 404

    # the heartbeats stop: the check (here the admin's call of healthCheck, after the deadline) degrades and restarts
    henv.wait_for(lambda: state(dep).healthDeadline <= clock.now_ms(), timeout=10, what="deadline passed")
    r = api("POST", "/healthCheck", callers["admin"])
    assert r.status_code == 200 and r.get_json()["deployments"] == {"restart": 1}, r.get_json()
    h = state(dep)
    assert h.state == "recovering" and len(h.restarts) == 1 and "no heartbeat since" in h.reason
    first = repos.deploy_jobs.get(h.lastRestartJobId)
    assert first.action == "reset" and "health-check" in first.log
    henv.wait_job(first.id)
    assert "bot.down" in kinds(owner.user_id)

    # a second restart does not help either; the third time it gives up (2 per hour)
    assert monitor.check(later(3)) == {"restart": 1}
    henv.wait_job(state(dep).lastRestartJobId)
    assert monitor.check(later(6)) == {"gave up": 1}
    h = state(dep)
    assert h.state == "gave_up" and h.healthDeadline is None and "gave up" in h.reason and len(h.restarts) == 2
    assert monitor.check(later(60)) == {}  # nothing expected any more: not read again
    assert kinds(owner.user_id) == ["bot.down", "bot.recovery_gave_up", "deploy.completed"]
    jobs = [j for j in repos.deploy_jobs.all({"deploymentId": dep["_id"]}) if j.action == "reset"]
    assert len(jobs) == 2

    # the owner fixes it by hand; heartbeats resume: recovered, with the outage in the uptime
    beat(dep)
    henv.wait_for(lambda: state(dep).state == "ok", what="recovered")
    health = api("GET", f"/deployments/{dep['_id']}/health", owner).get_json()
    assert health["reason"] is None and 0 < health["uptime"]["last24h"] < 1 and health["downSince"] is None
    assert kinds(owner.user_id) == ["bot.down", "bot.recovered", "bot.recovery_gave_up", "deploy.completed"]

    # every one of them reached the webhook, signed
    henv.wait_for(lambda: all(d.status == "delivered" for d in deliveries.all(
        {"userId": owner.user_id}, (("createdAt", "DESCENDING"),))) and len(henv.receiver.requests) == 4,
        what="four deliveries")
    got = sorted(verify_like_a_receiver(made["secret"], r["body"], r["headers"]["openclaw-signature"])["type"]
                 for r in henv.receiver.requests)
    assert got == ["bot.down", "bot.recovered", "bot.recovery_gave_up", "deploy.completed"]


def test_recovery_off_degrades_without_restarting_until_turned_back_on(henv, api, callers):
    owner = callers["owner"]
    dep = running_bot(api, owner, henv)
    r = api("PATCH", f"/deployments/{dep['_id']}/health", owner, json={"autoRecovery": False})
    assert r.status_code == 200 and r.get_json()["autoRecovery"] is False
    assert api("PATCH", f"/deployments/{dep['_id']}/health", callers["other"],
               json={"autoRecovery": True}).status_code == 404
    beat(dep, gateway="down", message="gateway: connect ECONNREFUSED 127.0.0.1:18789")
    henv.wait_for(lambda: (h := state(dep)) and h.gateway == "down", what="gateway down recorded")
    assert monitor.check(later(0.1)) == {"degraded (recovery off)": 1}
    h = state(dep)
    assert h.state == "degraded" and h.healthDeadline is None and "gateway reported down" in h.reason
    assert not [j for j in repos.deploy_jobs.all({"deploymentId": dep["_id"]}) if j.action == "reset"]
    (down,) = [n for n in notifications.all({"userId": owner.user_id}, (("createdAt", "DESCENDING"),))
               if n.kind == "bot.down"]
    assert "automatic recovery is off" in down.body
    r = api("PATCH", f"/deployments/{dep['_id']}/health", owner, json={"autoRecovery": True})
    assert r.get_json()["state"] == "degraded"
    assert monitor.check(later(0.1)) == {"restart": 1}


def test_heartbeats_are_throttled_and_replays_ignored(henv, api, callers, monkeypatch):
    from devtools.firestore_meter import metered
    from shared.health import settings

    owner = callers["owner"]
    dep = running_bot(api, owner, henv)
    monkeypatch.setenv("HEALTH_WRITE_EVERY_S", "3600")
    settings.reset()
    seq = clock.now_ms()
    assert monitor.heartbeat(dep["_id"], seq, "ok", "") == "heartbeat"
    with metered() as m:
        outcomes = [monitor.heartbeat(dep["_id"], seq + i, "ok", "") for i in range(1, 50)]
    assert set(outcomes) == {"heartbeat (not written: written recently)"} and (m.reads, m.writes) == (0, 0)
    assert monitor.heartbeat(dep["_id"], seq + 10, "ok", "") == "replay"
    monitor._seen.clear()  # another instance: Firestore remembers the sequence
    assert monitor.heartbeat(dep["_id"], seq, "ok", "") == "replay"
    assert monitor.heartbeat(dep["_id"], seq + 100, "down", "hung") == "gateway down"  # a change is written at once


def test_a_stopped_deployment_is_not_restarted(henv, api, callers):
    owner = callers["owner"]
    dep = running_bot(api, owner, henv)
    job = api("POST", f"/deployments/{dep['_id']}/actions", owner, json={"action": "stop"}).get_json()["job"]
    henv.wait_job(job["_id"])
    assert monitor.check(later(60)) == {"paused": 1}
    assert state(dep).state == "paused" and state(dep).healthDeadline is None
    assert monitor.check(later(120)) == {}


@pytest.mark.parametrize("gateway_ok", [True, False])
def test_the_vms_heartbeat_script_is_accepted(henv, api, callers, tmp_path, gateway_ok):
    """The real heartbeat script (bash, openssl) with systemctl, runuser and gcloud stubbed: what it would
    publish is accepted by provisioningEvents as its deployment's heartbeat; with another key it is not."""
    import subprocess

    from test_provisioning_events import envelope, report_key

    from shared.deploy import events, startup

    owner = callers["owner"]
    dep = running_bot(api, owner, henv)
    # the startup script's own lines that write the heartbeat script (its header takes gateway_token from it)
    lines = startup.STARTUP_SCRIPT.split("\n")
    writer = "\n".join([next(line for line in lines if line.startswith("gateway_token()")),
                        f"TOPIC=projects/p/topics/provisioning-events DEPLOYMENT='{dep['_id']}'",
                        "cat > /usr/local/sbin/openclaw-heartbeat <<SH" + startup.STARTUP_SCRIPT.split(
                            "cat > /usr/local/sbin/openclaw-heartbeat <<SH", 1)[1].split("chmod 0700", 1)[0]])
    for path, name in (("/usr/local/sbin/openclaw-heartbeat", "heartbeat"), ("/etc/openclaw/gateway.env", "gw.env"),
                       ("/etc/openclaw/report-key", "key"), ("/run/openclaw-heartbeat.seq", "seq")):
        writer = writer.replace(path, str(tmp_path / name))
    subprocess.run(["bash", "-c", writer], check=True, timeout=20)
    (tmp_path / "gw.env").write_text("OPENCLAW_GATEWAY_PORT=18789\nOPENCLAW_GATEWAY_TOKEN=gw-token-1\n")

    def run(key: str, n: int) -> tuple[bytes, str]:
        (tmp_path / "key").write_text(key)
        out = tmp_path / f"published{n}"
        health = "echo '{\"ok\":true}'" if gateway_ok else "echo 'gateway closed (1006)' >&2; return 1"
        (tmp_path / "stubs").write_text(  # BASH_ENV: read by bash before the script
            "systemctl() { echo active; }\ntimeout() { shift; \"$@\"; }\n"
            # health connects with the gateway's token from gateway.env, like any client
            f"runuser() {{ [ \"$OPENCLAW_GATEWAY_TOKEN\" = gw-token-1 ] || return 9; {health}; }}\n"
            f"gcloud() {{ printf '%s\\n' \"$@\" > '{out}'; }}\n")
        subprocess.run(["bash", str(tmp_path / "heartbeat")], check=True, timeout=20,
                       env={**os.environ, "BASH_ENV": str(tmp_path / "stubs")})
        args = out.read_text().splitlines()
        message = next(a for a in args if a.startswith("--message=")).removeprefix("--message=")
        signature = next(a for a in args if a.startswith("--attribute=")).removeprefix("--attribute=signature=")
        return message.encode(), signature

    raw, sig = run("ee" * 32, 1)
    assert events.handle(envelope(raw, "hb-forged", sig)) == "rejected"
    raw, sig = run(report_key(dep["_id"]), 2)
    assert json.loads(raw)["stage"] == "heartbeat"
    assert events.handle(envelope(raw, "hb-1", sig)) == ("heartbeat" if gateway_ok else "gateway down")
    h = state(dep)
    assert h.gateway == ("ok" if gateway_ok else "down")
    if not gateway_ok:
        assert "gateway closed" in h.detail
    assert events.handle(envelope(raw, "hb-2", sig)) == "replay"  # the same heartbeat again
