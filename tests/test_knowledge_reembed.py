"""Re-embedding (issue 14, item 6): an admin job moves every chunk to the configured embedding model
in bounded batches through Cloud Tasks, resumable and without double work, and search never mixes two
models' vectors: a user's search moves at once when all their chunks are re-embedded. The embeddings
stand-in gives each model its own vectors, so a score tells which model's vectors were compared."""
from __future__ import annotations

import os
import time

import pytest

from devtools.standins.openai_embeddings import embed as standin_embed
from shared import repos

NEW_MODEL = "text-embedding-3-large"
TEXTS = {"alpha": "alpha apples grow in the orchard", "beta": "beta bicycles need new brakes",
         "gamma": "gamma rays come from distant stars"}


def _reset():
    from shared import embeddings, tasks
    from shared.knowledge import settings

    for cached in (embeddings.settings, embeddings.get, embeddings.for_version, settings.reembed, tasks.client):
        getattr(cached, "cache_clear", lambda: None)()  # for_version may be a test's wrapper


@pytest.fixture
def reembed_env(kb_stack, live_url):
    kb_stack.tasks(["knowledge-reembed"], max_retries=20)
    kb_stack.apply_env()
    env = {"KNOWLEDGE_REEMBED_WORKER_URL": f"{live_url}/knowledgeReembedWorker", "KNOWLEDGE_REEMBED_SETTLE_S": "0",
           "KNOWLEDGE_REEMBED_BATCH": "2", "KNOWLEDGE_REEMBED_LEASE_S": "60"}
    os.environ.update(env)
    _reset()
    yield
    for key in (*env, "EMBEDDINGS_MODEL"):
        os.environ.pop(key, None)
    _reset()


def use_model(model: str) -> None:
    os.environ["EMBEDDINGS_MODEL"] = model
    _reset()


def expected_score(model: str, query: str, text: str) -> float:
    return float(standin_embed(query, 1536, model) @ standin_embed(text, 1536, model))


def top(api, caller, query: str) -> dict:
    r = api("POST", "/knowledge/search", caller, json={"query": query, "limit": 1})
    assert r.status_code == 200, r.json
    return r.json["items"][0]


def ingest_all(api, caller, names) -> None:
    for name in names:
        assert api("POST", "/knowledge", caller, json={"text": TEXTS[name], "source": name}).status_code == 201


def test_reembedding_moves_every_user_and_search_follows(kb, callers, reembed_env):
    owner, other, admin = callers["owner"], callers["other"], callers["admin"]
    ingest_all(kb, owner, ("alpha", "beta", "gamma"))
    ingest_all(kb, other, ("beta",))
    use_model(NEW_MODEL)  # deployed with a new model: search keeps the old one until re-embedded
    hit = top(kb, owner, "apples orchard")
    assert hit["source"] == "alpha"
    assert hit["score"] == pytest.approx(expected_score("text-embedding-3-small", "apples orchard", TEXTS["alpha"]),
                                         abs=1e-3)
    r = kb("POST", "/knowledge/reembed", admin)
    assert r.status_code == 202 and r.json["started"] is True
    assert r.json["target"] == {"model": NEW_MODEL, "dimensions": 1536, "slot": "embeddingAlt"}
    run_id = r.json["run"]["runId"]
    deadline = time.monotonic() + 60
    while (report := kb("GET", "/knowledge/reembed", admin).json)["run"]["status"] != "completed":
        assert time.monotonic() < deadline, report
        time.sleep(0.2)
    run = report["run"]
    assert report["active"] == {"model": NEW_MODEL, "dimensions": 1536, "slot": "embeddingAlt"}
    assert report["target"] is None and run["runId"] == run_id
    assert run["usersDone"] == run["usersTotal"] >= 2 and run["chunksEmbedded"] == 4 and run["pagesDone"]
    for snap in repos.knowledge.col.stream():
        assert snap.get("embeddingAltVersion") == f"{NEW_MODEL}@1536"
    hit = top(kb, owner, "apples orchard")
    assert hit["source"] == "alpha"
    assert hit["score"] == pytest.approx(expected_score(NEW_MODEL, "apples orchard", TEXTS["alpha"]), abs=1e-3)
    # a new ingest goes to the new version only; running the job again finds nothing to do
    ingest_all(kb, other, ("gamma",))
    assert top(kb, other, "distant stars")["score"] == pytest.approx(
        expected_score(NEW_MODEL, "distant stars", TEXTS["gamma"]), abs=1e-3)
    again = kb("POST", "/knowledge/reembed", admin)
    assert again.status_code == 200 and again.json["started"] is False
    assert again.json["run"]["chunksEmbedded"] == 4 and again.json["run"]["runId"] == run_id
    assert kb("GET", f"/knowledge/reembed/{run_id}", admin).json["run"]["status"] == "completed"
    assert kb("GET", "/knowledge/reembed/nope", admin).status_code == 404


def test_a_crashed_batch_resumes_without_double_work_and_users_switch_one_at_a_time(kb, callers, reembed_env,
                                                                                      monkeypatch):
    """The queue is played by the test (each task called in turn) so the run can be stopped between steps."""
    from shared import embeddings
    from shared.knowledge import reembed, space, store

    queued: list[dict] = []
    monkeypatch.setattr(reembed, "_enqueue", lambda payload, *name, at_ms=None: queued.append(payload))
    embedded: list[str] = []
    real = embeddings.for_version

    class Counting:
        def __init__(self, inner):
            self.inner, self.model, self.dimensions = inner, inner.model, inner.dimensions

        def embed(self, texts):
            if self.model == NEW_MODEL:
                embedded.extend(texts)
            return self.inner.embed(texts)

    monkeypatch.setattr(embeddings, "for_version", lambda m, d: Counting(real(m, d)))
    owner, other, admin = callers["owner"], callers["other"], callers["admin"]
    ingest_all(kb, owner, ("alpha", "beta", "gamma"))
    ingest_all(kb, other, ("alpha",))
    use_model(NEW_MODEL)
    run_id = kb("POST", "/knowledge/reembed", admin).json["run"]["runId"]
    page = queued.pop()
    assert page == {"runId": run_id, "kind": "users", "page": 0, "cursor": None}
    reembed.users_page(run_id, 0, None)
    user_tasks = {t["userId"]: t for t in queued if t["kind"] == "user"}
    queued.clear()
    assert {owner.user_id, other.user_id} <= set(user_tasks)

    ingest_all(kb, other, ("gamma",))  # during the run: written in both versions
    fresh = [s.to_dict() for s in repos.knowledge.col.stream() if s.get("source") == "gamma"
             and s.get("userId") == other.user_id][0]
    assert fresh["embeddingVersion"] == "text-embedding-3-small@1536"
    assert fresh["embeddingAltVersion"] == f"{NEW_MODEL}@1536"
    assert embedded == [TEXTS["gamma"]]
    embedded.clear()

    real_set = store.set_vectors

    def crash_after_writing(*args):
        real_set(*args)
        raise RuntimeError("the worker died")

    monkeypatch.setattr(store, "set_vectors", crash_after_writing)
    with pytest.raises(RuntimeError):
        reembed.user_batch(run_id, owner.user_id, 0, None)
    monkeypatch.setattr(store, "set_vectors", real_set)
    assert len(embedded) == 2  # the first batch of two was embedded and written, then the worker died
    with pytest.raises(reembed.Retry):  # the queue's retry while the dead delivery's lease holds
        reembed.user_batch(run_id, owner.user_id, 0, None)
    reembed._progress_ref(run_id, owner.user_id).update({"leaseUntil": 0})  # the lease runs out
    assert reembed.user_batch(run_id, owner.user_id, 0, None) == {"embedded": 0, "more": True}
    assert len(embedded) == 2  # resumed: nothing embedded twice
    assert reembed.user_batch(run_id, owner.user_id, 0, None) == {"skipped": "duplicate"}  # a redelivery
    nxt = queued.pop()
    assert nxt["userId"] == owner.user_id and nxt["cursor"]
    assert reembed.user_batch(run_id, owner.user_id, 0, nxt["cursor"])["switched"] is True
    assert len(embedded) == 3  # each of the owner's chunks once (no search has run yet)

    # the owner searches the new version, the other user (not switched yet) still the old one
    assert space.of_user(owner.user_id)[0].model == NEW_MODEL
    assert top(kb, owner, "bicycles brakes")["score"] == pytest.approx(
        expected_score(NEW_MODEL, "bicycles brakes", TEXTS["beta"]), abs=1e-3)
    assert top(kb, other, "apples orchard")["score"] == pytest.approx(
        expected_score("text-embedding-3-small", "apples orchard", TEXTS["alpha"]), abs=1e-3)
    assert reembed.report(run_id)["run"]["status"] == "running"

    for user_id in user_tasks:  # the rest of the run
        if user_id == owner.user_id:
            continue
        result = reembed.user_batch(run_id, user_id, 0, None)
        while queued:
            t = queued.pop()
            result = reembed.user_batch(run_id, t["userId"], t["round"], t["cursor"])
        assert result.get("switched") is True, result
    report = reembed.report(run_id)
    assert report["run"]["status"] == "completed" and report["active"]["model"] == NEW_MODEL
    # every chunk went through a recorded batch once: the crashed batch's two (written before the crash)
    # and other's gamma (ingested in both versions) count as already holding the new version
    assert (report["run"]["chunksEmbedded"], report["run"]["chunksSkipped"]) == (2, 3)
    assert top(kb, other, "apples orchard")["score"] == pytest.approx(
        expected_score(NEW_MODEL, "apples orchard", TEXTS["alpha"]), abs=1e-3)
    assert top(kb, other, "distant stars")["source"] == "gamma"
    # every chunk once in the new version (the one ingested meanwhile: by its ingest)
    assert len([t for t in embedded if t in TEXTS.values()]) == 4
