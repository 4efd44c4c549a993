"""The select stage's files (curriculab.selection.stage) on the tiny study's data: the embeddings
file, a selection written as a derived domain, and one-line errors for sizes the pool cannot
give or embeddings of other documents. No Snakemake (tests/workflow/test_selection.py runs it)."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from curriculab.io import read_json
from curriculab.selection.embed import EmbeddingSpec
from curriculab.selection.methods import OTSpec
from curriculab.selection.plan import SelectSet
from curriculab.selection.stage import (
    SelectError,
    read_embeddings,
    run_selection,
    write_embeddings,
)


def _docs(tiny_data, domain: str) -> Path:
    return tiny_data["tokenizer"].parent.parent / "data" / domain / "docs.parquet"


@pytest.fixture(scope="module")
def embedded(tiny_data, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("select") / "embeddings.arrow"
    write_embeddings(
        _docs(tiny_data, "history"), _docs(tiny_data, "cooking"), EmbeddingSpec(dims=8), 0, path
    )
    return path


def _outputs(directory: Path) -> dict[str, Path]:
    return {
        k: directory / f
        for k, f in (("docs", "docs.parquet"), ("scores", "scores.parquet"), ("record", "sel.json"))
    }


def test_a_selection_is_a_domain_with_the_pools_test_split(tiny_data, embedded, tmp_path) -> None:
    pool = pq.read_table(_docs(tiny_data, "history"))
    vectors = read_embeddings(embedded)
    train = pool.filter(pc.equal(pool["split"], "train"))
    assert vectors["pool"][0] == train["doc_id"].to_pylist()  # train documents only
    out = _outputs(tmp_path)
    record = run_selection(
        _docs(tiny_data, "history"),
        embedded,
        tiny_data["tokenizer"],
        SelectSet("ot", "ot", k=20),
        OTSpec(target_points=30),
        0,
        out,
    )
    derived = pq.read_table(out["docs"])
    assert derived.schema == pool.schema  # rule shards reads it like prepare's output
    test = derived.filter(pc.equal(derived["split"], "test"))
    assert test.equals(pool.filter(pc.equal(pool["split"], "test")))
    chosen = derived.filter(pc.equal(derived["split"], "train"))
    assert chosen.num_rows == record["chosen_docs"] == 20
    scores = pq.read_table(out["scores"]).to_pydict()
    first = {d for d, r in zip(scores["doc_id"], scores["rank"], strict=True) if r < 20}
    assert set(chosen["doc_id"].to_pylist()) == first  # the 20 best ranked, in the pool's order
    assert read_json(out["record"])["solver"]["converged"]


def test_hf_embeddings_through_the_stage(tiny_data, local_encoder, tmp_path) -> None:
    spec = EmbeddingSpec(type="hf", model=local_encoder, max_length=32, batch_size=16)
    facts = write_embeddings(
        _docs(tiny_data, "history"), _docs(tiny_data, "cooking"), spec, 0, tmp_path / "e.arrow"
    )
    assert facts["dims"] == 16
    assert read_embeddings(tmp_path / "e.arrow")["target"][1].shape == (facts["target_docs"], 16)


@pytest.mark.parametrize(
    ("chosen", "key"),
    [
        (SelectSet("big", "random", k=10_000), "selection.sets.big.k"),
        (SelectSet("big", "ot", tokens=10**9), "selection.sets.big.tokens"),
    ],
)
def test_more_than_the_pool_holds_is_one_line(tiny_data, embedded, tmp_path, chosen, key) -> None:
    with pytest.raises(SelectError, match=re.escape(f"config key '{key}'")) as caught:
        run_selection(
            _docs(tiny_data, "history"),
            embedded,
            tiny_data["tokenizer"],
            chosen,
            OTSpec(),
            0,
            _outputs(tmp_path),
        )
    assert "\n" not in str(caught.value)
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_embeddings_of_other_documents_are_refused(tiny_data, embedded, tmp_path) -> None:
    with pytest.raises(SelectError, match="are not those of"):
        run_selection(
            _docs(tiny_data, "cooking"),
            embedded,
            tiny_data["tokenizer"],
            SelectSet("r", "random", k=5),
            OTSpec(),
            0,
            _outputs(tmp_path),
        )


def test_the_random_control_is_its_own_draw_for_every_training_seed(
    tiny_data, embedded, tmp_path
) -> None:
    """Two training seeds train on different random subsets (one draw would make "ot beats
    random" a statement about one subset); each draw is the same when made again."""

    def draw(seed: int, folder: str) -> set[str]:
        out = _outputs(tmp_path / folder)
        out["docs"].parent.mkdir()
        record = run_selection(
            _docs(tiny_data, "history"),
            embedded,
            tiny_data["tokenizer"],
            SelectSet("rand", "random", k=20),
            OTSpec(),
            0,
            out,
            draw=seed,
        )
        assert record["draw"] == seed and record["chosen_docs"] == 20
        return set(pq.read_table(out["docs"], filters=[("split", "=", "train")])["doc_id"])

    first, second = draw(0, "seed0"), draw(1, "seed1")
    assert first != second  # 20 of the pool's documents: two draws agreeing is ~impossible
    assert draw(0, "seed0_again") == first and draw(1, "seed1_again") == second
