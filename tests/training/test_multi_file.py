"""A cell trained and evaluated on shards split into several files (`shards.file_mb`) learns
exactly what it learns on the one-file shards: the same batches, the same curve, the same final
test and the same unigram reference; only the shards' fingerprint differs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import torch

from curriculab.config import train_config
from curriculab.data.shards import build_shards
from curriculab.evaluate import evaluate_cell
from curriculab.io import read_json
from curriculab.streams.schedules import BudgetSpec
from curriculab.streams.stream_file import write_stream
from curriculab.training.inputs import CellInputs, StreamBatches
from curriculab.training.loop import train_cell
from curriculab.training.run import CellJob
from tests.support.helpers import TINY_CONFIG, cell_inputs

CFG = train_config(TINY_CONFIG["train"])
DOMAINS = ("cooking", "history")


def _multi_file(tiny_data: dict[str, Path], root: Path) -> dict[str, Path]:
    """The tiny study's shards rebuilt with files of 5 blocks."""
    seq_len = TINY_CONFIG["shards"]["seq_len"]
    out = {"tokenizer": tiny_data["tokenizer"]}
    for name in DOMAINS:
        out[name] = root / name
        docs = tiny_data["tokenizer"].parent.parent / "data" / name / "docs.parquet"
        build_shards(
            docs, tiny_data["tokenizer"], seq_len, out[name], file_mb=5 * seq_len * 2 / 1e6
        )
        assert len(list((out[name] / "train").iterdir())) > 2
    return out


def _stream(tiny_data: dict[str, Path], root: Path) -> Path:
    manifests = {n: read_json(tiny_data[n] / "manifest.json") for n in DOMAINS}
    stream = root / "stream.arrow"
    spec = TINY_CONFIG["grid"]["schedules"]["d1_last"]
    write_stream(
        manifests, "cooking", 0.3, "d1_last", spec, 0, BudgetSpec(), stream, root / "s.json"
    )
    return stream


def _evaluate(inputs: CellInputs, metrics: Path, out: Path) -> dict:
    names = sorted(inputs.train_shards)
    return evaluate_cell(
        metrics, inputs.stream,
        {n: inputs.train_shards[n] for n in names}, {n: inputs.test_shards[n] for n in names},
        {n: inputs.manifests[n] for n in names}, CFG.eval_blocks, CFG.final_eval_blocks, out,
    )  # fmt: skip


def test_a_cell_on_multi_file_shards_equals_the_cell_on_one_file(tiny_data, tmp_path) -> None:
    stream = _stream(tiny_data, tmp_path)
    one = cell_inputs(tiny_data, stream)
    many = cell_inputs(_multi_file(tiny_data, tmp_path / "shards"), stream)
    cpu = torch.device("cpu")
    batches = [StreamBatches(inputs, CFG.batch_size, cpu) for inputs in (one, many)]
    assert batches[0].steps == batches[1].steps
    for step in range(batches[0].steps):
        assert np.array_equal(batches[0].batch(step).numpy(), batches[1].batch(step).numpy())

    results = {}
    for name, inputs in (("one", one), ("many", many)):
        out = tmp_path / name
        metrics = train_cell(CellJob(name, inputs, CFG, 0, out, None), "micro")
        results[name] = (metrics, pl.read_parquet(out / "curve.parquet"))
        results[name] += (_evaluate(inputs, out / "metrics.json", out / "eval.json"),)
    (m1, c1, e1), (m2, c2, e2) = results["one"], results["many"]
    assert c1.equals(c2)
    assert m1["final_curve_loss"] == m2["final_curve_loss"]
    for domain in DOMAINS:
        f1, f2 = m1["final_test"][domain], m2["final_test"][domain]
        assert f1["blocks_sha256"] != f2["blocks_sha256"]  # the shards' files are named
        assert {k: v for k, v in f1.items() if k != "blocks_sha256"} == {
            k: v for k, v in f2.items() if k != "blocks_sha256"
        }
        for key in ("loss", "unigram_loss", "unigram_curve_loss", "below_unigram"):
            assert e1["domains"][domain][key] == e2["domains"][domain][key], key
