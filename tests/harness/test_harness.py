"""lm-evaluation-harness reads a cell's saved model and tokenizer, offline.

The model is saved by the function training uses (`save_model`), the task is the shipped YAML
over a local file, and the harness runs as its users run it: the `lm_eval` command line. Its
score is checked against the same documents scored here by hand (the tokenizer read with
`tokenizers`, the weights with safetensors, the harness's documented rolling windows), so a
harness that loaded another tokenizer, other weights or another context length would fail.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from safetensors.torch import load_file
from tokenizers import Tokenizer

from curriculab.config import ConfigError, load_study
from curriculab.data.shards import read_blocks
from curriculab.data.tokenizer import END_OF_DOCUMENT
from curriculab.harness.run import (
    HarnessError,
    _load_tasks,
    _task_manager,
    heldout_task,
    write_heldout_task,
)
from curriculab.harness.tables import SCHEMA as HARNESS_SCHEMA
from curriculab.harness.tables import harness_summary
from curriculab.training.model import build_model
from curriculab.training.outputs import save_model
from tests.support.helpers import REPO, SCHEMA, with_key

LM_EVAL = Path(sys.executable).with_name("lm_eval")
BASE_TASK = REPO / "workflow" / "harness" / "curriculab_heldout.yaml"


def _trained_model(tiny_data: dict[str, Path], out: Path, seq_len: int) -> Path:
    """A micro model trained for a few steps (so its predictions are far from uniform), saved
    as a cell's model/ directory is."""
    tokenizer = tiny_data["tokenizer"]
    vocab = Tokenizer.from_file(str(tokenizer)).get_vocab_size()
    model = build_model("micro", vocab, seq_len, seed=0)
    blocks = torch.from_numpy(read_blocks(tiny_data["cooking"] / "train").astype("int64"))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for step in range(30):
        batch = blocks[(torch.arange(8) + 8 * step) % len(blocks)]
        model(input_ids=batch, labels=batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    save_model(model, tokenizer, out / "model")
    return out / "model"


def _rolling_nll(
    model_dir: Path, tokenizer_path: Path, texts: list[str], context: int
) -> tuple[float, int]:
    """(Negative log-likelihood in nats, tokens predicted), summed over the documents, in the
    harness's loglikelihood_rolling windows: the first predicts up to `context` tokens after the
    end-of-document token; each next one predicts the following (up to) `context` tokens
    given the `context` tokens before each of them."""
    tokenizer = Tokenizer.from_file(str(tokenizer_path))
    prefix = tokenizer.token_to_id(END_OF_DOCUMENT)
    model = build_model("micro", tokenizer.get_vocab_size(), context, seed=1)
    assert model.config.max_position_embeddings == context
    model.load_state_dict(load_file(model_dir / "model.safetensors"), strict=False)
    model.tie_weights()
    model.eval()
    total, n_predicted = 0.0, 0
    for text in texts:
        tokens = [prefix, *tokenizer.encode(text).ids]
        predicted = 0
        while predicted < len(tokens) - 1:
            end = min(predicted + context, len(tokens) - 1)  # predict tokens[predicted+1 .. end]
            start = max(0, end - context)
            window = torch.tensor([tokens[start : end + 1]])
            with torch.no_grad():
                logits = model(input_ids=window[:, :-1]).logits.double()
            logp = torch.log_softmax(logits, dim=-1)[0]
            targets = window[0, 1:]
            picked = logp[torch.arange(len(targets)), targets]
            total -= float(picked[predicted - start :].sum())
            n_predicted += end - predicted
            predicted = end
    return total, n_predicted


def test_lm_eval_command_line_scores_a_saved_cell(tiny_data: dict[str, Path], tmp_path: Path):
    seq_len = 32  # the tiny study's shards.seq_len: the saved context the harness reads
    model_dir = _trained_model(tiny_data, tmp_path, seq_len)
    docs = tiny_data["tokenizer"].parent.parent / "data" / "cooking" / "docs.parquet"
    tasks = tmp_path / "tasks"
    n_docs = write_heldout_task(
        "cooking", docs, BASE_TASK, tmp_path / "data" / "cooking.jsonl", tasks / "t.yaml"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    done = subprocess.run(
        [str(LM_EVAL), "--model", "hf", "--model_args", f"pretrained={model_dir},dtype=float32",
         "--tasks", heldout_task("cooking"), "--include_path", str(tasks), "--device", "cpu",
         "--batch_size", "4", "--output_path", str(tmp_path / "out")],
        capture_output=True, text=True, env=env, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    (result_file,) = (tmp_path / "out").rglob("results_*.json")
    result = json.loads(result_file.read_text())
    scores = result["results"][heldout_task("cooking")]
    assert result["n-samples"][heldout_task("cooking")]["effective"] == n_docs
    assert json.loads((model_dir / "config.json").read_text())["max_position_embeddings"] == 32

    texts = pl.read_parquet(docs).filter(pl.col("split") == "test").get_column("text").to_list()
    nll, n_predicted = _rolling_nll(model_dir, tiny_data["tokenizer"], texts, seq_len)
    n_bytes = sum(len(text.encode("utf-8")) for text in texts)
    assert scores["bits_per_byte,none"] == pytest.approx(nll / n_bytes / math.log(2), rel=1e-6)
    # The model learned (far below a uniform guess), so another tokenizer would not match.
    assert nll / n_predicted < 0.8 * math.log(
        Tokenizer.from_file(str(tiny_data["tokenizer"])).get_vocab_size()
    )


def test_an_unknown_task_is_named(tmp_path: Path):
    (tmp_path / "tasks").mkdir()
    with pytest.raises(HarnessError, match=r"'harness.tasks': 'curriculab_heldout_cooking'"):
        _task_manager([heldout_task("cooking")], tmp_path / "tasks")


def test_a_task_of_no_domain_is_a_config_error(tiny_config):
    config = with_key(tiny_config, "harness", {"tasks": [heldout_task("baking")]})
    with pytest.raises(ConfigError, match=r"^config key 'harness.tasks': 'curriculab_heldout_"):
        load_study(config, SCHEMA)
    config = with_key(tiny_config, "harness", {"tasks": [heldout_task("cooking"), "arc_easy"]})
    spec = load_study(config, SCHEMA).harness
    assert spec.heldout_domains == ("cooking",)
    assert load_study(tiny_config, SCHEMA).harness is None


def test_summary_pairs_schedules_by_seed():
    """Seeds differ by far more than schedules do; only a paired difference recovers the
    schedule's true change (+0.5) with a narrow interval, and the baseline has none."""
    rng = np.random.default_rng(0)
    rows = []
    for seed in range(4):
        seed_effect = rng.normal(0, 10)
        for schedule, change in (("shuffled", 0.0), ("d1_last", 0.5)):
            rows.append(
                {"ratio": "0.1", "ratio_value": 0.1, "schedule": schedule, "arm": "constant",
                 "seed": seed, "task": "t", "metric": "bits_per_byte",
                 "value": 3.0 + seed_effect + change + rng.normal(0, 0.01),
                 "stderr": None, "n_docs": 10}
            )  # fmt: skip
    summary = harness_summary(pl.DataFrame(rows, schema=HARNESS_SCHEMA), "shuffled")
    late = summary.row(by_predicate=pl.col("schedule") == "d1_last", named=True)
    assert late["delta_ci_low"] < 0.5 < late["delta_ci_high"]
    assert late["delta_ci_high"] - late["delta_ci_low"] < 0.1
    assert late["ci_high"] - late["ci_low"] > 5  # the unpaired spread, dominated by seeds
    base = summary.row(by_predicate=pl.col("schedule") == "shuffled", named=True)
    assert base["delta_mean"] is None and base["n_seeds"] == 4


def test_a_task_whose_data_cannot_be_loaded_is_named(tmp_path: Path):
    """A task whose documents are not there (as a hub dataset is not, offline) stops the job
    before any model runs, with one line naming the task."""
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "gone.yaml").write_text(
        f"include: {json.dumps(str(BASE_TASK))}\ntask: {heldout_task('gone')}\n"
        f"dataset_kwargs:\n  data_files:\n    test: {json.dumps(str(tmp_path / 'no.jsonl'))}\n"
    )
    manager = _task_manager([heldout_task("gone")], tasks)
    with pytest.raises(HarnessError, match=r"task 'curriculab_heldout_gone' could not load its"):
        _load_tasks([heldout_task("gone")], manager)
