"""Cost pulls under faults: a provider that keeps timing out or answering 5xx for a user through all
of a delivery's tries sends the batch back to the queue (its neighbours' documents are written, under
the same ids the redelivery writes again); the batch is recorded once the user recovers, or, on the
queue's last delivery, with the user's failure. A permanent error (a malformed answer) is recorded at once."""
from __future__ import annotations

from costs_support import wait_run
from test_costs_pull import H, schedule, user

from shared import repos


def test_a_transient_failure_is_retried_through_the_queue(client, providers):
    keys = {H[n]: {"limit": 5.0, "usage": 1.0} for n in (1, 2)}
    # three tries of the first delivery fail (timeouts and 500s); the second delivery works
    providers.set(keys=keys, faults={H[1]: ["timeout", "500", "timeout"]})
    user("u1", account={"openrouterKeyHash": H[1]})
    user("u2", account={"openrouterKeyHash": H[2]})
    report = wait_run(schedule(client, "pullCosts").json["runId"], timeout=60)
    assert (report["ok"], report["failed"]) == (2, 0), report
    snaps = {s.userId: s for s in repos.cost_snapshots.all({}, (("fetchedAt", "ASCENDING"),))}
    assert set(snaps) == {"u1", "u2"} and snaps["u1"].openrouterBalance == 4.0


def test_a_user_failing_for_good_is_recorded_on_the_last_delivery(client, providers):
    keys = {H[n]: {"limit": 5.0, "usage": 1.0} for n in (1, 2, 3)}
    providers.set(keys=keys, faults={H[1]: ["500!"], H[3]: ["malformed!"]})
    for n in (1, 2, 3):
        user(f"u{n}", account={"openrouterKeyHash": H[n]})
    report = wait_run(schedule(client, "pullCosts").json["runId"], timeout=60)
    assert (report["ok"], report["failed"]) == (1, 2), report
    errors = {f["userId"]: f["error"] for f in report["failures"]}
    assert errors == {"u1": "HTTP 500 after 3 attempts", "u3": "malformed body: not JSON"}
