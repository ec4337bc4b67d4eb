"""Every Firestore query the code can issue, declared once.

Repositories run queries only through `find()`, so this table is complete; a
test (tests/test_indexes.py) proves `firestore.indexes.json` serves each one,
since the emulator does not enforce indexes.
"""
from __future__ import annotations

from dataclasses import dataclass

ASC, DESC = "ASCENDING", "DESCENDING"


@dataclass(frozen=True)
class Query:
    collection: str
    equals: tuple[str, ...] = ()  # equality filters, in any order
    order: tuple[tuple[str, str], ...] = ()  # (field, ASC|DESC); __name__ is added as tie-break
    vector: str | None = None  # find_nearest on this field

    @property
    def key(self) -> tuple:
        return (self.collection, frozenset(self.equals), self.order, self.vector)


QUERIES: dict[tuple, Query] = {}


def declare(collection: str, equals: tuple[str, ...] = (), order: tuple[tuple[str, str], ...] = (),
            vector: str | None = None) -> Query:
    q = Query(collection, tuple(equals), tuple(order), vector)
    QUERIES[q.key] = q
    return q


def find(collection: str, equals, order=(), vector: str | None = None) -> Query:
    key = (collection, frozenset(equals), tuple(order), vector)
    try:
        return QUERIES[key]
    except KeyError:
        raise LookupError(f"undeclared query on {collection}: equals={sorted(equals)} order={order}") from None


# users
declare("users", ("clerkId",))
declare("users", ("email",))  # linking a new identity by verified e-mail (shared/accounts.py)
for _eq in ((), ("role",), ("status",), ("role", "status")):
    declare("users", _eq, (("createdAt", DESC),))

# site content
declare("cmsPages", ("slug",))
declare("cmsPages", (), (("updatedAt", DESC),))
declare("cmsPages", ("published",), (("updatedAt", DESC),))
declare("pricingPlans", ("slug",))
declare("pricingPlans", (), (("sortOrder", ASC),))
declare("pricingPlans", ("active",), (("sortOrder", ASC),))
declare("navLinks", ("section",), (("sortOrder", ASC),))
declare("navLinks", ("section", "visible"), (("sortOrder", ASC),))

# billing
declare("subscriptions", ("userId",))

# costs (pulls: every deployment's owner; reads: per user or all, by time/date range)
declare("deployments", (), (("userId", ASC),))  # the fan-out, a user's deployments adjacent (single-field index)
declare("costSnapshots", ("userId",), (("fetchedAt", ASC),))
declare("costSnapshots", (), (("fetchedAt", ASC),))
declare("costSnapshots", ("fetchedAt",))
declare("openrouterActivity", ("userId",), (("date", ASC),))
declare("openrouterActivity", (), (("date", ASC),))
declare("costRuns", ("kind",), (("scheduleTime", DESC),))
declare("costRunBatches", ("runId",))
declare("subscriptions", ("stripeCustomerId",))  # webhook lookup
declare("subscriptions", ("status",))  # reconciliation pages through open subscriptions
# knowledge (shared/knowledge): per-user vector search, newest-first lists, deletes by user/source
declare("knowledge", ("userId",), vector="embedding")
declare("knowledge", ("userId",), vector="embeddingAlt")  # the second slot (shared/knowledge/space.py)
declare("knowledge", ("userId", "embeddingVersion"))  # re-embedding: a user's chunks holding a version
declare("knowledge", ("userId", "embeddingAltVersion"))
declare("knowledge", ("userId",))
declare("knowledge", ("userId", "source"))
declare("knowledge", ("userId",), (("createdAt", DESC),))
declare("knowledge", ("userId", "source"), (("createdAt", DESC),))

# media (shared/api/media.py): the user's media, newest first, optionally by type
declare("media", ("userId",), (("createdAt", DESC),))
declare("media", ("userId", "type"), (("createdAt", DESC),))
declare("mediaShares", ("token",))  # a share link's token (internal collection, shared/media/shares.py)
# deployments
declare("deployments", ("userId",), (("createdAt", DESC),))
declare("deployments", ("userId", "status"), (("createdAt", DESC),))
declare("deployJobs", ("deploymentId",))  # by id: job ids sort newest first
declare("deployJobs", ("userId",))  # a user's jobs across deployments, newest first by id
declare("deployJobs", ("userId", "status"))  # ... of one status (composite userId, status)
declare("pluginConfigs", ("deploymentId",))
declare("skillConfigs", ("deploymentId",))
declare("apiKeyRegistry", ("deploymentId",))

# notifications (shared/notifications): a user's list (all or unread), webhooks, delivery logs, the sweep
declare("notifications", ("userId",), (("createdAt", DESC),))
declare("notifications", ("userId", "readAt"), (("createdAt", DESC),))
declare("webhooks", ("userId",))
declare("webhookDeliveries", ("userId",), (("createdAt", DESC),))
declare("webhookDeliveries", ("webhookId",), (("createdAt", DESC),))
declare("webhookDeliveries", ("status",), (("sweepAt", ASC),))
# bot health (shared/health): the check reads only deployments whose deadline passed
declare("deploymentHealth", (), (("healthDeadline", ASC),))
# audit log (shared/audit.py): a user's own, an admin's by one filter, newest first (with a time range)
for _eq in ((), ("actingAs",), ("actorId",), ("function",), ("outcome",)):
    declare("auditLog", _eq, (("at", DESC),))

# backups (shared/backups): the owner's bots with backups, newest first; the cleanup's expired records
declare("botBackups", ("userId",), (("createdAt", DESC),))
declare("botBackups", (), (("expireAt", ASC),))
