"""Which embedding version a user's search and ingest use: never two models at once.

A version is (model, dimensions). A chunk has two vector slots, `embedding` (SCHEMA.md) and
`embeddingAlt`, each tagged with the version it holds (`embeddingVersion`, `embeddingAltVersion`;
chunks from before versions existed hold LEGACY in `embedding`, untagged: searched as LEGACY, and
re-embedded by the first run). A user's *space* is the
slot and version their search reads: their own `knowledgeSpaces/{userId}` document once the
re-embedding job switched them, else the installation's `knowledgeModel/current` {active, target}.

- Search embeds the query with the space's model and reads only the space's slot, so it never
  compares vectors of two models; the other slot may hold another version meanwhile.
- While a re-embedding run is going (`target` set), ingest writes both: the active slot (what search
  reads now) and the target slot (what it will read), so nothing ingested meanwhile is missed.
- The job switches a user (one document write) only once every chunk of theirs holds the target
  version (shared/knowledge/reembed.py); at the end of the run the installation's `active` becomes the
  target, for users without chunks or created meanwhile (their chunks hold both).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from shared import db

SLOTS = ("embedding", "embeddingAlt")
MODEL = "knowledgeModel"  # internal collection, one document: current
SPACES = "knowledgeSpaces"  # internal collection: per-user space, written when a user is switched


@dataclass(frozen=True)
class Space:
    model: str
    dimensions: int
    slot: str  # one of SLOTS

    @property
    def key(self) -> str:
        return f"{self.model}@{self.dimensions}"

    @property
    def tag(self) -> str:
        """The field naming the version a chunk's `slot` holds."""
        return f"{self.slot}Version"

    def to_store(self) -> dict:
        return asdict(self)

    @classmethod
    def load(cls, data: dict | None) -> Space | None:
        return cls(data["model"], int(data["dimensions"]), data["slot"]) if data else None

    def same_version(self, other: Space | None) -> bool:
        return other is not None and self.key == other.key


LEGACY = Space("text-embedding-3-small", 1536, "embedding")  # what every chunk was made with before versions


def other_slot(slot: str) -> str:
    return SLOTS[1 - SLOTS.index(slot)]


def model_ref():
    return db.client().collection(MODEL).document("current")


def space_ref(user_id: str):
    return db.client().collection(SPACES).document(user_id)


def installation() -> tuple[Space, Space | None, str | None]:
    """(active, target or None, runId or None) of the installation."""
    data = model_ref().get().to_dict() or {}
    return Space.load(data.get("active")) or LEGACY, Space.load(data.get("target")), data.get("runId")


def of_user(user_id: str) -> tuple[Space, Space | None]:
    """(the space search reads, the target ingest also writes or None). Two reads at most."""
    own = Space.load(space_ref(user_id).get().to_dict())
    active, target, _ = installation()
    space = own or active
    return space, (target if target is not None and not target.same_version(space) else None)


def holds(chunk: dict, space: Space) -> bool:
    """Whether a stored chunk's `space.slot` holds `space`'s version (untagged: from before versions,
    re-embedded by the next run whatever it holds)."""
    return chunk.get(space.tag) == space.key
