"""Firestore stops answering (its emulator's java process paused with SIGSTOP, resumed with SIGCONT
in a finally) for longer than a function's deadline: each request ends inside the deadline with
503 JSON and Retry-After, nothing is half-written, and the next request after the resume works."""
from __future__ import annotations

import os
import signal
import time
from contextlib import contextmanager

import pytest

DEADLINE_S = 3  # the functions' deadline in this test (FUNCTION_TIMEOUT_S)


def firestore_java_pids(stack) -> list[int]:
    """The emulator's java process(es): the process group devtools/stack.py started for it."""
    svc = next(s for s in stack.services if s.name == "firestore")
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.getpgid(int(entry)) != svc.proc.pid:
                continue
            with open(f"/proc/{entry}/comm") as fh:
                if fh.read().strip() == "java":
                    pids.append(int(entry))
        except (OSError, ProcessLookupError):
            continue
    assert pids, "no java process in the Firestore emulator's process group"
    return pids


@contextmanager
def firestore_paused(stack):
    pids = firestore_java_pids(stack)
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)


@pytest.fixture
def short_deadline(monkeypatch):
    from shared import config

    monkeypatch.setenv("FUNCTION_TIMEOUT_S", str(DEADLINE_S))
    config.reset()
    yield
    monkeypatch.undo()
    config.reset()


def timed(api, *args, **kw):
    started = time.monotonic()
    r = api(*args, **kw)
    return r, time.monotonic() - started


def test_firestore_paused_past_the_deadline_answers_503_then_recovers(api, callers, stack, short_deadline):
    from shared import repos
    from shared.models import PricingPlan

    repos.pricing_plans.set(PricingPlan(_id="starter", slug="starter", name="Starter", priceMonthly=29,
                                        priceYearly=290, stripePriceId="price_starter_month", sortOrder=0))
    r = api("PATCH", "/users/me", callers["owner"], json={"name": "Before"})
    assert r.status_code == 200, r.json
    calls = [("GET", "/users/me", callers["owner"], None),
             ("PATCH", "/users/me", callers["owner"], {"name": "During"}),
             ("GET", "/pricingPlans", None, None),
             ("PUT", "/cmsPages/about", callers["admin"], {"title": "About", "body": "x", "status": "published"})]
    with firestore_paused(stack):
        paused_at = time.monotonic()
        for method, path, caller, body in calls:
            r, took = timed(api, method, path, caller, json=body)
            assert r.status_code == 503, (method, path, r.status_code, r.get_data()[:300])
            assert took < DEADLINE_S, f"{method} {path} took {took:.2f}s, past the {DEADLINE_S}s deadline"
            assert r.json["error"]["code"] == "unavailable" and int(r.headers["Retry-After"]) > 0
        assert time.monotonic() - paused_at > DEADLINE_S  # paused for longer than one deadline
    # resumed: the same calls work, and nothing the refused PATCH carried was written
    deadline = time.monotonic() + 30
    while True:
        r = api("GET", "/users/me", callers["owner"])
        if r.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert r.status_code == 200 and r.json["name"] == "Before", r.json
    r = api("PATCH", "/users/me", callers["owner"], json={"name": "After"})
    assert r.status_code == 200 and r.json["name"] == "After"
    assert api("GET", "/pricingPlans").status_code == 200


def test_a_deadline_longer_than_the_pause_waits_it_out(api, callers, stack, short_deadline):
    """A pause shorter than the budget is not an error: the library's own retries ride it out."""
    assert api("GET", "/users/me", callers["owner"]).status_code == 200
    import threading

    pids = firestore_java_pids(stack)
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    timer = threading.Timer(0.8, lambda: [os.kill(p, signal.SIGCONT) for p in pids])
    timer.start()
    try:
        r, took = timed(api, "GET", "/users/me", callers["owner"])
    finally:
        timer.join()
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
    assert r.status_code == 200 and 0.7 < took < DEADLINE_S, (r.status_code, took)


def test_a_read_aborted_inside_a_transaction_runs_the_transaction_again(stack):
    """Firestore may abort a transaction's read (the emulator's "Transaction lock timeout"); the
    library retries only aborted commits, so db.transactional starts the whole attempt over, and an
    abort that keeps coming ends as 409 contention with nothing written."""
    from google.api_core import exceptions as gexc

    from shared import db
    from shared.errors import Contention

    ref = db.client().collection("faultProbe").document("aborted-read")
    ref.set({"n": 0})
    tries = []

    @db.transactional
    def bump(tx, aborts: int):
        tries.append(1)
        n = ref.get(transaction=tx).get("n")
        tx.update(ref, {"n": n + 1})
        if len(tries) <= aborts:
            raise gexc.Aborted("Transaction lock timeout.")
        return n + 1

    assert bump(1) == 1 and len(tries) == 2 and ref.get().get("n") == 1
    tries.clear()
    with pytest.raises(Contention) as err:
        bump(db.TX_ATTEMPTS)
    assert err.value.code == "contention"
    assert len(tries) == db.TX_ATTEMPTS and ref.get().get("n") == 1


def test_two_transactions_that_deadlock_on_one_document_both_land(stack):
    """Two transactions read then write one document at once: in the emulator each waits for the
    other's read lock until its lock timeout aborts one or both. db.transactional tries again after a
    jittered pause, so the two do not meet again in step: both increments land, no 409."""
    import threading

    from shared import db

    ref = db.client().collection("faultProbe").document("deadlock")
    ref.set({"n": 0})

    @db.transactional
    def bump(tx):
        n = ref.get(transaction=tx).get("n")
        time.sleep(0.05)  # both hold the read lock before either writes
        tx.update(ref, {"n": n + 1})

    errors = []
    for _ in range(2):
        barrier = threading.Barrier(2)

        def run(barrier=barrier):
            barrier.wait()
            try:
                bump()
            except Exception as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
        threads = [threading.Thread(target=run) for _ in range(2)]
        [t.start() for t in threads]
        [t.join() for t in threads]
    assert not errors and ref.get().get("n") == 4


def test_a_plain_write_behind_a_long_transaction_lands(stack):
    """A plain update waits for a transaction's lock on its document; past the emulator's lock
    timeout (2 s) the commit is aborted, having written nothing, and is sent again until it lands."""
    import threading

    from google.cloud import firestore

    from shared import db

    ref = db.client().collection("faultProbe").document("held")
    ref.set({"n": 0})
    reading = threading.Event()

    def hold(tx):
        n = ref.get(transaction=tx).get("n")
        reading.set()
        time.sleep(3)  # longer than the emulator's lock timeout
        tx.update(ref, {"n": n + 1})
    held = threading.Thread(target=lambda: firestore.transactional(hold)(db.client().transaction(max_attempts=1)))
    held.start()
    try:
        assert reading.wait(10)
        ref.update({"plain": True})
    finally:
        held.join()
    assert ref.get().to_dict() == {"n": 1, "plain": True}
