"""The vector math of the knowledge base, in numpy: normalising, near-duplicate
removal, maximal marginal relevance re-ranking, and exact (brute-force) top-k."""
from __future__ import annotations

import numpy as np


def normalise(m: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (so cosine similarity is a dot product)."""
    m = np.asarray(m, dtype=np.float64)
    if not np.all(np.isfinite(m)):
        raise ValueError("vectors must be finite and non-zero")
    scale = np.max(np.abs(m), axis=-1, keepdims=True)  # scaled first: squares of 1e200 overflow to inf
    if np.any(scale == 0):
        raise ValueError("vectors must be finite and non-zero")
    m = m / scale
    return m / np.linalg.norm(m, axis=-1, keepdims=True)


def unique_rows(m: np.ndarray, threshold: float) -> np.ndarray:
    """Indices of the rows to keep: each row is dropped when its cosine with an
    earlier kept row is >= threshold (rows are unit length)."""
    sims = m @ m.T
    keep: list[int] = []
    for i in range(len(m)):
        if not keep or sims[i, keep].max() < threshold:
            keep.append(i)
    return np.asarray(keep, dtype=int)


def mmr(query: np.ndarray, candidates: np.ndarray, k: int, lam: float) -> list[int]:
    """Maximal marginal relevance: pick k candidates one by one, each maximising
    lam * similarity(query) - (1 - lam) * max similarity to the ones picked."""
    relevance = candidates @ query
    pairwise = candidates @ candidates.T
    picked: list[int] = []
    redundancy = np.full(len(candidates), -np.inf)
    available = np.ones(len(candidates), dtype=bool)
    for _ in range(min(k, len(candidates))):
        score = lam * relevance - (1 - lam) * redundancy if picked else relevance
        score = np.where(available, score, -np.inf)
        best = int(np.argmax(score))
        picked.append(best)
        available[best] = False
        redundancy = np.maximum(redundancy, pairwise[best])
    return picked


def top_k(query: np.ndarray, m: np.ndarray, k: int) -> np.ndarray:
    """Exact top-k rows by cosine similarity, best first."""
    sims = normalise(m) @ normalise(query)
    k = min(k, len(sims))
    idx = np.argpartition(-sims, k - 1)[:k]
    return idx[np.argsort(-sims[idx], kind="stable")]
