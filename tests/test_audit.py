"""The audit log, recorded once by the router: who, acting as whom, what, on which resource, when, the
request id and the outcome; a user reads their own, an admin everyone's with filters; one write per call."""
import secrets as pysecrets
from datetime import datetime, timezone

from devtools.firestore_meter import metered
from shared import audit, clock, repos
from shared.models import Deployment


def deployment(owner: str) -> str:
    dep_id = pysecrets.token_hex(10)
    repos.deployments.set(Deployment(_id=dep_id, userId=owner, gcpProject="acme-bots", zone="us-central1-a",
                                     vmName="oc-a", status="running", botName="A", primaryModel="m",
                                     createdAt=clock.now_ms()))
    return dep_id


def log_of(api, caller, query=""):
    r = api("GET", f"/auditLog{query}", caller)
    assert r.status_code == 200, r.get_json()
    return r.get_json()["items"]


def test_changes_are_recorded_with_actor_subject_outcome_and_request_id(api, callers, monkeypatch):
    owner, admin, other = callers["owner"], callers["admin"], callers["other"]
    monkeypatch.setenv("AUDIT_RETENTION_DAYS", "30")
    audit.reset()
    api("GET", "/users/me", owner)
    dep = deployment(owner.user_id)
    with metered() as m:
        r = api("PATCH", f"/deployments/{dep}", owner, json={"botName": "Renamed"},
                headers={"X-Request-Id": "req-owner-0001"})
    assert r.status_code == 200 and m.writes in (2, 3)  # the change, its audit entry (and a rate-limit counter)
    assert api("PATCH", f"/deployments/{dep}", owner, json={"botName": ""}).status_code == 422
    assert api("GET", f"/deployments/{dep}", owner).status_code == 200  # an owner's read: not recorded
    api("POST", "/knowledge/search", owner, json={"vector": [0.0] * 3})  # a POST that only reads: neither
    assert api("PATCH", f"/deployments/{dep}", admin, json={"botName": "By admin"}).status_code == 200
    assert api("GET", f"/deployments/{dep}", admin).status_code == 200  # an admin reading another's: recorded
    assert api("PATCH", f"/deployments/{dep}", other, json={"botName": "x"}).status_code == 404
    assert api("PATCH", f"/deployments/{dep}", None, json={"botName": "x"}).status_code == 401  # no actor: none

    mine = log_of(api, owner, "/me")
    assert [(e["actorId"], e["method"], e["status"], e["outcome"]) for e in mine] == [
        (admin.user_id, "GET", 200, "success"), (admin.user_id, "PATCH", 200, "success"),
        (owner.user_id, "PATCH", 422, "failure"), (owner.user_id, "PATCH", 200, "success")]
    first = mine[-1]
    assert first["action"] == "PATCH /deployments/{id}" and first["resourceId"] == dep
    assert first["requestId"] == "req-owner-0001" and first["actingAs"] == owner.user_id
    assert first["onBehalf"] is False and first["function"] == "deployments" and first["actorRole"] == "user"
    assert mine[-2]["code"] == "invalid_body"
    assert mine[1]["onBehalf"] is True and mine[1]["actorRole"] == "admin" and mine[1]["actingAs"] == owner.user_id
    stored = audit.entries.get(first["_id"])
    days = (stored.expireAt - datetime.now(timezone.utc)).total_seconds() / 86400
    assert 29.9 < days <= 30  # AUDIT_RETENTION_DAYS: the TTL policy deletes it then
    # the other user's refused attempt is theirs, not the owner's
    theirs = log_of(api, other, "/me")
    assert [(e["status"], e["actingAs"]) for e in theirs] == [(404, other.user_id)]
    assert api("GET", "/auditLog", owner).status_code == 403

    # an admin reads everyone's, by one filter and a time range
    assert len(log_of(api, admin, f"?actingAs={owner.user_id}")) == 4
    assert {e["actorId"] for e in log_of(api, admin, f"?actorId={admin.user_id}")} == {admin.user_id}
    assert [e["status"] for e in log_of(api, admin, "?outcome=failure")] == [404, 422]
    assert len(log_of(api, admin, "?function=deployments")) == 5
    page = api("GET", "/auditLog?limit=2", admin).get_json()
    rest = api("GET", f"/auditLog?limit=10&cursor={page['nextCursor']}", admin).get_json()
    assert len(page["items"]) == 2 and len(page["items"]) + len(rest["items"]) >= 5
    since = first["at"] + 1
    assert all(e["at"] >= since for e in log_of(api, admin, f"?since={since}"))
    r = api("GET", f"/auditLog?actorId={admin.user_id}&outcome=failure", admin)
    assert r.status_code == 422
    monkeypatch.delenv("AUDIT_RETENTION_DAYS")
    audit.reset()
