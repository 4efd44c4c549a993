"""An existing tokenizer (tokenizer.pretrained): GPT-2's own, a transformers directory, a
WordPiece with its own special tokens, a vocabulary too large for 16 bits, and bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer, models, pre_tokenizers, processors

from curriculab.config import load_study
from curriculab.data.pretrained import (
    HUB_VOCAB_ESTIMATE,
    check_tokenizer,
    load_pretrained,
    write_pretrained,
)
from curriculab.data.shards import build_shards, read_blocks
from curriculab.data.tokenizer import load_tokenizer
from curriculab.errors import ConfigError
from tests.support.helpers import SCHEMA

GPT2_EOT = 50256  # GPT-2's <|endoftext|>, the last of its 50,257 tokens


def test_gpt2s_own_tokenizer_loads_with_its_end_of_text(gpt2_tokenizer: Path) -> None:
    loaded = load_pretrained(str(gpt2_tokenizer))
    assert loaded.end_of_document == "<|endoftext|>" and loaded.source == "file"
    assert loaded.tokenizer.get_vocab_size() == 50257
    assert loaded.tokenizer.token_to_id("<|endoftext|>") == GPT2_EOT
    # GPT-2's published ids: "Hello" 15496, " world" 995.
    assert loaded.tokenizer.encode("Hello world").ids == [15496, 995]


def test_a_transformers_directory_gives_its_eos_token(gpt2_tokenizer: Path, tmp_path) -> None:
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(tokenizer_file=str(gpt2_tokenizer), eos_token="<|endoftext|>")
    fast.save_pretrained(tmp_path / "gpt2")
    loaded = load_pretrained(str(tmp_path / "gpt2"))
    assert loaded.source == "directory" and loaded.end_of_document == "<|endoftext|>"


def _docs(path: Path, texts: list[str]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    split = ["train" if k % 4 else "test" for k in range(len(texts))]
    table = pa.table({"text": texts, "split": split, "n_bytes": [len(t.encode()) for t in texts]})
    pq.write_table(table, path)
    return path


def test_shards_on_gpt2_append_its_end_of_text_and_nothing_else(gpt2_tokenizer, tmp_path) -> None:
    write_pretrained(str(gpt2_tokenizer), None, tmp_path / "tok" / "tokenizer.json")
    texts = [f"Document number {k} says hello to the world." for k in range(40)]
    manifest = build_shards(
        _docs(tmp_path / "docs.parquet", texts),
        tmp_path / "tok" / "tokenizer.json",
        16,
        tmp_path / "shards",
    )
    assert manifest["vocab_size"] == 50257 and manifest["dtype"] == "uint16"
    train = [t for k, t in enumerate(texts) if k % 4]
    tokenizer, eod = load_tokenizer(tmp_path / "tok" / "tokenizer.json")
    assert eod == GPT2_EOT
    expected = [i for text in train for i in [*tokenizer.encode(text).ids, GPT2_EOT]]
    got = read_blocks(tmp_path / "shards" / "train").reshape(-1).tolist()
    assert got == expected[: len(got)] and len(expected) - len(got) < 16


def _wordpiece(vocab_size: int, *, cls_sep: bool) -> Tokenizer:
    """A real `tokenizers` WordPiece; with cls_sep, BERT's post-processor ([CLS] ... [SEP])."""
    specials = ["[UNK]", "[CLS]", "[SEP]"]
    words = [f"w{k}" for k in range(vocab_size - len(specials))]
    vocab = {tok: k for k, tok in enumerate(specials + words)}
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    if cls_sep:
        tokenizer.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 1), ("[SEP]", 2)]
        )
    return tokenizer


def test_a_tokenizer_without_an_end_token_needs_one_named(tmp_path: Path) -> None:
    path = tmp_path / "bert.json"
    _wordpiece(100, cls_sep=True).save(str(path))
    with pytest.raises(ConfigError, match=r"tokenizer.pretrained': .* has no end-of-document"):
        load_pretrained(str(path))
    with pytest.raises(ConfigError, match=r"tokenizer.end_of_document': '\[EOS\]' is not a token"):
        load_pretrained(str(path), "[EOS]")
    write_pretrained(str(path), "[SEP]", tmp_path / "tok" / "tokenizer.json")
    texts = [" ".join(f"w{(k * 7 + j) % 90}" for j in range(5)) for k in range(40)]
    build_shards(
        _docs(tmp_path / "d.parquet", texts),
        tmp_path / "tok" / "tokenizer.json",
        6,
        tmp_path / "shards",
    )
    tokens = read_blocks(tmp_path / "shards" / "train").reshape(-1)
    assert 1 not in tokens.tolist()  # no [CLS]: the post-processor's tokens are not packed
    assert (tokens == 2).sum() == len(tokens) // 6  # one [SEP] per 5-word document


def test_a_vocabulary_beyond_16_bits_is_stored_in_32(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    tokenizer = _wordpiece(70_000, cls_sep=False)
    tokenizer.add_special_tokens(["</s>"])
    tokenizer.save(str(path))
    write_pretrained(str(path), None, tmp_path / "tok" / "tokenizer.json")
    texts = [" ".join(f"w{69_990 - (k + j) % 5}" for j in range(7)) for k in range(40)]
    manifest = build_shards(
        _docs(tmp_path / "d.parquet", texts),
        tmp_path / "tok" / "tokenizer.json",
        8,
        tmp_path / "shards",
    )
    assert manifest["dtype"] == "uint32"
    tokens = read_blocks(tmp_path / "shards" / "train")
    assert tokens.dtype == np.uint32 and tokens.max() >= 1 << 16


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_text('{"not": "a tokenizer"}'), "is not a tokenizers tokenizer.json"),
        (lambda p: p.write_bytes(b"\x00\x01binary"), "is not a tokenizers tokenizer.json"),
        (lambda p: None, "does not exist"),
    ],
)
def test_a_file_that_is_not_a_tokenizer_is_one_line(tmp_path: Path, make, message) -> None:
    path = tmp_path / "tokenizer.json"
    make(path)
    with pytest.raises(ConfigError, match=message) as raised:
        check_tokenizer({"pretrained": str(path)})
    assert "\n" not in str(raised.value) and "tokenizer.pretrained" in str(raised.value)


def test_the_key_takes_one_way_and_the_study_sizes_the_model_by_it(gpt2_tokenizer, tiny_config):
    for both in ({"vocab_size": 400, "pretrained": "gpt2"}, {}):
        with pytest.raises(ConfigError, match=r"either vocab_size .* or pretrained"):
            check_tokenizer(both)
    tiny_config["tokenizer"] = {"pretrained": str(gpt2_tokenizer)}
    study = load_study(tiny_config, SCHEMA)
    assert study.vocab_size == 50257 and study.tokenizer.pretrained == str(gpt2_tokenizer)
    assert check_tokenizer({"pretrained": "nobody/not-cached"}).vocab_size == HUB_VOCAB_ESTIMATE


def test_a_hub_name_offline_is_one_line_with_the_way_out(tmp_path: Path) -> None:
    """Offline (HF_HUB_OFFLINE, an empty cache), in a fresh interpreter as the job would be."""
    code = (
        "from curriculab.data.pretrained import write_pretrained\n"
        f"write_pretrained('gpt2', None, {str(tmp_path / 'tok' / 'tokenizer.json')!r})\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert "cannot load 'gpt2' from the Hugging Face hub" in last
    assert "huggingface-cli download gpt2 tokenizer.json" in last
    assert not (tmp_path / "tok").exists() or not any((tmp_path / "tok").iterdir())
