"""notify(): the user's entry and one delivery per webhook that wants the kind, once per dedupe key,
inside the caller's transaction when given (nothing when it rolls back)."""
import pytest

from shared import clock, db
from shared.notifications import notify
from shared.notifications.store import Webhook, deliveries, notifications, webhooks

RECEIVER = {}


@pytest.fixture(autouse=True)
def _receiver(nenv):
    """Deliveries go to the test's receiver on loopback: a task dispatched meanwhile never resolves a real host."""
    RECEIVER["url"] = nenv.receiver.url + "/hook"


def hook(user_id: str, hook_id: str, events: list[str], enabled: bool = True):
    now = clock.now_ms()
    webhooks.set(Webhook(_id=hook_id, userId=user_id, url=RECEIVER["url"], events=events, enabled=enabled,
                         secret="whsec_test", createdAt=now, updatedAt=now))


def entries(user_id: str):
    return notifications.all({"userId": user_id}, (("createdAt", "DESCENDING"),))


def test_notify_writes_entry_and_deliveries_once_per_dedupe_key(nenv):
    hook("u1", "w-all", ["*"])
    hook("u1", "w-deploy", ["deploy.completed"])
    hook("u1", "w-other", ["bot.down"])
    hook("u1", "w-off", ["*"], enabled=False)
    hook("u2", "w-u2", ["*"])
    for _ in range(2):
        notify("u1", "deploy.completed", title="Deployed", body="Your bot is up", data={"deploymentId": "d1"},
               dedupe_key="job-1")
    (n,) = entries("u1")
    assert (n.kind, n.title, n.readAt, n.data) == ("deploy.completed", "Deployed", None, {"deploymentId": "d1"})
    got = deliveries.all({"userId": "u1"}, (("createdAt", "DESCENDING"),))
    assert sorted(d.webhookId for d in got) == ["w-all", "w-deploy"]
    assert all(d.notificationId == n.id for d in got)
    # their tasks are queued: one may already be delivered when we look
    assert all((d.status == "pending" and d.sweepAt) or d.status == "delivered" for d in got)
    assert entries("u2") == []
    notify("u1", "deploy.completed", title="Deployed", body="again", dedupe_key="job-2")
    assert len(entries("u1")) == 2


def test_notify_in_a_rolled_back_transaction_writes_nothing(nenv):
    hook("u1", "w-all", ["*"])

    @db.transactional
    def work(tx):
        notify("u1", "bot.down", title="Down", body="b", dedupe_key="x", transaction=tx)
        raise RuntimeError("the caller's write failed")

    with pytest.raises(RuntimeError):
        work()
    assert entries("u1") == [] and deliveries.all({"userId": "u1"}, (("createdAt", "DESCENDING"),)) == []

    @db.transactional
    def ok(tx):
        notify("u1", "bot.down", title="Down", body="b", dedupe_key="x", transaction=tx)
        tx.set(db.client().collection("scratch").document("s"), {"v": 1})

    ok()
    ok()  # same dedupe key: nothing new
    assert len(entries("u1")) == 1
    assert len(deliveries.all({"userId": "u1"}, (("createdAt", "DESCENDING"),))) == 1


def test_unknown_kind_is_refused(nenv):
    with pytest.raises(ValueError):
        notify("u1", "no.such", title="t", body="b")
