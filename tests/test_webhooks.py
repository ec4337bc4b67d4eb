"""Outgoing webhooks on the local stack: registration (public https only), signed deliveries that a
receiving server verifies on its own, retries with backoff through the Cloud Tasks stand-in until the
retry window closes, the delivery log, refused URLs that never make a request, the notification list."""
import hashlib
import hmac
import json
import time

import pytest

from shared import outbound
from shared.notifications import notify
from shared.notifications.store import deliveries


def verify_like_a_receiver(secret: str, body: bytes, header: str, tolerance_s: int = 300) -> dict:
    """What a customer's endpoint does (docs: README 'Verifying webhook signatures'), written from the spec."""
    fields = dict(p.split("=", 1) for p in header.split(","))
    t = int(fields["t"])
    expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(expected, fields["v1"]), "signature does not match"
    assert abs(time.time() - t) <= tolerance_s, "stale timestamp"
    return json.loads(body)


def register(api, caller, url, events=("*",)):
    r = api("POST", "/notifications/webhooks", caller, json={"url": url, "events": list(events)})
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def wait_delivery(nenv, delivery_id, done=("delivered", "failed"), timeout=30):
    return nenv.wait_for(lambda: (d := deliveries.get(delivery_id)) and d.status in done and d, timeout,
                         f"delivery {delivery_id} {done}")


def test_test_event_is_signed_and_verified_by_the_receiver(nenv, api, callers):
    owner = callers["owner"]
    made = register(api, owner, f"{nenv.receiver.url}/hook")
    secret, hook = made["secret"], made["webhook"]
    assert secret.startswith("whsec_") and "secret" not in hook
    listed = api("GET", "/notifications/webhooks", owner).get_json()["items"]
    assert [w["_id"] for w in listed] == [hook["_id"]] and "secret" not in listed[0]
    r = api("POST", f"/notifications/webhooks/{hook['_id']}/test", owner)
    assert r.status_code == 202
    d = wait_delivery(nenv, r.get_json()["deliveryId"])
    assert d.status == "delivered" and d.attempts[0].status == 200
    (got,) = nenv.receiver.requests
    event = verify_like_a_receiver(secret, got["body"], got["headers"]["openclaw-signature"])
    assert event["type"] == "webhook.test" and got["headers"]["openclaw-event"] == "webhook.test"
    with pytest.raises(AssertionError):  # another secret does not verify
        verify_like_a_receiver("whsec_other", got["body"], got["headers"]["openclaw-signature"])
    with pytest.raises(AssertionError):  # nor an altered body
        verify_like_a_receiver(secret, got["body"] + b" ", got["headers"]["openclaw-signature"])
    with pytest.raises(AssertionError):  # nor the same delivery replayed past the tolerance
        verify_like_a_receiver(secret, got["body"], got["headers"]["openclaw-signature"], tolerance_s=-1)
    log = api("GET", f"/notifications/webhooks/{hook['_id']}/deliveries", owner).get_json()["items"]
    assert [x["status"] for x in log] == ["delivered"] and log[0]["attempts"][0]["status"] == 200
    # the other user sees none of it
    assert api("GET", f"/notifications/webhooks/{hook['_id']}/deliveries", callers["other"]).status_code == 404
    # a rotated secret signs the next delivery
    rotated = api("POST", f"/notifications/webhooks/{hook['_id']}/rotate-secret", owner).get_json()["secret"]
    r = api("POST", f"/notifications/webhooks/{hook['_id']}/test", owner)
    wait_delivery(nenv, r.get_json()["deliveryId"])
    verify_like_a_receiver(rotated, nenv.receiver.requests[-1]["body"],
                           nenv.receiver.requests[-1]["headers"]["openclaw-signature"])


def test_failed_deliveries_are_retried_with_backoff_then_delivered(nenv, api, callers):
    owner = callers["owner"]
    register(api, owner, f"{nenv.receiver.url}/hook", ["bot.down"])
    nenv.receiver.statuses[:] = [500, 503]
    notify(owner.user_id, "bot.down", title="Your bot is down", body="no heartbeat", dedupe_key="t1")
    (d,) = deliveries.all({"userId": owner.user_id}, (("createdAt", "DESCENDING"),))
    d = wait_delivery(nenv, d.id)
    assert d.status == "delivered"
    assert [a.status for a in d.attempts] == [500, 503, 200]
    gaps = [(b.at - a.at) / 1000 for a, b in zip(d.attempts, d.attempts[1:])]
    assert gaps[0] >= 0.2 and gaps[1] >= 0.4, gaps  # WEBHOOKS_BACKOFF_S=0.2,0.4
    ids = {json.loads(r["body"])["id"] for r in nenv.receiver.requests}
    assert len(ids) == 1  # the same event id every time: receivers de-duplicate on it


def test_a_delivery_that_keeps_failing_gives_up_when_the_window_closes(nenv, api, callers):
    owner = callers["owner"]
    register(api, owner, f"{nenv.receiver.url}/hook")
    nenv.receiver.statuses[:] = [500] * 100
    notify(owner.user_id, "bot.down", title="Down", body="b")
    (d,) = deliveries.all({"userId": owner.user_id}, (("createdAt", "DESCENDING"),))
    d = wait_delivery(nenv, d.id)
    assert d.status == "failed" and len(d.attempts) >= 3 and all(a.status == 500 for a in d.attempts)
    assert d.attempts[-1].at - d.createdAt <= 3000 + 1000  # WEBHOOKS_RETRY_WINDOW_S=3


@pytest.mark.parametrize("address", ["10.0.0.5", "127.0.0.1", "169.254.169.254", "fd00::1", "::ffff:192.168.1.1"])
def test_refused_urls_are_not_registered_and_make_no_request(nenv, api, callers, monkeypatch, address):
    connects = []
    monkeypatch.setattr(outbound, "_connect", lambda *a, **k: connects.append(a) or pytest.fail("connected"))
    monkeypatch.setattr(outbound, "resolve", lambda host, port: [address])
    outbound.reset()
    monkeypatch.setenv("OUTBOUND_ALLOW_LOOPBACK", "off")
    for url in ("https://hooks.example.com/x", "http://hooks.example.com/x", "https://metadata.google.internal/x",
                f"https://{address if ':' not in address else '[' + address + ']'}/x"):
        r = api("POST", "/notifications/webhooks", callers["owner"], json={"url": url, "events": ["*"]})
        assert r.status_code == 422, (url, r.get_json())
        assert r.get_json()["error"]["code"] in ("unsafe_url", "invalid_body"), (url, r.get_json())
    assert api("GET", "/notifications/webhooks", callers["owner"]).get_json()["items"] == []
    assert connects == []


def test_a_host_that_turns_private_after_registration_is_refused_at_delivery(nenv, api, callers, monkeypatch):
    owner = callers["owner"]
    monkeypatch.setattr(outbound, "resolve", lambda host, port: ["93.184.216.34"])
    hook = register(api, owner, "https://hooks.example.com/x")["webhook"]
    connects = []
    monkeypatch.setattr(outbound, "_connect", lambda *a, **k: connects.append(a) or pytest.fail("connected"))
    monkeypatch.setattr(outbound, "resolve", lambda host, port: ["169.254.169.254"])  # DNS now points inside
    r = api("POST", f"/notifications/webhooks/{hook['_id']}/test", owner)
    d = wait_delivery(nenv, r.get_json()["deliveryId"])
    assert d.status == "failed" and len(d.attempts) == 1 and d.attempts[0].status is None
    assert "refused" in d.attempts[0].error and "169.254.169.254" in d.attempts[0].error
    assert connects == []


def test_notification_list_read_and_unread(nenv, api, callers):
    owner = callers["owner"]
    for i in range(3):
        notify(owner.user_id, "deploy.completed", title=f"t{i}", body="b", dedupe_key=str(i))
    notify(callers["other"].user_id, "deploy.failed", title="x", body="b")
    page = api("GET", "/notifications?limit=2", owner).get_json()
    assert [n["title"] for n in page["items"]] == ["t2", "t1"] and page["nextCursor"]
    rest = api("GET", f"/notifications?limit=2&cursor={page['nextCursor']}", owner).get_json()
    assert [n["title"] for n in rest["items"]] == ["t0"] and rest["nextCursor"] is None
    first = page["items"][0]["_id"]
    assert api("POST", f"/notifications/{first}/read", callers["other"]).status_code == 404
    assert api("POST", f"/notifications/{first}/read", owner).get_json()["readAt"]
    unread = api("GET", "/notifications?unread=true", owner).get_json()["items"]
    assert [n["title"] for n in unread] == ["t1", "t0"]
    assert api("POST", "/notifications/read-all", owner).get_json() == {"updated": 2}
    assert api("GET", "/notifications?unread=true", owner).get_json()["items"] == []
    assert api("POST", f"/notifications/{first}/unread", owner).get_json()["readAt"] is None
    assert api("GET", f"/notifications?userId={owner.user_id}", callers["other"]).status_code == 403
    assert len(api("GET", f"/notifications?userId={owner.user_id}", callers["admin"]).get_json()["items"]) == 3
