"""Benchmark: predicting the best mixture from many small runs, on RegMix's public 1M tables.

Fits on the 512 training runs (`bench/data/regmix/train_*_1m.csv`) and ranks the 256 test runs
by the Pile-CC validation loss, RegMix's target, side by side in one run:

- each of our regressors (curriculab.panel.regressors) fitted on all 512, and ours: the one
  chosen by 5-fold out-of-fold Spearman on the 512 alone (the test runs never choose);
- the peer: RegMix's own LightGBM setting re-implemented from its notebook
  (regression_fitting/regression.ipynb: gbdt, 1000 iterations, learning rate 1e-2, seed 42),
  as published, early-stopped on the test runs themselves, and without that early stop.

Then the cost question: with the design loop choosing which runs to "train" from the 512 (the
pool is an oracle: a run's loss is known once chosen), how many runs reach the peer's
full-pool test Spearman? Start from 16 random runs; each round adds 16: `active`, half where a
Gaussian process of the chosen runs is least sure (largest predictive sd), half where it is
most promising (lowest mean - 2 sd); `uncertain`, all 16 where it is least sure; `spread`, a
space-filling design within the pool's own density (the run nearest each centre of a k-means
of the pool into as many clusters as runs, chosen before training anything). At each
size the regressor is chosen again by 5-fold out-of-fold Spearman on the chosen runs only
(linear, loglinear, lightgbm), fitted on them and scored on the 256 test runs. Random choice
of the same sizes is the control; every curve is repeated over `--repeats` seeds.

    .venv/bin/python bench/bench_panel.py [--repeats 5]
    # writes bench/results/panel.json
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
DATA = ROOT / "bench" / "data" / "regmix"
TARGET = "pile_cc_val_loss"
SIZES = (16, 32, 48, 64, 96, 128, 192, 256)
FAST = ("linear", "loglinear", "lightgbm")


def load() -> tuple[Any, Any]:
    from curriculab.panel.table import read_pair

    names = {"strip": "train_the_pile_", "strip_metric": "metric/the_pile_"}
    train = read_pair(DATA / "train_mixture_1m.csv", DATA / "train_pile_loss_1m.csv", **names)
    test = read_pair(DATA / "test_mixture_1m.csv", DATA / "test_pile_loss_1m.csv", **names)
    return train, test


def peer(x: np.ndarray, y: np.ndarray, xt: np.ndarray, yt: np.ndarray, stop: bool) -> np.ndarray:
    """RegMix's LightGBM setting (its notebook), early-stopped on the test runs when `stop`."""
    import lightgbm as lgb

    params = {"task": "train", "boosting_type": "gbdt", "objective": "regression",
              "metric": ["l1", "l2"], "num_iterations": 1000, "seed": 42, "learning_rate": 1e-2,
              "verbosity": -1}  # fmt: skip
    model = lgb.LGBMRegressor(**params)
    if stop:
        model.fit(x, y, eval_set=[(xt, yt)], eval_metric="l2",
                  callbacks=[lgb.early_stopping(stopping_rounds=3, verbose=False)])  # fmt: skip
    else:
        model.fit(x, y)
    return model.predict(xt)


def chosen_scores(x: np.ndarray, y: np.ndarray, xt: np.ndarray, yt: np.ndarray, seed: int) -> dict:
    """Choose among FAST by out-of-fold Spearman on (x, y); its scores on the test runs."""
    from curriculab.panel.regressors import REGRESSORS, choose, rank_scores

    choice = choose(x, y, FAST, folds=5, seed=seed)
    model = REGRESSORS[choice.best](seed).fit(x, y)
    return {"regressor": choice.best, **rank_scores(model.predict(xt), yt)}


def representatives(x: np.ndarray, n: int, seed: int) -> list[int]:
    """n runs that spread over the pool as the pool itself is spread: k-means (scikit-learn)
    of the pool's mixtures into n clusters, and the run nearest each centre (a space-filling
    design within the pool's own density, chosen before any run is trained)."""
    from sklearn.cluster import KMeans

    centres = KMeans(n, n_init=4, random_state=seed).fit(x).cluster_centers_
    taken: list[int] = []
    for centre in centres:
        order = np.argsort(np.linalg.norm(x - centre, axis=1), kind="stable")
        taken.append(int(next(i for i in order if i not in taken)))
    return taken


def active_curve(train: Any, test: Any, seed: int, kind: str) -> list[dict[str, Any]]:
    """Test scores at every size of SIZES, the runs chosen by `kind`: random, uncertain (all
    16 where the GP is least sure), active (8 least sure, 8 lowest mean - 2 sd) or spread
    (k-means representatives of the pool, chosen afresh at every size)."""
    from curriculab.panel.regressors import GP

    x, y = train.features(), train.metrics[TARGET]
    xt, yt = test.features(), test.metrics[TARGET]
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    chosen = representatives(x, SIZES[0], seed) if kind == "spread" else list(order[: SIZES[0]])
    curve = []
    while True:
        if len(chosen) in SIZES:
            row = chosen_scores(x[chosen], y[chosen], xt, yt, seed)
            curve.append({"runs": len(chosen), **row})
            print(f"  {kind} seed {seed}: {curve[-1]}", flush=True)
        if len(chosen) >= SIZES[-1]:
            return curve
        rest = np.setdiff1d(np.arange(len(y)), chosen)
        if kind == "spread":
            chosen = representatives(x, len(chosen) + 16, seed)
            continue
        if kind == "random":
            chosen += list(order[len(chosen) : len(chosen) + 16])
            continue
        gp = GP(seed, restarts=0).fit(x[chosen], y[chosen])
        by_sd = rest[np.argsort(-gp.predict_sd(x[rest]), kind="stable")]
        if kind == "uncertain":
            chosen += list(by_sd[:16])
            continue
        unsure = list(by_sd[:8])
        left = np.setdiff1d(rest, unsure)
        mean, sd = gp.model.predict(x[left], return_std=True)
        promising = list(left[np.argsort(mean - 2 * sd, kind="stable")[:8]])
        chosen += unsure + promising


def main() -> None:
    from curriculab.panel.regressors import REGRESSORS, choose, rank_scores

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default=str(ROOT / "bench/results/panel.json"))
    args = parser.parse_args()
    machine = machine_info(("lightgbm", "scikit-learn", "scipy"))  # first: fail fast
    started = time.perf_counter()
    train, test = load()
    x, y = train.features(), train.metrics[TARGET]
    xt, yt = test.features(), test.metrics[TARGET]
    full = {}
    for name in REGRESSORS:
        tick = time.perf_counter()
        model = REGRESSORS[name](0).fit(x, y)
        full[name] = {
            **rank_scores(model.predict(xt), yt),
            "fit_seconds": time.perf_counter() - tick,
        }
        print(f"{name}: {full[name]}", flush=True)
    choice = choose(x, y, tuple(REGRESSORS), folds=5, seed=0)
    peers = {
        "regmix_lightgbm_early_stopped_on_test": rank_scores(peer(x, y, xt, yt, True), yt),
        "regmix_lightgbm_1000_iterations": rank_scores(peer(x, y, xt, yt, False), yt),
    }
    print(
        f"chosen by 5-fold OOF Spearman: {choice.best} {choice.scores}; peers {peers}", flush=True
    )
    curves = {"active": [], "uncertain": [], "spread": [], "random": []}
    for seed in range(args.repeats):
        for kind in curves:
            curves[kind].append(active_curve(train, test, seed, kind))
    summary = {
        kind: {
            size: {
                "spearman_mean": float(np.mean([c[i]["spearman"] for c in runs])),
                "spearman_min": float(np.min([c[i]["spearman"] for c in runs])),
                "regret_at_1_mean": float(np.mean([c[i]["regret_at_1"] for c in runs])),
            }
            for i, size in enumerate(SIZES)
        }
        for kind, runs in curves.items()
    }
    result = {
        "benchmark": "RegMix 1M tables: rank 256 test runs on Pile-CC validation loss",
        "command": shlex.join([".venv/bin/python", "bench/bench_panel.py", *sys.argv[1:]]),
        "machine": machine,
        "train_runs": len(y),
        "test_runs": len(yt),
        "full_pool": full,
        "out_of_fold_on_train": choice.scores,
        "ours": {"regressor": choice.best, **full[choice.best]},
        "peers": peers,
        "curves": curves,
        "curve_summary": summary,
        "seconds": time.perf_counter() - started,
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(machine_line(result["machine"]))
    for kind, rows in summary.items():
        line = ", ".join(f"{s}: {r['spearman_mean']:.3f}" for s, r in rows.items())
        print(f"{kind} (mean test Spearman by runs used): {line}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
