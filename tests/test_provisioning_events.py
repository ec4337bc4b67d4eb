"""provisioningEvents: the VM's progress over the real Pub/Sub emulator (push subscription to the
function), appended to the job log; ready/failed move the deployment; junk is acknowledged.
Reports count only when signed with the deployment's report key, fresh and newer than the last."""
from __future__ import annotations

import base64
import itertools
import json
import time

import pytest
from deploy_support import TOPIC
from test_deployments_api import create

_seq = itertools.count(1)


def report_key(deployment_id: str) -> str:
    """The deployment's report key, as its VM reads it (here: as the runtime)."""
    from shared.deploy import events, secrets

    return secrets.access(deployment_id, events.REPORT_KEY)


def signed(payload: dict, key: str | None = None) -> tuple[bytes, str]:
    from shared.deploy import events

    payload = {"time": int(time.time() * 1000) + next(_seq), **payload}  # strictly increasing, like the VM
    raw = json.dumps(payload).encode()
    return raw, events.sign(key or report_key(payload["deploymentId"]), raw)


def envelope(raw: bytes, message_id: str, signature: str | None = None) -> dict:
    message = {"data": base64.b64encode(raw).decode(), "messageId": message_id}
    if signature is not None:
        message["attributes"] = {"signature": signature}
    return {"message": message, "subscription": "projects/p/subscriptions/s"}


def publish(data, sign: bool = True, key: str | None = None) -> str:
    from google.cloud import pubsub_v1

    from devtools.stack import PROJECT_ID

    publisher = pubsub_v1.PublisherClient()
    attrs = {}
    if isinstance(data, bytes):
        raw = data
    elif sign:
        raw, attrs["signature"] = signed(data, key)
    else:
        raw = json.dumps({"time": int(time.time() * 1000), **data}).encode()
    return publisher.publish(publisher.topic_path(PROJECT_ID, TOPIC), raw, **attrs).result(timeout=10)


def test_failed_then_ready_events_move_status_and_land_in_log(api, callers, denv):
    from shared import repos

    dep, job = create(api, callers["owner"])
    denv.wait_job(job["_id"])
    denv.wait_for(lambda: repos.deployments.get(dep["_id"]).status == "running", what="ready from the guest")
    publish({"deploymentId": dep["_id"], "stage": "failed",
             "message": "openclaw.service did not start: token=abcdef1234567890 sk-ant-api03-AAAAAAAAAAAAAAAAAAAAAAAA"})
    denv.wait_for(lambda: repos.deployments.get(dep["_id"]).status == "error", what="error status")
    log = repos.deploy_jobs.get(job["_id"]).log
    assert "vm: failed: openclaw.service did not start" in log
    assert "abcdef1234567890" not in log and "AAAAAAAAAAAAAAAAAAAAAAAA" not in log  # secrets masked
    publish({"deploymentId": dep["_id"], "stage": "ready", "message": "bot is up again"})
    denv.wait_for(lambda: repos.deployments.get(dep["_id"]).status == "running", what="running again")


def test_late_ready_after_stop_does_not_flip_status(api, callers, denv):
    from shared import repos

    dep, job = create(api, callers["owner"])
    denv.wait_job(job["_id"])
    denv.wait_for(lambda: repos.deployments.get(dep["_id"]).status == "running", what="running")
    r = api("POST", f"/deployments/{dep['_id']}/actions", callers["owner"], json={"action": "stop"})
    stop = denv.wait_job(r.json["job"]["_id"])
    publish({"deploymentId": dep["_id"], "stage": "ready", "message": "late"})
    denv.wait_for(lambda: "vm: ready: late" in repos.deploy_jobs.get(stop.id).log, what="logged on the newest job")
    assert repos.deployments.get(dep["_id"]).status == "stopped"


def test_duplicate_delivery_is_applied_once(api, callers, denv):
    from shared import repos
    from shared.deploy import events

    dep, job = create(api, callers["owner"])
    denv.wait_job(job["_id"])
    denv.wait_for(lambda: repos.deployments.get(dep["_id"]).status == "running", what="the guest's reports done")
    raw, sig = signed({"deploymentId": dep["_id"], "stage": "configuring", "message": "once"})
    env = envelope(raw, "m-dup-1", sig)
    assert events.handle(env) == "logged"
    assert events.handle(env) == "duplicate"
    assert repos.deploy_jobs.get(job["_id"]).log.count("vm: configuring: once") == 1
    from datetime import datetime

    from shared import db

    entry = db.client().collection(events.LEDGER).document("m-dup-1").get().to_dict()
    assert isinstance(entry["expireAt"], datetime)  # Firestore's TTL deletes only timestamp values


def test_reports_find_the_newest_job_by_the_lock_and_old_locks_by_query(api, callers, denv, monkeypatch):
    """A report reaches the deployment's newest job through its lock's lastJobId (documents only, no
    query lock in the transaction); a lock written before lastJobId existed still finds it by query."""
    from google.cloud import firestore

    from shared import repos
    from shared.deploy import events, jobs

    dep, job = create(api, callers["owner"])
    denv.wait_job(job["_id"])
    denv.wait_for(lambda: repos.deployments.get(dep["_id"]).status == "running", what="the guest's reports done")
    lock = jobs.lock_ref(dep["_id"])
    assert lock.get().to_dict()["lastJobId"] == job["_id"] and lock.get().to_dict()["jobId"] is None  # freed
    with monkeypatch.context() as m:
        m.setattr(repos.deploy_jobs, "first", lambda *a, **k: pytest.fail("a query in the report's transaction"))
        raw, sig = signed({"deploymentId": dep["_id"], "stage": "configuring", "message": "by the lock"})
        assert events.handle(envelope(raw, "m-lock-1", sig)) == "logged"
    assert "vm: configuring: by the lock" in repos.deploy_jobs.get(job["_id"]).log
    lock.update({"lastJobId": firestore.DELETE_FIELD})
    raw, sig = signed({"deploymentId": dep["_id"], "stage": "configuring", "message": "old lock"})
    assert events.handle(envelope(raw, "m-old-lock-1", sig)) == "logged"
    assert "vm: configuring: old lock" in repos.deploy_jobs.get(job["_id"]).log


def test_malformed_and_unknown_messages_are_acknowledged(api, callers, denv):
    from shared.deploy import events

    def env(raw: bytes, mid="m1"):
        return envelope(raw, mid)
    assert events.handle({}) == "malformed"
    assert events.handle({"message": {"data": "!!notbase64", "messageId": "x"}}) == "malformed"
    assert events.handle(env(b"not json")) == "malformed"
    assert events.handle(env(json.dumps({"deploymentId": "d1", "stage": "exploded", "time": 1}).encode())) \
        == "malformed"
    # a deployment nobody knows has no report key: nothing can be signed for it
    raw, sig = signed({"deploymentId": "nope", "stage": "ready"}, key="00" * 32)
    assert events.handle(envelope(raw, "m2", sig)) == "rejected"
    # through the real push subscription too: the function answers 2xx, so Pub/Sub does not redeliver
    publish(b"\x00garbage")
    r = api("POST", "/provisioningEvents", json={"message": {"data": "e30=", "messageId": "m3"},
                                                 "subscription": "projects/demo-openclaw/subscriptions/x"})
    assert r.status_code in (200, 204)


def test_job_log_stays_bounded(api, callers, denv):
    from deploy_support import reset_settings

    from shared import repos
    from shared.deploy import events

    dep, job = create(api, callers["owner"])
    denv.wait_job(job["_id"])
    denv.wait_for(lambda: repos.deployments.get(dep["_id"]).status == "running", what="the guest's reports done")
    reset_settings(DEPLOY_LOG_MAX_CHARS="1000")
    for i in range(40):
        raw, sig = signed({"deploymentId": dep["_id"], "stage": "configuring", "message": f"step {i} " + "." * 40})
        events.handle(envelope(raw, f"bounded-{i}", sig))
    log = repos.deploy_jobs.get(job["_id"]).log
    assert len(log) <= 1000 and log.startswith("[... earlier lines trimmed ...]\n")
    assert "step 39" in log and "step 0 " not in log
    assert all(line[:4].isdigit() for line in log.splitlines()[1:])  # whole lines only


def test_unsigned_forged_stale_and_replayed_reports_change_nothing(api, callers, denv):
    """Only the deployment's own VM (the holder of its report key) moves it; anything else is
    dropped, logged and changes nothing, not even the ledger."""
    from shared import db, repos
    from shared.deploy import events

    dep, job = create(api, callers["owner"])
    denv.wait_job(job["_id"])
    denv.wait_for(lambda: repos.deployments.get(dep["_id"]).status == "running", what="ready from the guest")
    log_before = repos.deploy_jobs.get(job["_id"]).log
    phish = {"deploymentId": dep["_id"], "stage": "failed", "message": "your bot is hacked, log in at evil.example"}
    raw = json.dumps({**phish, "time": int(time.time() * 1000) + 10_000}).encode()
    assert events.handle(envelope(raw, "forge-1")) == "rejected"  # unsigned
    assert events.handle(envelope(raw, "forge-2", "ab" * 32)) == "rejected"  # made-up signature
    raw2, sig2 = signed(phish, key="11" * 32)  # signed with some other key
    assert events.handle(envelope(raw2, "forge-3", sig2)) == "rejected"
    good_raw, good_sig = signed(phish)  # the right key, but the data altered after signing
    assert events.handle(envelope(good_raw.replace(b"hacked", b"HACKED"), "forge-4", good_sig)) == "rejected"
    stale_raw, stale_sig = signed({**phish, "time": int(time.time() * 1000) - 11 * 60_000})
    assert events.handle(envelope(stale_raw, "forge-5", stale_sig)) == "rejected"  # outside the window
    assert repos.deployments.get(dep["_id"]).status == "running"
    assert repos.deploy_jobs.get(job["_id"]).log == log_before
    for mid in ("forge-1", "forge-2", "forge-3", "forge-4", "forge-5"):
        assert not db.client().collection(events.LEDGER).document(mid).get().exists

    # a genuine report, then the same bytes again under a new message id (a replay): once only
    raw, sig = signed({"deploymentId": dep["_id"], "stage": "configuring", "message": "genuine"})
    assert events.handle(envelope(raw, "real-1", sig)) == "logged"
    assert events.handle(envelope(raw, "replay-1", sig)) == "replay"
    older_raw, older_sig = signed({"deploymentId": dep["_id"], "stage": "failed",
                                   "time": json.loads(raw)["time"] - 1})  # older than one accepted
    assert events.handle(envelope(older_raw, "replay-2", older_sig)) == "replay"
    assert repos.deployments.get(dep["_id"]).status == "running"
    assert repos.deploy_jobs.get(job["_id"]).log.count("vm: configuring: genuine") == 1


def test_another_deployments_vm_cannot_report_for_it(api, callers, denv):
    """VM B, with everything its own identity can read, cannot sign a report A's function accepts."""
    from shared import repos
    from shared.deploy import events

    a, job_a = create(api, callers["owner"])
    b, job_b = create(api, callers["owner"])
    denv.wait_job(job_a["_id"]), denv.wait_job(job_b["_id"])
    denv.wait_for(lambda: repos.deployments.get(a["_id"]).status == "running", what="A ready")
    log_a = repos.deploy_jobs.get(job_a["_id"]).log
    key_b = denv.read_as_vm(b, f"oc-{b['_id']}-{events.REPORT_KEY}")  # B's own key: B may read it
    assert key_b and key_b != report_key(a["_id"])
    assert denv.read_as_vm(b, f"oc-{a['_id']}-{events.REPORT_KEY}") == 403  # A's key: refused
    for n, payload in enumerate(({"deploymentId": a["_id"], "stage": "failed", "message": "phishing"},
                                 {"deploymentId": a["_id"], "stage": "ready", "message": "fake"})):
        raw, sig = signed(payload, key=key_b)
        assert events.handle(envelope(raw, f"cross-{n}", sig)) == "rejected"
    publish({"deploymentId": a["_id"], "stage": "failed", "message": "phishing over the topic"}, key=key_b)
    time.sleep(1)  # the push subscription delivers it to the function, which drops it
    assert repos.deployments.get(a["_id"]).status == "running"
    assert repos.deploy_jobs.get(job_a["_id"]).log == log_a


def test_the_startup_scripts_reports_are_accepted_and_a_tampered_one_is_not(api, callers, denv, tmp_path):
    """The real startup script's `report` (bash, openssl) run with the metadata server and gcloud
    stubbed: what it would publish is accepted by provisioningEvents; the same with another key is not."""
    import subprocess

    from shared import repos
    from shared.deploy import events, startup

    dep, job = create(api, callers["owner"])
    denv.wait_job(job["_id"])
    denv.wait_for(lambda: repos.deployments.get(dep["_id"]).status == "running", what="the guest's reports done")
    preamble = startup.STARTUP_SCRIPT.split("\ntrap ")[0]  # settings, the key, report()

    def run_report(key: str) -> tuple[bytes, str]:
        out = tmp_path / "published"
        stubs = f"""
curl() {{ case "$*" in
  *openclaw-events-topic) echo projects/p/topics/provisioning-events;;
  *openclaw-deployment-id) echo '{dep["_id"]}';;
  *openclaw-secrets-project) echo demo-openclaw;;
  *openclaw-report-key) echo 'oc-{dep["_id"]}-openclaw-report-key';;
esac; }}
gcloud() {{ if [ "$1" = secrets ]; then printf '%s' '{key}'; else printf '%s\\n' "$@" > '{out}'; fi; }}
"""
        script = preamble.replace("set -euo pipefail", "set -euo pipefail\n" + stubs, 1)
        subprocess.run(["bash", "-c", script + '\nreport failed "disk full"\n'], check=True, timeout=20)
        args = out.read_text().splitlines()
        message = next(a for a in args if a.startswith("--message=")).removeprefix("--message=")
        signature = next(a for a in args if a.startswith("--attribute=")).removeprefix("--attribute=signature=")
        return message.encode(), signature

    raw, sig = run_report("ee" * 32)  # a key that is not this deployment's
    assert events.handle(envelope(raw, "script-forged", sig)) == "rejected"
    raw, sig = run_report(report_key(dep["_id"]))
    assert events.handle(envelope(raw, "script-1", sig)) == "deployment error"
    assert "vm: failed: disk full" in repos.deploy_jobs.get(job["_id"]).log
