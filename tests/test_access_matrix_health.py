"""Every endpoint of bot health, notifications, webhooks and the audit log x {anonymous, other user,
owner, admin, suspended}: the expected status ("owner" owns the addressed deployment, notification and
webhook). Metered like tests/test_access_matrix.py (`pytest --cost-table`)."""
import json

import pytest
from test_access_matrix_deploy import CALLERS, PROJECT, ZONE, fill, owned

from devtools.firestore_meter import metered

HOOK = {"url": "{receiver}/hook", "events": ["*"]}


def admin_only(status: int) -> tuple:
    return (401, 403, 403, status, 403)


def mine(status: int) -> tuple:
    return (401, status, status, status, 403)


MATRIX = [
    ("GET", "/deployments/{dep}/health", None, owned(200)),
    ("PATCH", "/deployments/{dep}/health", {"autoRecovery": False}, owned(200)),
    ("POST", "/healthCheck", None, admin_only(200)),  # or Cloud Scheduler's OIDC token
    ("POST", "/webhookWorker", {"deliveryId": "d1", "attempt": 1}, (403, 403, 403, 403, 403)),  # Cloud Tasks only
    ("GET", "/notifications", None, mine(200)),
    ("GET", "/notifications?unread=true", None, mine(200)),
    ("GET", "/notifications?userId={owner}", None, (401, 403, 200, 200, 403)),
    ("POST", "/notifications/{note}/read", None, owned(200)),
    ("POST", "/notifications/{note}/unread", None, owned(200)),
    ("POST", "/notifications/read-all", None, mine(200)),
    ("GET", "/notifications/webhooks", None, mine(200)),
    ("POST", "/notifications/webhooks", HOOK, mine(201)),
    ("GET", "/notifications/webhooks/{hook}", None, owned(200)),
    ("PATCH", "/notifications/webhooks/{hook}", {"events": ["bot.down"]}, owned(200)),
    ("POST", "/notifications/webhooks/{hook}/rotate-secret", None, owned(200)),
    ("POST", "/notifications/webhooks/{hook}/test", None, owned(202)),
    ("GET", "/notifications/webhooks/{hook}/deliveries", None, owned(200)),
    ("GET", "/notifications/webhooks/{hook}/deliveries/{delivery}", None, owned(200)),
    ("DELETE", "/notifications/webhooks/{hook}", None, owned(204)),
    ("GET", "/auditLog/me", None, mine(200)),
    ("GET", "/auditLog", None, admin_only(200)),
    ("GET", "/auditLog?actingAs={owner}", None, admin_only(200)),
]

COST_ROWS: list[tuple] = []

CASES = [pytest.param(m, p, b, who, st, id=f"{m} {p} as {who}")
         for m, p, b, statuses in MATRIX for who, st in zip(CALLERS, statuses)]


@pytest.fixture
def world(api, callers, nenv):
    import secrets as pysecrets

    from shared import clock, db, repos
    from shared.models import Deployment
    from shared.notifications import new_deliveries, notify
    from shared.notifications.store import Notification, Webhook, notifications, webhooks

    owner, now = callers["owner"].user_id, clock.now_ms()
    api("GET", "/users/me", callers["owner"])
    dep_id = pysecrets.token_hex(10)
    repos.deployments.set(Deployment(_id=dep_id, userId=owner, gcpProject=PROJECT, zone=ZONE, vmName="oc-m",
                                     status="running", botName="Matrix", primaryModel="m", createdAt=now))
    hook = Webhook(_id="hook1", userId=owner, url=f"{nenv.receiver.url}/hook", events=["*"], secret="whsec_x",
                   createdAt=now, updatedAt=now)
    webhooks.set(hook)
    notify(owner, "deploy.completed", title="t", body="b", dedupe_key="m")
    (note,) = notifications.all({"userId": owner}, (("createdAt", "DESCENDING"),))
    n = Notification(_id="nmatrix", userId=owner, kind="webhook.test", title="t", body="b", createdAt=now)
    (delivery,) = db.transactional(lambda tx: new_deliveries(tx, n, [hook]))()
    return {"callers": callers, "ids": {"{dep}": dep_id, "{note}": note.id, "{hook}": hook.id,
                                        "{delivery}": delivery, "{owner}": owner, "{receiver}": nenv.receiver.url}}


@pytest.mark.parametrize("method,path,body,who,status", CASES)
def test_access(api, world, method, path, body, who, status):
    ids = world["ids"]
    body = json.loads(fill(json.dumps(body), ids)) if body is not None else None
    with metered() as meter:
        r = api(method, fill(path, ids), world["callers"][who], json=body)
    COST_ROWS.append((method, path, who, r.status_code, meter.reads, meter.writes))
    assert r.status_code == status, r.get_data(as_text=True)
    if status >= 400:
        assert set(r.json["error"]) >= {"code", "message"}
