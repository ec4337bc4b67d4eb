"""provisioningEvents: the VM's progress over the real Pub/Sub emulator (push subscription to the
function), appended to the job log; ready/failed move the deployment; junk is acknowledged."""
from __future__ import annotations

import base64
import json

from deploy_support import TOPIC
from test_deployments_api import create


def publish(data) -> str:
    from google.cloud import pubsub_v1

    from devtools.stack import PROJECT_ID

    publisher = pubsub_v1.PublisherClient()
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return publisher.publish(publisher.topic_path(PROJECT_ID, TOPIC), raw).result(timeout=10)


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
    data = base64.b64encode(json.dumps({"deploymentId": dep["_id"], "stage": "configuring",
                                        "message": "once"}).encode()).decode()
    envelope = {"message": {"data": data, "messageId": "m-dup-1"}, "subscription": "projects/p/subscriptions/s"}
    assert events.handle(envelope) == "logged"
    assert events.handle(envelope) == "duplicate"
    assert repos.deploy_jobs.get(job["_id"]).log.count("vm: configuring: once") == 1
    from datetime import datetime

    from shared import db

    entry = db.client().collection(events.LEDGER).document("m-dup-1").get().to_dict()
    assert isinstance(entry["expireAt"], datetime)  # Firestore's TTL deletes only timestamp values


def test_malformed_and_unknown_messages_are_acknowledged(api, callers, denv):
    from shared.deploy import events

    def envelope(raw: bytes, mid="m1"):
        return {"message": {"data": base64.b64encode(raw).decode(), "messageId": mid}}
    assert events.handle({}) == "malformed"
    assert events.handle({"message": {"data": "!!notbase64", "messageId": "x"}}) == "malformed"
    assert events.handle(envelope(b"not json")) == "malformed"
    assert events.handle(envelope(json.dumps({"deploymentId": "d1", "stage": "exploded"}).encode())) == "malformed"
    assert events.handle(envelope(json.dumps({"deploymentId": "nope", "stage": "ready"}).encode(), "m2")) \
        == "unknown deployment"
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
    reset_settings(DEPLOY_LOG_MAX_CHARS="1000")
    for i in range(40):
        data = base64.b64encode(json.dumps({"deploymentId": dep["_id"], "stage": "configuring",
                                            "message": f"step {i} " + "." * 40}).encode()).decode()
        events.handle({"message": {"data": data, "messageId": f"bounded-{i}"}})
    log = repos.deploy_jobs.get(job["_id"]).log
    assert len(log) <= 1000 and log.startswith("[... earlier lines trimmed ...]\n")
    assert "step 39" in log and "step 0 " not in log
    assert all(line[:4].isdigit() for line in log.splitlines()[1:])  # whole lines only
