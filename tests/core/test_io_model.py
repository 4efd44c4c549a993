"""Atomic writes and model presets."""

from __future__ import annotations

from pathlib import Path

import pytest

from curriculab.io import atomic_path, read_json, write_json
from curriculab.training.model import PRESETS, build_model, count_parameters, padded_vocab_size


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


_KILLED_WRITER = """
import sys, time
from curriculab.io import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    with open(tmp, "wb") as handle:
        handle.write(b"x" * 1_000_000)
        handle.flush()
        print("writing", flush=True)
        time.sleep(60)
"""


def test_a_writer_killed_mid_write_leaves_no_file_under_the_final_name(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    final = tmp_path / "shard.arrow"
    writer = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, str(final)], stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout.readline().strip() == "writing"  # half of the file is on disk
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    assert not final.exists()
    leftovers = [p.name for p in tmp_path.iterdir()]
    assert len(leftovers) == 1 and leftovers[0].startswith(".shard.arrow.")
    write_json(final, {"complete": True})  # the rerun's write clears what the kill left
    assert [p.name for p in tmp_path.iterdir()] == ["shard.arrow"]
    assert read_json(final) == {"complete": True}
