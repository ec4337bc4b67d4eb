"""The `knowledge` function against the Firestore emulator (vector search
included) and the OpenAI-format embeddings server."""
import os

import numpy as np
from knowledge_support import reset_caches

from devtools.standins.openai_embeddings import embed
from shared import repos

COOKING = ("Apple pie needs apples, cinnamon, sugar and butter. Bake the pie for forty minutes. "
           "Serve the apple pie warm with vanilla ice cream.")
CARS = "The engine of the car needs oil. Change the car oil and the brake fluid every year."
PLANTS = "Water the tomato plants in the morning. Tomato plants like sun, compost and warm soil."


def ingest(kb, caller, text, source="notes", headers=None):
    r = kb("POST", "/knowledge", caller, json={"text": text, "source": source}, headers=headers)
    assert r.status_code == 201, r.json
    return r.json


def search(kb, caller, headers=None, **body):
    return kb("POST", "/knowledge/search", caller, json=body, headers=headers)


def test_ingest_chunks_embeds_and_stores_vectors(kb, callers):
    long_text = " ".join(f"Fact {i}: " + " ".join(f"term{i}x{j}" for j in range(8)) + "." for i in range(80))
    out = ingest(kb, callers["owner"], long_text, "long.txt")
    assert out["chunks"] > 3 and out["stored"] == out["chunks"] and out["duplicates"] == 0
    stored = [repos.knowledge.require(i) for i in out["ids"]]
    assert all(k.userId == callers["owner"].user_id and k.source == "long.txt" for k in stored)
    assert all(len(k.text) <= 1200 for k in stored)
    first = np.asarray(stored[0].embedding)
    assert first.shape == (1536,) and abs(np.linalg.norm(first) - 1) < 1e-6  # normalised
    assert np.allclose(first, embed(stored[0].text), atol=1e-6)  # the embeddings API's vector


def test_search_by_text_ranks_relevant_chunk_first_with_scores(kb, callers):
    for text, src in ((COOKING, "cooking"), (CARS, "cars"), (PLANTS, "garden")):
        ingest(kb, callers["owner"], text, src)
    r = search(kb, callers["owner"], query="how long to bake an apple pie", limit=3)
    assert r.status_code == 200, r.json
    items = r.json["items"]
    assert [i["source"] for i in items][0] == "cooking"
    assert len(items) == 3 and items[0]["score"] > items[1]["score"] >= items[2]["score"]
    assert "embedding" not in items[0] and items[0]["_id"]


def test_search_by_vector_sees_only_the_callers_chunks(kb, callers):
    ingest(kb, callers["owner"], COOKING, "cooking")
    ingest(kb, callers["other"], COOKING, "cooking")  # the same text, another user
    vec = embed(COOKING).tolist()
    mine = search(kb, callers["owner"], vector=vec, limit=10).json["items"]
    assert len(mine) == 1 and mine[0]["userId"] == callers["owner"].user_id
    assert mine[0]["score"] > 0.999


def test_near_duplicates_are_skipped_on_ingest(kb, callers):
    first = ingest(kb, callers["owner"], CARS, "a")
    again = ingest(kb, callers["owner"], CARS + " ", "b")  # same content again
    assert first["stored"] == 1 and again == {**again, "stored": 0, "duplicates": 1, "ids": []}
    para = "Compost feeds the soil and the worms. " * 28
    unique = " ".join(f"uniq{j}" for j in range(150))
    text = (para + "\n\n") * 4 + unique  # repeated paragraphs inside one text, then a new one
    out = ingest(kb, callers["owner"], text, "c")
    assert out["duplicates"] >= 2 and 2 <= out["stored"] < out["chunks"]
    texts = [repos.knowledge.require(i).text for i in out["ids"]]
    assert any("uniq149" in t for t in texts) and any("Compost" in t for t in texts)


def test_mmr_reranks_for_diversity(kb, callers):
    base = "apple banana cherry date elderberry fig grape"
    variants = [base + " kiwi", base + " lemon", base + " mango", "apple melon pear plum orange"]
    for i, t in enumerate(variants):
        ingest(kb, callers["owner"], t, f"s{i}")
    plain = search(kb, callers["owner"], query=base, limit=2).json["items"]
    diverse = search(kb, callers["owner"], query=base, limit=2, mmr=True, mmrLambda=0.3).json["items"]
    assert {i["source"] for i in plain} <= {"s0", "s1", "s2"}
    assert diverse[0]["source"] in {"s0", "s1", "s2"} and diverse[1]["source"] == "s3"


def test_list_newest_first_paginated_and_by_source(kb, callers):
    ids = []
    for i in range(5):
        ids += ingest(kb, callers["owner"], f"note number {i} about subject{i}", "a" if i % 2 else "b")["ids"]
    ingest(kb, callers["other"], "someone else's note", "a")
    seen, cursor = [], None
    while True:
        r = kb("GET", "/knowledge?limit=2" + (f"&cursor={cursor}" if cursor else ""), callers["owner"])
        assert r.status_code == 200
        seen += r.json["items"]
        cursor = r.json["nextCursor"]
        if not cursor:
            break
    assert [i["_id"] for i in seen] == ids[::-1]
    assert all("embedding" not in i for i in seen)
    only_a = kb("GET", "/knowledge?source=a", callers["owner"]).json["items"]
    assert [i["_id"] for i in only_a] == [ids[3], ids[1]]


def test_delete_one_by_source_and_all(kb, callers):
    a = ingest(kb, callers["owner"], CARS, "a")["ids"][0]
    ingest(kb, callers["owner"], COOKING, "b")
    ingest(kb, callers["owner"], PLANTS, "b")
    theirs = ingest(kb, callers["other"], PLANTS, "b")["ids"][0]
    assert kb("DELETE", f"/knowledge/{theirs}", callers["owner"]).status_code == 404
    assert kb("DELETE", f"/knowledge/{a}", callers["owner"]).status_code == 204
    assert kb("GET", f"/knowledge/{a}", callers["owner"]).status_code == 404
    assert kb("DELETE", "/knowledge?source=b", callers["owner"]).json == {"deleted": 2}
    ingest(kb, callers["owner"], CARS, "c")
    assert kb("DELETE", "/knowledge", callers["owner"]).status_code == 400  # neither source nor all
    assert kb("DELETE", "/knowledge?all=true", callers["owner"]).json == {"deleted": 1}
    assert kb("GET", "/knowledge", callers["owner"]).json["items"] == []
    assert repos.knowledge.get(theirs) is not None  # other users' chunks untouched


def test_bad_input_gets_the_reason(kb, callers):
    owner = callers["owner"]
    cases = [
        ({"text": "   ", "source": "x"}, "/knowledge", "text"),
        ({"text": "x" * 100_001, "source": "x"}, "/knowledge", "text"),
        ({"text": "ok"}, "/knowledge", "source"),
        ({"vector": [0.1] * 1535}, "/knowledge/search", "1536 dimensions"),
        ({"query": "x", "limit": 0}, "/knowledge/search", "limit"),
        ({"query": "x", "limit": 101}, "/knowledge/search", "limit"),
        ({"query": "x", "vector": [0.1] * 1536}, "/knowledge/search", "exactly one"),
        ({}, "/knowledge/search", "exactly one"),
    ]
    for body, path, reason in cases:
        r = kb("POST", path, owner, json=body)
        # a vector of another size than the user's embedding space: 409 (the space decides, not the schema)
        assert r.status_code in ((409,) if "dimensions" in reason else (400, 413, 422)), (body, r.status_code)
        assert reason in r.json["error"]["message"] or reason in str(r.json["error"].get("details")), r.json
    r = kb("POST", "/knowledge/search", owner, json={"vector": [0.0] * 1536})
    assert r.status_code == 422 and "non-zero" in r.json["error"]["message"]
    assert kb("POST", "/knowledge/search", callers["anonymous"], json={"query": "x"}).status_code == 401
    assert kb("POST", "/knowledge", callers["suspended"], json={"text": "x", "source": "s"}).status_code == 403
    assert repos.knowledge.all({"userId": owner.user_id}) == []  # nothing half-written


def test_embeddings_provider_failure_is_502_and_writes_nothing(kb, callers, monkeypatch):
    base = os.environ["OPENAI_BASE_URL"]
    monkeypatch.setenv("OPENAI_BASE_URL", base.replace("/v1", "/wrong"))  # the stand-in answers 404
    reset_caches()
    try:
        r = kb("POST", "/knowledge", callers["owner"], json={"text": CARS, "source": "s"})
        assert r.status_code == 502 and r.json["error"]["code"] == "embeddings_failed"
        assert repos.knowledge.all({"userId": callers["owner"].user_id}) == []
    finally:
        monkeypatch.undo()
        reset_caches()


def test_text_making_too_many_chunks_is_413(kb, callers, monkeypatch):
    monkeypatch.setenv("KNOWLEDGE_CHUNK_CHARS", "200")
    monkeypatch.setenv("KNOWLEDGE_CHUNK_OVERLAP", "0")
    reset_caches()
    try:
        text = " ".join(f"word{i}" for i in range(9000))  # ~80,000 characters: ~400 chunks of 200
        r = kb("POST", "/knowledge", callers["owner"], json={"text": text, "source": "big"})
        assert r.status_code == 413 and "at most 200" in r.json["error"]["message"]
        assert repos.knowledge.all({"userId": callers["owner"].user_id}) == []
    finally:
        monkeypatch.undo()
        reset_caches()


def test_list_and_search_cost_their_page_size_plus_a_constant(kb, callers):
    from devtools.firestore_meter import metered
    from shared.knowledge import store, vectors
    from shared.models import Knowledge

    owner = callers["owner"]
    kb("GET", "/users/me", owner)  # the user exists and was just seen: no write while measured
    rng = np.random.default_rng(3)
    items = [Knowledge(_id=f"c{i:02d}", userId=owner.user_id, text=f"t{i}", source="s", createdAt=i) for i in range(30)]
    store.write_chunks(items, vectors.normalise(rng.standard_normal((30, 1536))))

    def cost(method, path, body=None):
        with metered() as m:
            r = kb(method, path, owner, json=body)
        assert r.status_code == 200, r.json
        return m.reads, m.writes

    vec = rng.standard_normal(1536).tolist()
    for call in (lambda n: cost("GET", f"/knowledge?limit={n}"),
                 lambda n: cost("POST", "/knowledge/search", {"vector": vec, "limit": n})):
        small, big = call(2), call(7)
        # writes: the rate-limit counter (a search is a POST that only reads: no audit entry)
        assert big[0] - small[0] == 5 and small[1] == big[1] == 1
        # the hits (+ a list's look-ahead row), the caller's user, and for a search the user's embedding
        # space (its own document and the installation's: shared/knowledge/space.py)
        assert small[0] <= 2 + 2 + 2
