"""Knowledge-base benchmark: ingest 5,000 chunks, run 200 searches, and compare
each search's top 10 with an exact numpy brute force over the stored vectors.

Runs the knowledge service code (chunking, embeddings through the OpenAI client,
numpy, Firestore vector writes and find_nearest) against the local Firestore
emulator and the OpenAI-format embeddings stand-in. The emulator searches by
brute force in-process, so latencies measure this machine, not Firestore's
production vector index.

    .venv/bin/python bench/knowledge.py [--chunks 5000] [--searches 200]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from devtools.stack import Stack  # noqa: E402

PER_TEXT = 100  # chunks per ingest call (one paragraph each)


def corpus(n_chunks: int, rng: np.random.Generator) -> list[list[str]]:
    """Texts of PER_TEXT paragraphs of ~900 characters, words drawn from a large vocabulary,
    so each paragraph becomes one chunk and no two are near-duplicates."""
    vocab = [f"w{i}" for i in range(50_000)]
    paragraphs = [" ".join(rng.choice(vocab, 140)) for _ in range(n_chunks)]
    return [paragraphs[i:i + PER_TEXT] for i in range(0, n_chunks, PER_TEXT)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chunks", type=int, default=5000)
    ap.add_argument("--searches", type=int, default=200)
    args = ap.parse_args()
    rng = np.random.default_rng(7)
    with Stack() as stack:
        stack.firestore()
        stack.embeddings()
        stack.apply_env()
        os.environ["APP_ENV"] = "local"
        from google.cloud import firestore

        from shared import embeddings, repos
        from shared.knowledge import service, vectors

        user = "u_bench"
        texts = corpus(args.chunks, rng)
        ingest_times, stored = [], 0
        started = time.perf_counter()
        for i, paras in enumerate(texts):
            t = time.perf_counter()
            out = service.ingest(user, "\n\n".join(paras), f"doc{i}")
            ingest_times.append(time.perf_counter() - t)
            stored += out["stored"]
        ingest_s = time.perf_counter() - started

        # the exact answer: numpy over the vectors as stored in Firestore
        q = repos.knowledge.col.where(filter=firestore.FieldFilter("userId", "==", user)).select(["embedding"])
        ids, rows = [], []
        for snap in q.stream():
            ids.append(snap.id)
            rows.append(list(snap.get("embedding")))
        ids, matrix = np.asarray(ids), np.asarray(rows)

        all_paras = [p for paras in texts for p in paras]
        latencies, recalls = [], []
        for _ in range(args.searches):
            words = rng.choice(all_paras[rng.integers(len(all_paras))].split(), 8)
            query = " ".join(words)
            t = time.perf_counter()
            hits = service.search(user, query, None, 10)
            latencies.append(time.perf_counter() - t)
            qv = embeddings.get().embed([query])[0]
            exact = set(ids[vectors.top_k(qv, matrix, 10)].tolist())
            recalls.append(len(exact & {h["_id"] for h in hits}) / 10)

    lat = np.asarray(latencies) * 1000
    print(f"chunks stored           {stored} of {sum(map(len, texts))} ({len(texts)} ingest calls of {PER_TEXT})")
    print(f"ingest                  {stored / ingest_s:.1f} chunks/s  ({ingest_s:.1f} s; "
          f"per call p50 {np.percentile(ingest_times, 50):.2f} s)")
    print(f"search ({len(lat)} queries)    p50 {np.percentile(lat, 50):.1f} ms  p99 {np.percentile(lat, 99):.1f} ms "
          f"(embed + find_nearest, top 10)")
    print(f"recall@10 vs numpy      mean {np.mean(recalls):.4f}  min {np.min(recalls):.2f}  "
          f"(over {len(ids)} stored vectors)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
