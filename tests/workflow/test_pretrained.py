"""A study on GPT-2's own tokenizer, end to end and offline: its shards, cells, saved models and
report (its losses also in bits per byte, which do not depend on the tokenizer)."""

from __future__ import annotations

import copy
from pathlib import Path

import polars as pl
import pytest

from curriculab.io import read_json
from tests.support.helpers import TINY_CONFIG
from tests.support.workflow import jobs_run, run_study


@pytest.fixture(scope="module")
def study(tmp_path_factory, gpt2_tokenizer: Path) -> tuple[Path, str]:
    config = copy.deepcopy(TINY_CONFIG)
    config["study"] = "gpt2"
    config["tokenizer"] = {"pretrained": str(gpt2_tokenizer)}
    config["grid"]["ratios"] = [0.3]
    config["grid"]["schedules"] = {k: config["grid"]["schedules"][k] for k in ("shuffled", "late")}
    config["grid"]["seeds"] = [0]
    return run_study(tmp_path_factory, "gpt2", config)


def test_a_study_runs_on_gpt2s_tokenizer_to_its_report(study) -> None:
    workdir, output = study
    assert jobs_run(output)["tokenizer"] == 1
    info = read_json(workdir / "results/tokenizer/tokenizer_info.json")
    assert info["end_of_document"] == "<|endoftext|>" and info["end_of_document_id"] == 50256
    assert info["from"] == "file" and info["vocab_size"] == 50257
    for domain in ("cooking", "history"):
        manifest = read_json(workdir / f"results/shards/{domain}/manifest.json")
        assert manifest["vocab_size"] == 50257 and manifest["dtype"] == "uint16"
    cells = pl.read_parquet(workdir / "results/analysis/cells.parquet")
    assert cells.height == 2 and cells["d1_bits_per_byte"].is_finite().all()
    assert (workdir / "reports/report.html").stat().st_size > 0


def test_the_saved_model_carries_gpt2s_tokenizer(study) -> None:
    from transformers import AutoConfig, AutoTokenizer

    workdir, _ = study
    model = workdir / "results/training/0.3/shuffled/cosine/seed0/model"
    tokenizer = AutoTokenizer.from_pretrained(model)
    assert tokenizer.eos_token == "<|endoftext|>" and tokenizer("Hello world").input_ids == [
        15496,
        995,
    ]
    assert AutoConfig.from_pretrained(model).vocab_size == 50304  # padded to a multiple of 64
