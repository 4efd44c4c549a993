"""Benchmark: ranking olmix's published DCLM swarm (127 runs, 24 domains, 110 tasks) by out-of-fold
prediction, our regressors against olmix's own log-linear law, side by side in one run.

The swarm has no held-out test set, so every score is out of fold: 5-fold, repeated over
`--repeats` shuffles. Two targets:

- `mean_bpb`, the mean bits-per-byte over the 110 tasks (olmix's objective averages its tasks);
  per regressor: out-of-fold Spearman and regret@1 (the true mean bpb of the run predicted
  best minus the true best), and `ours`: the regressor chosen inside every training fold by
  an inner 5-fold out-of-fold Spearman (nested, so the held-out runs never choose);
- every task alone (one shuffle): the median over tasks of each regressor's out-of-fold
  Spearman, and on how many tasks each is the best.

The peer is olmix's log-linear law re-implemented from olmix/fit (utils.mixing_law, law.py):
y = exp(c) + exp(t . x), fitted with a Huber loss (delta 0.02) from starts c in
linspace(-2, 1.5, 10) and t ~ U(0, 0.1), here by scipy's least_squares (loss "huber") instead
of torch's L-BFGS, and 3 random t per c instead of 30.

    .venv/bin/python bench/bench_olmix.py [--repeats 3]
    # writes bench/results/olmix.json
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from machine import machine_info, machine_line

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / "data" / "olmix"
FOLDS = 5


class OlmixLogLinear:
    """olmix's log-linear law, y = exp(c) + exp(t . x), Huber loss (delta 0.02)."""

    def __init__(self, seed: int = 0, per_c: int = 3) -> None:
        self.seed, self.per_c = seed, per_c

    @staticmethod
    def _curve(p: np.ndarray, x: np.ndarray) -> np.ndarray:
        return np.exp(p[0]) + np.exp(np.clip(x @ p[1:], -50, 50))

    def fit(self, x: np.ndarray, y: np.ndarray) -> OlmixLogLinear:
        from scipy import optimize

        rng = np.random.default_rng(self.seed)
        best = None
        for c in np.linspace(-2, 1.5, 10):
            for _ in range(self.per_c):
                start = np.r_[c, rng.uniform(0, 0.1, x.shape[1])]
                with np.errstate(over="ignore"):
                    fit = optimize.least_squares(
                        lambda p: self._curve(p, x) - y, start, loss="huber", f_scale=0.02,
                        max_nfev=200,
                    )  # fmt: skip
                if best is None or fit.cost < best.cost:
                    best = fit
        self.params = best.x
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self._curve(self.params, x)


def models() -> dict[str, Any]:
    from curriculab.panel.regressors import REGRESSORS

    return {**REGRESSORS, "olmix_loglinear": OlmixLogLinear}


def out_of_fold(name: str, x: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.model_selection import KFold

    out = np.empty(len(y))
    for train, test in KFold(FOLDS, shuffle=True, random_state=seed).split(x):
        out[test] = models()[name](seed).fit(x[train], y[train]).predict(x[test])
    return out


def nested_ours(x: np.ndarray, y: np.ndarray, seed: int) -> tuple[np.ndarray, list[str]]:
    """Out-of-fold predictions of the regressor chosen inside each training fold."""
    from sklearn.model_selection import KFold

    from curriculab.panel.regressors import REGRESSORS, choose

    out, chosen = np.empty(len(y)), []
    for train, test in KFold(FOLDS, shuffle=True, random_state=seed).split(x):
        best = choose(x[train], y[train], tuple(REGRESSORS), FOLDS, seed).best
        chosen.append(best)
        out[test] = REGRESSORS[best](seed).fit(x[train], y[train]).predict(x[test])
    return out, chosen


def main() -> None:
    from curriculab.panel.regressors import rank_scores
    from curriculab.panel.table import read_pair

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "bench/results/olmix.json"))
    args = parser.parse_args()
    machine = machine_info(("lightgbm", "scikit-learn", "scipy"))
    started = time.perf_counter()
    panel = read_pair(DATA / "dclm_ratios.csv", DATA / "dclm_metrics.csv", id_column="run")
    x = panel.features()
    tasks = np.column_stack(list(panel.metrics.values()))
    y = tasks.mean(axis=1)
    mean_bpb: dict[str, Any] = {}
    for name in models():
        tick = time.perf_counter()
        scores = [rank_scores(out_of_fold(name, x, y, seed), y) for seed in range(args.repeats)]
        mean_bpb[name] = _summary(scores, time.perf_counter() - tick)
        print(f"mean_bpb {name}: {mean_bpb[name]}", flush=True)
    tick, scores, picks = time.perf_counter(), [], []
    for seed in range(args.repeats):
        predicted, chosen = nested_ours(x, y, seed)
        scores.append(rank_scores(predicted, y))
        picks += chosen
    mean_bpb["ours"] = {**_summary(scores, time.perf_counter() - tick),
                        "chosen": {n: picks.count(n) for n in sorted(set(picks))}}  # fmt: skip
    print(f"mean_bpb ours: {mean_bpb['ours']}", flush=True)
    per_task = {name: [] for name in models() if name != "gp"}  # the GP: 110 x 5 fits, slow
    for j in range(tasks.shape[1]):
        for name in per_task:
            per_task[name].append(rank_scores(out_of_fold(name, x, tasks[:, j], 0), tasks[:, j]))
    rhos = np.array([[s["spearman"] for s in per_task[n]] for n in per_task])
    wins = np.argmax(rhos, axis=0)
    by_task = {
        name: {"median_spearman": float(np.median(rhos[i])),
               "best_on_tasks": int((wins == i).sum()), "min_spearman": float(rhos[i].min())}
        for i, name in enumerate(per_task)
    }  # fmt: skip
    print(f"per task: {by_task}", flush=True)
    result = {
        "benchmark": "olmix DCLM swarm: out-of-fold ranking of 127 runs (24 domains, 110 tasks)",
        "command": shlex.join([".venv/bin/python", "bench/bench_olmix.py", *sys.argv[1:]]),
        "machine": machine,
        "runs": len(y),
        "domains": len(panel.domains),
        "tasks": tasks.shape[1],
        "folds": FOLDS,
        "repeats": args.repeats,
        "mean_bpb": mean_bpb,
        "per_task": by_task,
        "seconds": time.perf_counter() - started,
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(machine_line(result["machine"]))
    for name, row in mean_bpb.items():
        rho, low, regret = row["spearman_mean"], row["spearman_min"], row["regret_at_1_mean"]
        print(f"{name:>16}: mean-bpb OOF Spearman {rho:.3f} (min {low:.3f}), regret@1 {regret:.4f}")
    print(f"wrote {args.out}")


def _summary(scores: list[dict[str, float]], seconds: float) -> dict[str, float]:
    rho = [s["spearman"] for s in scores]
    return {"spearman_mean": float(np.mean(rho)), "spearman_min": float(np.min(rho)),
            "regret_at_1_mean": float(np.mean([s["regret_at_1"] for s in scores])),
            "seconds": seconds}  # fmt: skip


if __name__ == "__main__":
    main()
