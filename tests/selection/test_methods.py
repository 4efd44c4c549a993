"""Target-aware selection (curriculab.selection): recovery of a planted subset on real text,
known truth on synthetic point clouds, the OT solver's batching, sizes, and both embeddings."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from curriculab.selection.embed import EmbeddingSpec, EmbedError, embed, hf_embed
from curriculab.selection.methods import (
    OTSpec,
    calibrate,
    choose,
    ot_scores,
    scores,
    transport_cost,
)
from tests.support.helpers import REPO

HIDDEN, WIKI, TARGET = 300, 3000, 1000


@pytest.fixture(scope="module")
def real_case(tmp_path_factory) -> dict:
    """The shipped study's real data (its pinned wheels): a pool of Wikipedia summaries with
    recipes hidden in it, and other recipes as the target."""
    from curriculab.data.prepare import prepare_documents
    from curriculab.data.sources import read_source

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    texts = {}
    for name in ("wiki", "recipes"):
        import pyarrow as pa

        docs = read_source(config["domains"][name]["source"], None)
        raw = pa.table(
            {"text": docs, "source_index": list(range(len(docs))), "source": [name] * len(docs)}
        )
        table = prepare_documents(raw, name, 0.1, 50)
        texts[name] = [
            t
            for t, s in zip(table["text"].to_pylist(), table["split"].to_pylist(), strict=True)
            if s == "train"
        ]
    rng = np.random.default_rng(0)
    recipes = [texts["recipes"][i] for i in rng.permutation(len(texts["recipes"]))]
    wiki = [texts["wiki"][i] for i in rng.permutation(len(texts["wiki"]))[:WIKI]]
    pool = wiki + recipes[:HIDDEN]
    order = rng.permutation(len(pool))  # the hidden recipes anywhere in the pool
    return {
        "pool": [pool[i] for i in order],
        "hidden": np.flatnonzero(order >= WIKI),
        "target": recipes[HIDDEN : HIDDEN + TARGET],
    }


def _recovered(method: str, pool_vecs, target_vecs, hidden, seed: int = 0) -> float:
    score, _ = scores(method, pool_vecs, target_vecs, OTSpec(), seed)
    chosen = np.argsort(score, kind="stable")[: len(hidden)]
    return float(np.isin(hidden, chosen).mean())


def test_ot_recovers_recipes_hidden_in_wikipedia(real_case) -> None:
    """At k = the hidden subset's size, `ot` recovers at least 90% of it (measured: 0.99), far
    above `random` (about k / pool = 9%); the similarity baseline is reported beside it."""
    pool, target = embed(real_case["pool"], real_case["target"], EmbeddingSpec(), seed=0)
    got = {
        m: _recovered(m, pool, target, real_case["hidden"]) for m in ("random", "similarity", "ot")
    }
    print(f"recovered at k = {HIDDEN}: {got}")
    assert got["ot"] >= 0.9
    assert got["random"] < 0.2 < got["ot"]


def _clouds(rng, n_pool=4000, n_hidden=200, n_target=600, dims=16):
    """Unit vectors: a pool around one direction with a hidden subset drawn from the target's
    distribution (two clusters around another)."""

    def unit(x):
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    centre = np.zeros(dims)
    centre[0] = 3.0
    far = np.zeros(dims)
    far[1], far[2] = 3.0, 1.5

    def target_draw(n):
        sign = np.where(rng.random(n) < 0.5, 1.0, -1.0)[:, None]
        return far + sign * np.eye(dims)[3] * 1.5 + rng.standard_normal((n, dims))

    pool = np.concatenate([centre + rng.standard_normal((n_pool, dims)), target_draw(n_hidden)])
    return unit(pool), unit(target_draw(n_target)), np.arange(n_pool, n_pool + n_hidden)


def test_ot_recovers_a_planted_subset_at_known_truth() -> None:
    """Synthetic clouds, 5 repeats: `ot` recovers >= 90% of the planted subset every time."""
    rng = np.random.default_rng(1)
    for _ in range(5):
        pool, target, hidden = _clouds(rng)
        assert _recovered("ot", pool, target, hidden) >= 0.9
        assert _recovered("random", pool, target, hidden) < 0.2


def test_batched_ot_keeps_memory_bounded_and_the_ranking() -> None:
    """A pool larger than the matrix bound is solved in random batches (here 10): calibration
    puts them on one scale, so the chosen set matches the one-batch solve's closely."""
    pool, target, hidden = _clouds(np.random.default_rng(2))
    whole, info_whole = ot_scores(pool, target, OTSpec(), seed=0)
    batched, info = ot_scores(pool, target, OTSpec(max_matrix_mb=1), seed=0)
    assert info_whole["batches"] == 1 and info["batches"] >= 4
    assert info["converged"] and info["target_points"] == len(target)
    k = len(hidden)
    a = set(np.argsort(whole)[:k].tolist())
    b = set(np.argsort(batched)[:k].tolist())
    assert len(a & b) / k >= 0.9
    assert np.isin(hidden, np.argsort(batched)[:k]).mean() >= 0.9


def test_calibration_subtracts_the_mean_of_the_others() -> None:
    g = np.random.default_rng(3).standard_normal(7)
    expected = [g[i] - np.delete(g, i).mean() for i in range(len(g))]
    assert np.allclose(calibrate(g), expected)
    # A constant shift (a dual potential is defined up to one) leaves it unchanged.
    assert np.allclose(calibrate(g + 5.0), calibrate(g))


def test_choose_takes_k_documents_or_a_token_prefix() -> None:
    order = np.array([4, 2, 0, 1, 3])
    tokens = np.array([10, 20, 30, 40, 50])
    assert choose(order, tokens, 2, None).tolist() == [4, 2]
    # 50 + 30 = 80 < 90: the third document (0, 10 tokens) reaches it.
    assert choose(order, tokens, None, 90).tolist() == [4, 2, 0]
    assert choose(order, tokens, None, 80).tolist() == [4, 2]
    assert choose(order, tokens, None, 10_000).tolist() == order.tolist()


def test_a_subset_of_the_target_lies_closer_than_the_pool() -> None:
    pool, target, hidden = _clouds(np.random.default_rng(4))
    near = transport_cost(pool[hidden], target, 0.1, seed=0)
    far = transport_cost(pool[: len(hidden)], target, 0.1, seed=0)
    assert near < far


def test_tfidf_embedding_is_deterministic_and_seeded(real_case) -> None:
    pool, target = real_case["pool"][:400], real_case["target"][:100]
    a = embed(pool, target, EmbeddingSpec(dims=16), seed=0)
    b = embed(pool, target, EmbeddingSpec(dims=16), seed=0)
    c = embed(pool, target, EmbeddingSpec(dims=16), seed=1)
    assert a[0].tobytes() == b[0].tobytes() and a[1].tobytes() == b[1].tobytes()
    assert a[0].shape == (400, 16) and np.allclose(np.linalg.norm(a[0], axis=1), 1, atol=1e-5)
    assert a[0].tobytes() != c[0].tobytes()


def test_hf_encoder_by_local_directory(local_encoder) -> None:
    texts = ["boil the soup", "bake the bread with salt", "the king and the empire", "war"]
    spec = EmbeddingSpec(type="hf", model=local_encoder, max_length=16, batch_size=3)
    first = hf_embed(texts, spec, progress=False)
    assert first.shape == (4, 16) and np.allclose(np.linalg.norm(first, axis=1), 1, atol=1e-5)
    assert first.tobytes() == hf_embed(texts, spec, progress=False).tobytes()
    # Padding does not change a document's vector (mean pooling over the attention mask).
    alone = hf_embed(texts[3:], spec, progress=False)
    assert np.allclose(alone[0], first[3], atol=1e-5)


def test_an_encoder_that_cannot_be_loaded_is_one_line(tmp_path) -> None:
    spec = EmbeddingSpec(type="hf", model=str(tmp_path / "missing"))
    with pytest.raises(EmbedError, match=r"selection\.embedding\.model"):
        hf_embed(["text"], spec, progress=False)
