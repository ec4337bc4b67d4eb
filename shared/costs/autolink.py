"""Automatic cost attribution: each user's provider scopes from what their deployments already hold,
so every deployed user sees their costs without an admin step. An admin's mapping (costAccounts,
`PUT /costs/accounts/{userId}`) still wins, source by source.

- OpenRouter: a deployment's `openrouter-api-key` (Secret Manager) is asked about itself,
  `GET /api/v1/key` with that key: its `usage` and `limit`/`limit_remaining` (the balance of a key with
  a limit). For activity (per model and day) the key's hash is needed: the operator's keys are listed
  with the management key (`GET /api/v1/keys`, paged by `offset`) and the one whose `label` (the key
  redacted: its start and end) fits and whose `usage` equals the key's own is taken. A key of another
  OpenRouter account (the customer's own) has no hash here: its balance is reported, its activity
  cannot be (the management key sees only the operator's account).
- OpenAI: a deployment's `openai-api-key` is matched against the operator's projects (admin key:
  `GET /v1/organization/projects`, then each project's `GET .../api_keys`, whose `redacted_value`
  keeps the key's start and end); the project holding exactly one match is the user's project.

What was derived is kept on the user's costAccounts document (`auto`: per key fingerprint, the hash or
project found), so later pulls make no listing calls until a key changes. Listings are made once per
batch, and only when some key of the batch is new.
"""
from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict

from shared import logs
from shared.costs.ledger import CostAccount, accounts
from shared.costs.providers import Provider, ProviderError
from shared.db import client

log = logs.get("costs.autolink")
OPENROUTER_KEY, OPENAI_KEY = "openrouter-api-key", "openai-api-key"


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class CurrentKey(_Lenient):  # GET /api/v1/key (the key itself)
    label: str = ""
    usage: float = 0
    usage_monthly: float | None = None
    limit: float | None = None
    limit_remaining: float | None = None


class CurrentKeyResponse(_Lenient):
    data: CurrentKey


class ListedKey(_Lenient):  # GET /api/v1/keys (management)
    hash: str
    label: str = ""
    usage: float = 0


class KeysPage(_Lenient):
    data: list[ListedKey]


class Project(_Lenient):
    id: str


class ProjectKey(_Lenient):
    redacted_value: str = ""


class ListPage(_Lenient):
    data: list[dict]
    has_more: bool = False
    last_id: str | None = None


def fingerprint(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def fits(redacted: str, key: str) -> bool:
    """`sk-or-v1-ab1...f9e` (OpenRouter's label) or `sk-abc...xyz` (OpenAI's redacted_value) shows the
    key's start and end."""
    head, sep, tail = redacted.partition("...")
    if not sep:
        head, sep, tail = redacted.partition("*")
        tail = tail.lstrip("*")
    return bool(sep) and len(head) + len(tail) >= 6 and key.startswith(head) and key.endswith(tail)


@dataclass
class Scope:
    """What to pull for one user (the admin mapping, else what was derived)."""
    openrouter_hashes: list[str] = field(default_factory=list)
    openrouter_keys: list[tuple[CurrentKey, str | None]] = field(default_factory=list)  # derived: (its own view, hash)
    openai_projects: list[str] = field(default_factory=list)
    derived: dict = field(default_factory=dict)  # fingerprint -> {"hash"|"project": ...}, to store
    changed: bool = False


def _unmapped(acct: CostAccount | None) -> tuple[str, ...]:
    """The key names whose source the admin has not mapped (a mapped source ignores the deployments' keys)."""
    if acct is None:
        return OPENROUTER_KEY, OPENAI_KEY
    return tuple(name for name, mapped in ((OPENROUTER_KEY, acct.openrouterKeyHash), (OPENAI_KEY, acct.openaiProjectId))
                 if not mapped)


def _read_keys(users: list[dict], accts: dict[str, CostAccount]) -> dict[str, dict[str, list[str]]]:
    """userId -> key name -> the raw keys of the user's deployments (registry: one batched read of the
    entries of the sources the admin has not mapped)."""
    from shared.deploy import secrets

    db = client()
    wanted = [(u["userId"], d["id"], name)
              for u in users for d in u["deployments"] for name in _unmapped(accts.get(u["userId"]))]
    refs = [db.collection("apiKeyRegistry").document(f"{dep}_{name}") for _, dep, name in wanted]
    present = {s.id for s in db.get_all(refs) if s.exists} if refs else set()
    out: dict[str, dict[str, list[str]]] = {}
    for uid, dep, name in wanted:
        if f"{dep}_{name}" in present:
            try:
                value = secrets.access(dep, name)
            except Exception as exc:  # a key removed meanwhile, or Secret Manager failing: no auto scope
                log.warning("could not read a deployment's key", extra={"deploymentId": dep, "keyName": name,
                                                                         "error": type(exc).__name__})
                continue
            out.setdefault(uid, {}).setdefault(name, []).append(value)
    return out


class Resolver:
    """Per batch: the operator's listings, fetched once and only when needed."""

    def __init__(self, p: Provider):
        self.p = p
        self._or_keys: asyncio.Task | None = None
        self._oa_keys: asyncio.Task | None = None

    async def _openrouter_listing(self) -> list[ListedKey]:
        out: list[ListedKey] = []
        offset = 0
        for _ in range(100):
            page = await self.p.get(f"{self.p.cfg.openrouter_base}/keys", self.p._or_key(), {"offset": offset},
                                    KeysPage)
            if not page.data:
                return out
            out += page.data
            offset += len(page.data)
        return out

    async def _openai_listing(self) -> list[tuple[str, str]]:
        """(project id, redacted key) for every key of every project of the organisation."""
        if not self.p.cfg.openai_key:
            raise ProviderError("OPENAI_ADMIN_KEY is not configured")
        base, key = self.p.cfg.openai_base, self.p.cfg.openai_key

        async def paged(url: str) -> list[dict]:
            items: list[dict] = []
            params: dict[str, object] = {"limit": 100}
            for _ in range(100):
                page = await self.p.get(url, key, params, ListPage)
                items += page.data
                if not page.has_more or not page.last_id:
                    return items
                params = {"limit": 100, "after": page.last_id}
            return items

        projects = [Project.model_validate(p).id for p in await paged(f"{base}/organization/projects")]
        keys = await asyncio.gather(*(paged(f"{base}/organization/projects/{pid}/api_keys") for pid in projects))
        return [(pid, ProjectKey.model_validate(k).redacted_value) for pid, ks in zip(projects, keys) for k in ks]

    async def openrouter_hash(self, key: str, own: CurrentKey) -> str | None:
        if self._or_keys is None:
            self._or_keys = asyncio.ensure_future(self._openrouter_listing())
        listed = await asyncio.shield(self._or_keys)
        fitting = [k for k in listed if fits(k.label, key)]
        if len(fitting) > 1:  # a short label may fit several keys: the usage tells them apart
            fitting = [k for k in fitting if abs(k.usage - own.usage) < 1e-9]
        return fitting[0].hash if len(fitting) == 1 else None

    async def openai_project(self, key: str) -> str | None:
        if self._oa_keys is None:
            self._oa_keys = asyncio.ensure_future(self._openai_listing())
        found = {pid for pid, redacted in await asyncio.shield(self._oa_keys) if fits(redacted, key)}
        return found.pop() if len(found) == 1 else None


async def scope_for(r: Resolver, acct: CostAccount | None, keys: dict[str, list[str]]) -> Scope:
    """The user's scope. Raises ProviderError like any provider call (the user then fails, retried)."""
    s = Scope()
    known = dict((acct.auto or {}) if acct else {})
    if acct and acct.openrouterKeyHash:
        s.openrouter_hashes = [acct.openrouterKeyHash]
    else:
        for key in keys.get(OPENROUTER_KEY, []):
            try:
                own = (await r.p.get(f"{r.p.cfg.openrouter_base}/key", key, {}, CurrentKeyResponse)).data
            except ProviderError as exc:
                if exc.transient:
                    raise
                log.warning("a deployment's OpenRouter key was refused", extra={"error": str(exc)})
                continue  # revoked or mistyped: nothing to attribute to it
            fp = fingerprint(key)
            if fp not in known:
                known[fp], s.changed = {"hash": await r.openrouter_hash(key, own)}, True
            s.openrouter_keys.append((own, known[fp].get("hash")))
            if known[fp].get("hash"):
                s.openrouter_hashes.append(known[fp]["hash"])
    if acct and acct.openaiProjectId:
        s.openai_projects = [acct.openaiProjectId]
    else:
        for key in keys.get(OPENAI_KEY, []):
            fp = fingerprint(key)
            if fp not in known:
                known[fp], s.changed = {"project": await r.openai_project(key)}, True
            if known[fp].get("project") and known[fp]["project"] not in s.openai_projects:
                s.openai_projects.append(known[fp]["project"])
    s.derived = known
    return s


async def scopes(p: Provider, users: list[dict], accts: dict[str, CostAccount]) -> dict[str, Scope | ProviderError]:
    keys = await asyncio.to_thread(_read_keys, users, accts)
    r = Resolver(p)

    async def one(uid: str):
        try:
            return await scope_for(r, accts.get(uid), keys.get(uid, {}))
        except ProviderError as exc:
            return exc

    found = await asyncio.gather(*(one(u["userId"]) for u in users))
    return {u["userId"]: s for u, s in zip(users, found)}


def remember(found: dict[str, Scope | ProviderError], now: int) -> None:
    """Keep what was derived (merge: an admin's fields on the same document are left alone)."""
    db = client()
    batch, n = db.batch(), 0
    for uid, s in found.items():
        if isinstance(s, Scope) and s.changed:
            batch.set(accounts.ref(uid), {"auto": s.derived, "autoUpdatedAt": now}, merge=True)
            n += 1
    if n:
        batch.commit()
