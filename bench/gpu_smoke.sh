#!/usr/bin/env bash
# GPU smoke test: the tiny study end to end with training and evaluation on CUDA.
# Needs the installed environment (README: Install) and one CUDA GPU. Run from the repository:
#     bash bench/gpu_smoke.sh
# It fails unless every cell trained on CUDA; the report lands in a temporary directory.
set -euo pipefail
cd "$(dirname "$0")/.."
workdir=$(mktemp -d -t curriculab-gpu-smoke-XXXX)
python - "$workdir/config.yaml" <<'PY'
import sys

import yaml

from tests.support.helpers import TINY_CONFIG

config = {**TINY_CONFIG, "train": {**TINY_CONFIG["train"], "device": "cuda"}}
with open(sys.argv[1], "w") as handle:
    yaml.safe_dump(config, handle)
PY
# --resources gpu=1: one training job at a time on the GPU (others wait for its lock anyway).
snakemake --snakefile "$PWD/Snakefile" --directory "$workdir" --cores 4 --resources gpu=1
python - "$workdir" <<'PY'
import json
import sys
from pathlib import Path

runs = sorted(Path(sys.argv[1], "results", "training").rglob("metrics.json"))
devices = {json.loads(p.read_text())["device"] for p in runs}
assert runs and devices == {"cuda"}, f"expected every cell on cuda, got {devices} ({len(runs)} runs)"
for path in runs:
    metrics = json.loads(path.read_text())
    print(f"{path.parent}: {metrics['tokens_per_second']:,.0f} tokens/s, mfu {metrics.get('mfu')}")
print(f"GPU smoke test passed: {len(runs)} cells on CUDA; report: {sys.argv[1]}/reports/report.html")
PY
