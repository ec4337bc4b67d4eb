"""Applying Stripe's state to Firestore: webhook events exactly once, and reconciliation.

Exactly once: an event's ledger entry (`stripeEvents/{eventId}`) is created in the
same Firestore transaction that writes its effect. If the effect fails, the event
stays unrecorded and Stripe's retry is processed; once recorded, a redelivery (even
a concurrent one: the ledger create then fails) changes nothing.

Order: the effect never uses the event's snapshot. It reads our document, then
re-reads the customer's subscriptions from Stripe, and writes only if the document
is still unchanged since that read (an update-time precondition, checked at
commit). So a write is always computed from a Stripe read made after every earlier
write committed: older events, late retries and concurrent deliveries cannot put
back an older state. A lost race just reads again. The precondition is checked
without holding locks, so 50 deliveries for one customer do not queue on a lock.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from google.api_core import exceptions as gexc
from google.cloud import firestore

from shared import clock, db, faults, logs, repos
from shared.billing import state, stripe_api

log = logs.get("billing.sync")
LEDGER = "stripeEvents"  # internal collection: one document per processed Stripe event
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
    doc = repos.subscriptions.load(snap)
    sub = state.current(stripe_api.customer_subscriptions(doc.stripeCustomerId))
    if sub is None:
        return {}  # nothing in Stripe yet (e.g. checkout not completed): keep ours
    new = state.fields_of(sub, plans, doc.plan)
    return {k: (getattr(doc, k), v) for k, v in new.items() if getattr(doc, k) != v}


def commit(snap: firestore.DocumentSnapshot | None, fields: dict, ledger: tuple | None = None) -> None:
    """One transaction: the ledger entry (if any) and the update of `snap`'s document, the latter
    only if the document is unchanged since `snap` was read (else FailedPrecondition)."""
    def writes(tx):
        if ledger is not None:
            tx.create(*ledger)
        if snap is not None and fields:
            tx.update(snap.reference, fields, option=db.client().write_option(last_update_time=snap.update_time))
    firestore.transactional(writes)(db.client().transaction())


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


def process_event(event: dict) -> dict:
    """Apply one verified event exactly once. Raises (-> 5xx, Stripe retries) if the effect fails."""
    if event.get("type") not in HANDLED:
        return {"ignored": True}
    ref = ledger_ref(event["id"])
    customer = customer_of(event)
    plans = None
    for _ in range(MAX_ROUNDS):
        if ref.get().exists:
            return {"duplicate": True}
        snap = doc_of_customer(customer)
        changes: dict = {}
        if snap is not None:
            plans = plans if plans is not None else state.load_plans()
            changes = stripe_changes(snap, plans)
        outcome = "unknown_customer" if snap is None else ("applied" if changes else "unchanged")
        entry = {"type": event["type"], "created": int(event.get("created") or 0) * 1000, "customer": customer,
                 "subscriptionDocId": snap.id if snap else None, "outcome": outcome, "changed": sorted(changes),
                 "processedAt": clock.now_ms(),
                 "expireAt": datetime.now(timezone.utc) + timedelta(days=LEDGER_DAYS)}
        try:
            commit(snap, _new_values(changes) if changes else {}, (ref, entry))
        except gexc.AlreadyExists:  # a concurrent delivery of the same event committed first
            return {"duplicate": True}
        except gexc.FailedPrecondition:  # another delivery changed the document since we read it
            continue
        if outcome == "unknown_customer":
            log.warning("stripe event for unknown customer", extra={"eventId": event["id"], "customer": customer})
        return {"outcome": outcome, "changed": sorted(changes)}
    raise Contention(f"event {event['id']}: document kept changing")


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
            return None
        try:
            commit(snap, _new_values(changes))
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
    plans = state.load_plans()
    ids = open_subscription_ids()
    changed, errors = [], []
    pending = list(ids)
    for last_round in (False, True):  # a transient failure gets one more try at the end of the run
        again = []
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
    report = {"checked": len(ids), "changed": changed, "errors": errors,
              "startedAt": started, "finishedAt": clock.now_ms()}
    log.info("billing reconciliation: %d checked, %d changed, %d errors", len(ids), len(changed), len(errors),
             extra={"report": report})
    return report
