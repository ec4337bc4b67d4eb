"""The time budget (shared/faults.py) without a stack: how a request's deadline is derived, how
each call's timeout is cut, and that nothing starts once it is spent."""
from __future__ import annotations

import time

import pytest

from shared import faults


def test_budget_ends_a_reserve_before_the_functions_deadline():
    assert faults.reserve_s(60) == 5 and faults.reserve_s(540) == 5 and faults.reserve_s(3) == 0.5
    assert faults.remaining() is None and faults.timeout(30) == 30  # outside a request: the caps alone
    with faults.budget(60):
        assert 54.5 < faults.remaining() <= 55
        assert faults.timeout(30) == 30 and 54 < faults.timeout(None) <= 55
        with faults.budget(540):  # a nested budget never outlives the outer one
            assert faults.remaining() <= 55
        with faults.budget(3):
            assert faults.remaining() <= 2.5 and faults.timeout(30) <= 2.5
    assert faults.remaining() is None


def test_spent_budget_starts_no_call():
    with faults.budget(0.6):  # 0.1 s after the 0.5 s reserve
        time.sleep(0.12)
        with pytest.raises(faults.BudgetExhausted) as info:
            faults.timeout(30, "Secret Manager")
        assert "Secret Manager" in str(info.value) and faults.is_transient(info.value)


def test_retry_window_fits_the_budget():
    with faults.budget(3):
        r = faults.retry(cap=30)
        assert r._timeout <= 2.5 and r._predicate(TimeoutError())
    assert faults.retry(cap=7)._timeout == 7


def test_compute_calls_out_of_budget_are_transient_compute_errors(monkeypatch):
    from shared.deploy import compute

    monkeypatch.setattr(compute.settings, "get", lambda: type("S", (), {"call_timeout_s": 30})())
    calls = []
    with faults.budget(0.55):
        time.sleep(0.06)
        with pytest.raises(compute.ComputeError) as info:
            compute.call("create VM", lambda **kw: calls.append(kw))
    assert info.value.transient and calls == [] and "create VM" in str(info.value)


def test_firestore_interceptor_cuts_the_libraries_timeout():
    from shared.db import _budget_interceptor

    seen = []

    class Details:
        method, timeout, metadata = "/Firestore/Commit", 60.0, ()
        credentials = wait_for_ready = compression = None

    from google.cloud.firestore_v1.types import CommitRequest

    in_tx = CommitRequest(transaction=b"t1")  # a transaction's commit: one try here
    b = _budget_interceptor()
    b.intercept_unary_unary(lambda d, req: seen.append(d.timeout), Details(), in_tx)
    with faults.budget(3):
        b.intercept_unary_unary(lambda d, req: seen.append(d.timeout), Details(), in_tx)
    assert seen[0] == 60.0 and seen[1] <= 2.5
    with faults.budget(0.55):
        time.sleep(0.06)
        with pytest.raises(faults.BudgetExhausted) as info:
            b.intercept_unary_stream(lambda d, req: seen.append(d.timeout), Details(), None)
        assert "Firestore Commit" in str(info.value)


def test_a_plain_commit_aborted_on_contention_is_sent_again():
    import grpc
    from google.cloud.firestore_v1.types import CommitRequest

    from shared import db

    class Details:
        method, timeout, metadata = "/google.firestore.v1.Firestore/Commit", 60.0, ()
        credentials = wait_for_ready = compression = None

    class Outcome:
        def __init__(self, code):
            self._code = code

        def code(self):
            return self._code

    def answers(*codes):
        sent = []

        def continuation(details, request):
            sent.append(request)
            return Outcome(codes[len(sent) - 1])
        return sent, continuation

    b = db._budget_interceptor()
    sent, cont = answers(grpc.StatusCode.ABORTED, grpc.StatusCode.ABORTED, grpc.StatusCode.OK)
    assert b.intercept_unary_unary(cont, Details(), CommitRequest()).code() == grpc.StatusCode.OK and len(sent) == 3
    sent, cont = answers(*[grpc.StatusCode.ABORTED] * db.PLAIN_COMMIT_ATTEMPTS)
    assert b.intercept_unary_unary(cont, Details(), CommitRequest()).code() == grpc.StatusCode.ABORTED
    assert len(sent) == db.PLAIN_COMMIT_ATTEMPTS
    sent, cont = answers(grpc.StatusCode.ABORTED)  # a transaction's commit: the transaction retries, not this
    b.intercept_unary_unary(cont, Details(), CommitRequest(transaction=b"t1"))
    assert len(sent) == 1
