"""Applying Stripe's state to Firestore: webhook events exactly once, and reconciliation.

Two steps (Stripe asks for a 2xx before any complex logic): the webhook `record`s a verified event,
one write creating its ledger entry `stripeEvents/{eventId}` (outcome "received"), queues a Cloud
Task for it and answers; `stripeEventWorker` then `process`es it. Exactly once: the effect and the
entry's outcome are written in one Firestore transaction, on the condition that the entry is still
"received" (an update-time precondition). If the effect fails, the entry stays "received" and Cloud
Tasks delivers the task again (backoff, the queue's max attempts); a redelivery from Stripe finds the
entry and only queues the task again (named after the event: Cloud Tasks keeps one). Entries still
"received" after the queue gave up are processed by the reconciliation job.

Order: the effect never uses the event's snapshot. It reads our document, then re-reads the
customer's subscriptions from Stripe, and writes only if the document is still unchanged since that
read (an update-time precondition, checked at commit). So a write is always computed from a Stripe
read made after every earlier write committed: older events, late retries and concurrent deliveries
cannot put back an older state. A lost race just reads again. The precondition is checked without
holding locks, so 50 deliveries for one customer do not queue on a lock.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import cast

from google.api_core import exceptions as gexc
from google.cloud import firestore

from shared import clock, db, faults, logs, repos
from shared.billing import notices, state, stripe_api

log = logs.get("billing.sync")
LEDGER = "stripeEvents"  # internal collection: one document per recorded Stripe event
RECEIVED = "received"  # a ledger entry's outcome until the worker has applied the event
STALE_MS = 30 * 60_000  # a "received" entry older than this was dropped by the queue: reconcile processes it
LEDGER_DAYS = 90  # Stripe retries for 3 days; a TTL policy on expireAt (firestore.indexes.json) drops older entries
MAX_ROUNDS = 25  # reads-and-retries when other deliveries keep changing the same document
HANDLED = frozenset({
    "checkout.session.completed",
    "customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted",
    "customer.subscription.paused", "customer.subscription.resumed", "customer.subscription.trial_will_end",
    "invoice.paid", "invoice.payment_succeeded", "invoice.payment_failed",
})


class Contention(RuntimeError):
    """The document kept changing under us; the caller answers 5xx and Stripe retries later."""


def ledger_ref(event_id: str) -> firestore.DocumentReference:
    return db.client().collection(LEDGER).document(event_id)


def stripe_changes(snap: firestore.DocumentSnapshot, plans: list) -> dict:
    """{field: (ours, Stripe's)} for one document, Stripe read *after* the document was."""
    doc = repos.subscriptions.of(snap)
    sub = state.current(stripe_api.customer_subscriptions(cast(str, doc.stripeCustomerId)))  # found by it
    if sub is None:
        return {}  # nothing in Stripe yet (e.g. checkout not completed): keep ours
    new = state.fields_of(sub, plans, doc.plan)
    return {k: (getattr(doc, k), v) for k, v in new.items() if getattr(doc, k) != v}


def commit(snap: firestore.DocumentSnapshot | None, fields: dict, ledger: tuple | None = None,
           notes: Sequence[dict] = ()) -> None:
    """One transaction: the update of `snap`'s document and of the ledger entry (`ledger`: its snapshot
    and fields), each only if unchanged since its snapshot was read (else FailedPrecondition), and the
    customer's notifications (shared/billing/notices.py), whose webhook deliveries are queued once it
    committed."""
    from shared import notifications

    queued: list[str] = []

    def unchanged(s: firestore.DocumentSnapshot):
        return db.client().write_option(last_update_time=s.update_time)

    def writes(tx):
        queued.clear()
        for n in notes:  # notifications read in the transaction: before its writes
            queued.extend(notifications.write(tx, n["user_id"], n["kind"], n["title"], n["body"], n["data"],
                                              n["dedupe_key"]))
        if ledger is not None:
            tx.update(ledger[0].reference, ledger[1], option=unchanged(ledger[0]))
        if snap is not None and fields:
            tx.update(snap.reference, fields, option=unchanged(snap))
    db.transactional(writes)()
    notifications.dispatch(queued)


def _new_values(changes: dict) -> dict:
    return {**{k: new for k, (_, new) in changes.items()}, "updatedAt": clock.now_ms()}


def customer_of(event: dict) -> str | None:
    obj = (event.get("data") or {}).get("object") or {}
    if obj.get("object") == "customer":
        return obj.get("id")
    customer = obj.get("customer")
    return customer.get("id") if isinstance(customer, dict) else customer


def doc_of_customer(customer: str | None) -> firestore.DocumentSnapshot | None:
    if not customer:
        return None
    for snap in repos.subscriptions.query({"stripeCustomerId": customer}).limit(1).stream():
        return snap
    return None


def record(event: dict) -> dict:
    """The webhook's step: create the event's ledger entry (one write). {"ignored"} for a type we do
    not handle, {"duplicate"} if the entry exists; "queue" tells whether the worker must (still) get it."""
    if event.get("type") not in HANDLED:
        return {"ignored": True, "queue": False}
    ref = ledger_ref(event["id"])
    try:
        ref.create({"type": event["type"], "created": int(event.get("created") or 0) * 1000,
                    "customer": customer_of(event), "outcome": RECEIVED, "receivedAt": clock.now_ms(),
                    "expireAt": datetime.now(timezone.utc) + timedelta(days=LEDGER_DAYS)})
    except gexc.AlreadyExists:  # a redelivery: queue it again only if it was never applied
        snap = ref.get()
        return {"duplicate": True, "queue": snap.exists and snap.get("outcome") == RECEIVED}
    return {"duplicate": False, "queue": True}


def process(event_id: str) -> dict:
    """The worker's step: apply a recorded event exactly once. Raises (-> 5xx, Cloud Tasks retries)
    if the effect fails; the entry then stays "received"."""
    ref = ledger_ref(event_id)
    plans = None
    for _ in range(MAX_ROUNDS):
        entry = ref.get()
        if not entry.exists:
            return {"outcome": "not_recorded"}  # never recorded, or expired: nothing to apply
        customer = entry.get("customer")
        if entry.get("outcome") != RECEIVED:
            return {"duplicate": True, "outcome": entry.get("outcome"), "customer": customer}
        snap = doc_of_customer(customer)
        changes: dict = {}
        if snap is not None:
            plans = plans if plans is not None else state.load_plans()
            changes = stripe_changes(snap, plans)
        outcome = "unknown_customer" if snap is None else ("applied" if changes else "unchanged")
        result = {"subscriptionDocId": snap.id if snap else None, "outcome": outcome, "changed": sorted(changes),
                  "processedAt": clock.now_ms()}
        notes = notices.after_change(repos.subscriptions.of(snap), changes, entry.get("type")) if snap else []
        try:
            commit(snap, _new_values(changes) if changes else {}, (entry, result), notes)
        except gexc.FailedPrecondition:  # the document changed, or another delivery applied the event
            continue
        if outcome == "unknown_customer":
            log.warning("stripe event for unknown customer", extra={"eventId": event_id, "customer": customer})
        return {"outcome": outcome, "changed": sorted(changes), "customer": customer}
    raise Contention(f"event {event_id}: document kept changing")


def stale_events(now: int) -> list[str]:
    """Ids of entries still "received" long after they were queued (the queue gave up on them)."""
    q = db.client().collection(LEDGER).where(filter=firestore.FieldFilter("outcome", "==", RECEIVED))
    return [s.id for s in q.select(["receivedAt"]).stream() if (s.get("receivedAt") or 0) <= now - STALE_MS]


def _reconcile_one(doc_id: str, plans: list) -> dict | None:
    for _ in range(MAX_ROUNDS):
        snap = repos.subscriptions.ref(doc_id).get()
        doc = repos.subscriptions.load(snap)
        if doc is None or doc.status == "canceled":
            return None
        now = clock.now_ms()
        changes = stripe_changes(snap, plans) if doc.stripeCustomerId else {}
        reason = "stripe"
        if not changes and doc.status == "trialing" and not doc.stripeSubscriptionId \
                and doc.trialEnd and doc.trialEnd <= now:
            changes, reason = {"status": ("trialing", "canceled")}, "trial ended"  # a local trial ran out
        if not changes:
            if doc.status == "trialing" and doc.trialEnd and 0 < doc.trialEnd - now <= notices.TRIAL_NOTICE_MS:
                from shared.notifications import notify

                # also local trials; Stripe's trial_will_end uses the same key
                n = notices.trial_ending(doc, doc.trialEnd)
                if n is not None:
                    notify(n.pop("user_id"), n.pop("kind"), **n)
            return None
        try:
            commit(snap, _new_values(changes), notes=notices.after_change(doc, changes))
        except gexc.FailedPrecondition:
            continue
        return {"subscriptionId": doc.id, "userId": doc.userId, "stripeCustomerId": doc.stripeCustomerId,
                "reason": reason, "before": {k: old for k, (old, _) in changes.items()},
                "after": {k: new for k, (_, new) in changes.items()}}
    raise Contention(f"subscription {doc_id}: document kept changing")


def _enforce_plan(user_id: str, errors: list) -> None:
    """A repaired plan may allow fewer bots: stop those beyond it (shared/plan_limits.py)."""
    from shared import plan_limits

    try:
        report = plan_limits.enforce(user_id)
    except Exception as exc:  # one user's failure must not stop the run; the next run tries again
        errors.append({"userId": user_id, "error": f"plan limit: {type(exc).__name__}: {exc}"[:300],
                       "transient": faults.is_transient(exc)})
        return
    if report["waiting"]:
        errors.append({"userId": user_id, "error": "plan limit: bots with a job running were not stopped: "
                       f"{', '.join(report['waiting'])}", "transient": False})


def open_subscription_ids() -> list[str]:
    ids: list[str] = []
    for status in ("trialing", "active", "past_due", "pending"):
        cursor = None
        while True:
            page = repos.subscriptions.page({"status": status}, (), 100, cursor)
            ids += [d.id for d in page.items]
            cursor = page.cursor
            if not cursor:
                break
    return ids


def reconcile() -> dict:
    """Re-read every non-canceled subscription from Stripe and repair drift; local trials that
    ran out without a Stripe subscription are closed. Returns what changed."""
    started = clock.now_ms()
    errors = []
    events = 0
    for event_id in stale_events(started):  # recorded, but the queue gave up on them
        try:
            process(event_id)
            events += 1
        except faults.BudgetExhausted:
            raise
        except Exception as exc:
            transient = faults.is_transient(exc)
            log.warning("stale stripe event %s failed: %s", event_id, faults.describe(exc), extra={"eventId": event_id})
            errors.append({"eventId": event_id, "error": f"{type(exc).__name__}: {exc}"[:300], "transient": transient})
    plans = state.load_plans()
    ids = open_subscription_ids()
    changed = []
    pending = list(ids)
    for last_round in (False, True):  # a transient failure gets one more try at the end of the run
        again: list = []
        for i, doc_id in enumerate(pending):
            try:
                change = _reconcile_one(doc_id, plans)
            except faults.BudgetExhausted:  # out of time: the rest is reported, the scheduler's retry covers it
                errors += [{"subscriptionId": d, "error": "not reached: the run's time budget was spent",
                            "transient": True} for d in pending[i:]]
                again = []
                break
            except Exception as exc:  # one customer's failure must not stop the others
                transient = faults.is_transient(exc)
                if transient and not last_round:
                    again.append(doc_id)
                    continue
                log.warning("reconcile failed for %s: %s", doc_id, faults.describe(exc),
                            exc_info=not transient, extra={"subscriptionId": doc_id, "transient": transient})
                errors.append({"subscriptionId": doc_id, "error": f"{type(exc).__name__}: {exc}"[:300],
                               "transient": transient})
                continue
            if change:
                changed.append(change)
                _enforce_plan(change["userId"], errors)
        pending = again
        if not pending:
            break
    report = {"checked": len(ids), "changed": changed, "errors": errors, "staleEventsApplied": events,
              "startedAt": started, "finishedAt": clock.now_ms()}
    log.info("billing reconciliation: %d checked, %d changed, %d errors", len(ids), len(changed), len(errors),
             extra={"report": report})
    return report
