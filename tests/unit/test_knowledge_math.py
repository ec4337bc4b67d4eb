"""Chunking and the numpy vector math of the knowledge base (no services needed)."""
import numpy as np
import pytest

from shared.knowledge import chunking, vectors

WORDS = [f"w{i}" for i in range(3000)]


def test_short_text_is_one_chunk_and_blank_is_none():
    assert chunking.chunk("  hello \t world  ", 100, 20) == ["hello world"]
    assert chunking.chunk(" \n\t ", 100, 20) == []


@pytest.mark.parametrize("size,overlap", [(200, 0), (200, 50), (1200, 200)])
def test_chunks_are_bounded_overlap_and_cover_every_word(size, overlap):
    text = ". ".join(" ".join(WORDS[i:i + 9]) for i in range(0, len(WORDS), 9))
    chunks = chunking.chunk(text, size, overlap)
    assert len(chunks) > 1 and all(0 < len(c) <= size for c in chunks)
    seen = set(" ".join(chunks).replace(".", " ").split())
    assert seen == set(WORDS)
    for a, b in zip(chunks, chunks[1:]):
        shared = set(a.replace(".", " ").split()) & set(b.replace(".", " ").split())
        assert bool(shared) == (overlap > 0)  # consecutive chunks share words exactly when overlapping


def test_cuts_prefer_paragraphs_then_sentences():
    para = "First paragraph sentence one. " * 5
    text = (para.strip() + "\n\n") * 6
    chunks = chunking.chunk(text, 400, 0)
    assert all(c.endswith(".") for c in chunks)  # never cut mid-sentence when a break is near


def test_normalise_rejects_zero_and_nan():
    m = vectors.normalise(np.array([[3.0, 4.0], [0.0, 2.0]]))
    assert np.allclose(np.linalg.norm(m, axis=1), 1)
    for bad in ([[0.0, 0.0]], [[np.nan, 1.0]]):
        with pytest.raises(ValueError):
            vectors.normalise(np.array(bad))


def test_normalise_survives_extreme_magnitudes():
    """Finite values whose squares overflow (or underflow) still give unit vectors, not zeros."""
    for value in (1e308, 5e-324):
        m = vectors.normalise(np.full((2, 1536), value))
        assert np.allclose(np.linalg.norm(m, axis=1), 1) and np.allclose(m, 1 / np.sqrt(1536))


def test_unique_rows_drops_near_duplicates_keeps_first():
    rng = np.random.default_rng(0)
    base = vectors.normalise(rng.standard_normal((4, 64)))
    near = vectors.normalise(base[1] + 0.01 * rng.standard_normal(64))
    m = np.vstack([base, near, base[2]])
    assert vectors.unique_rows(m, 0.97).tolist() == [0, 1, 2, 3]


def test_mmr_trades_relevance_for_diversity():
    q = np.array([1.0, 0.0, 0.0])
    cands = vectors.normalise(np.array([[1.0, 0.1, 0.0], [1.0, 0.12, 0.0], [0.7, 0.0, 0.7]]))
    assert vectors.mmr(q, cands, 2, 1.0) == [0, 1]  # pure relevance
    assert vectors.mmr(q, cands, 2, 0.5) == [0, 2]  # the near-copy of the first is passed over
    assert sorted(vectors.mmr(q, cands, 5, 0.5)) == [0, 1, 2]


def test_top_k_is_exact():
    rng = np.random.default_rng(1)
    m, q = rng.standard_normal((500, 32)), rng.standard_normal(32)
    sims = vectors.normalise(m) @ vectors.normalise(q)
    assert vectors.top_k(q, m, 10).tolist() == np.argsort(-sims)[:10].tolist()
