"""Atomic writes and model presets."""

from __future__ import annotations

from pathlib import Path

import pytest

from curriculab.io import atomic_path, read_json, write_json
from curriculab.model import PRESETS, build_model, count_parameters, padded_vocab_size


def test_atomic_path_leaves_nothing_on_failure(tmp_path: Path) -> None:
    final = tmp_path / "out" / "table.json"
    with pytest.raises(RuntimeError), atomic_path(final) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash mid-write")
    assert not final.exists() and list((tmp_path / "out").iterdir()) == []


def test_atomic_path_replaces_files_and_directories(tmp_path: Path) -> None:
    write_json(tmp_path / "a.json", {"b": 1, "a": [1, 2]})
    write_json(tmp_path / "a.json", {"b": 2})
    assert read_json(tmp_path / "a.json") == {"b": 2}
    for text in ("old", "new"):
        with atomic_path(tmp_path / "model") as tmp:
            tmp.mkdir()
            (tmp / "weights").write_text(text)
    assert (tmp_path / "model" / "weights").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "model"]


def test_padded_vocab_size() -> None:
    assert [padded_vocab_size(v) for v in (1, 64, 65, 2048, 2049)] == [64, 64, 128, 2048, 2112]


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_presets_build_with_tied_embeddings(preset: str) -> None:
    model = build_model(preset, vocab_size=300, seq_len=32, seed=0)
    shape = PRESETS[preset]
    assert model.config.hidden_size == shape.hidden_size
    assert model.config.num_hidden_layers == shape.num_layers
    assert model.get_input_embeddings().weight is model.get_output_embeddings().weight
    embedding = padded_vocab_size(300) * shape.hidden_size
    assert (
        embedding
        < count_parameters(model)
        < embedding + shape.num_layers * 20 * shape.hidden_size**2
    )
    same = build_model(preset, vocab_size=300, seq_len=32, seed=0)
    assert all((a == b).all() for a, b in zip(model.parameters(), same.parameters(), strict=True))
