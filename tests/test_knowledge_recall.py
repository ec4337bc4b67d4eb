"""Recall on 5,000 stored chunks: the top 10 from search (Firestore find_nearest
pre-filtered on userId) equals an exact numpy brute-force top 10."""
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from shared import clock, embeddings
from shared.knowledge import store, vectors
from shared.models import Knowledge

N, DIM = 5000, 1536


def write_chunks(user_id: str, vecs: np.ndarray, prefix: str) -> list[str]:
    now = clock.now_ms()
    items = [Knowledge(_id=f"{prefix}{i:05d}", userId=user_id, text=f"chunk {i}", source=f"src{i % 7}",
                       createdAt=now + i) for i in range(len(vecs))]
    step = store.WRITE_BATCH
    with ThreadPoolExecutor(4) as pool:  # batched writes, a few commits in flight
        list(pool.map(lambda s: store.write_chunks(items[s:s + step], vecs[s:s + step]),
                      range(0, len(items), step)))
    return [i.id for i in items]


def test_search_top10_equals_bruteforce_on_5000_chunks(kb, callers):
    rng = np.random.default_rng(42)
    owner, other = callers["owner"].user_id, callers["other"].user_id
    vecs = vectors.normalise(rng.standard_normal((N, DIM)))
    started = time.monotonic()
    ids = np.asarray(write_chunks(owner, vecs, "k"))
    queries = [rng.standard_normal(DIM) for _ in range(4)]
    queries += [vecs[17] + 0.3 * rng.standard_normal(DIM)]  # near a stored chunk
    # another user's chunks sit right on the queries: the userId pre-filter must keep them out
    write_chunks(other, vectors.normalise(np.stack(queries)), "x")
    print(f"wrote {N + len(queries)} chunks in {time.monotonic() - started:.1f}s")
    for q in queries:
        expect = ids[vectors.top_k(q, vecs, 10)].tolist()
        r = kb("POST", "/knowledge/search", callers["owner"], json={"vector": q.tolist(), "limit": 10})
        assert r.status_code == 200, r.json
        got = r.json["items"]
        assert [i["_id"] for i in got] == expect
        sims = vecs[vectors.top_k(q, vecs, 10)] @ vectors.normalise(q)
        assert np.allclose([i["score"] for i in got], sims, atol=1e-6)
    # a text query goes through the embeddings API first
    qv = embeddings.get().embed(["what is in chunk seventeen"])[0]
    r = kb("POST", "/knowledge/search", callers["owner"], json={"query": "what is in chunk seventeen", "limit": 100})
    assert [i["_id"] for i in r.json["items"]] == ids[vectors.top_k(qv, vecs, 100)].tolist()
