"""bench/gpu_smoke.sh runs only where a GPU is lent; its study config is written by a Python
block that must keep up with the code on the CPU too (it once imported a helper module that
had moved). Run that block here and load what it writes as a study."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

from curriculab.config import load_study
from tests.support.helpers import REPO, SCHEMA


def test_the_gpu_smoke_config_block_writes_a_cuda_study(tmp_path: Path) -> None:
    script = (REPO / "bench" / "gpu_smoke.sh").read_text()
    block = re.search(r'python - "\$workdir/config.yaml" <<\'PY\'\n(.*?)\nPY\n', script, re.S)
    assert block, "gpu_smoke.sh no longer writes its config in a python heredoc"
    out = tmp_path / "config.yaml"
    done = subprocess.run(
        [sys.executable, "-", str(out)], input=block.group(1), cwd=REPO, text=True,
        capture_output=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    study = load_study(yaml.safe_load(out.read_text()), SCHEMA)
    assert study.train.device == "cuda"
