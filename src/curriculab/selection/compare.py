"""Selection x placement: which pool documents and where they go, compared by seed.

Every cell of a schedule with `select` (and every cell of the same placement on the whole
pool) is one (selection, placement) pair. Per ratio and learning-rate arm, three kinds of
seed-paired comparisons of the study's objective form one Holm family:

- `vs random`: a selection minus the random selection of the same size, at one placement
  (does choosing beat drawing?);
- `placement`: a placement minus the reference placement (the baseline's: spread), with one
  selection (does moving the pool's data matter once it is chosen?);
- `interaction`: the placement effect with a selection minus the placement effect with its
  random control (does the choice change where the data should go?).

The random control is drawn anew for every training seed (selection.plan), so a seed's
difference pairs a selection with that seed's own draw, and the spread of the differences
over seeds includes the spread over draws: a verdict on "choosing beats drawing" is not
conditional on one lucky or unlucky subset.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import polars as pl

from curriculab.analysis.statistics import CONFIDENCE, holm_family, t_interval
from curriculab.selection.plan import Selection
from curriculab.streams.schedules import SELECT as KEY

WHOLE = "whole pool"  # the label of cells that train on the pool itself
KINDS = ("vs random", "placement", "interaction")  # the comparisons, in the order reported
VERDICTS = {"supported": "lower", "contradicted": "higher", "inconclusive": "no difference shown"}


def placements(
    schedules: Mapping[str, dict[str, Any]], selection: Selection
) -> dict[str, dict[str, str]]:
    """schedule -> {"set", "placement"} for every schedule that shares its order with one that
    trains on a selection. A placement is named by a schedule of it without `select` if there
    is one, else by its first schedule with the sweep suffix `-select<set>` removed."""

    def order(spec):
        return json.dumps({k: v for k, v in spec.items() if k != KEY}, sort_keys=True)

    chosen = {order(s) for s in schedules.values() if KEY in s}
    names: dict[str, str] = {}
    for name, spec in schedules.items():
        key = order(spec)
        if key in chosen and (
            key not in names or (KEY not in spec and KEY in schedules[names[key]])
        ):
            names[key] = name
    label = {
        key: name.replace(f"-select{schedules[name][KEY]}", "") if KEY in schedules[name] else name
        for key, name in names.items()
    }
    return {
        name: {"set": spec.get(KEY, WHOLE), "placement": label[order(spec)]}
        for name, spec in schedules.items()
        if order(spec) in chosen
    }


def _wide(cells: pl.DataFrame, column: str = "objective") -> dict[tuple[str, str], dict]:
    """(set, placement) -> seed -> `column`."""
    out: dict[tuple[str, str], dict[int, float]] = {}
    for row in cells.iter_rows(named=True):
        out.setdefault((row["set"], row["placement"]), {})[row["seed"]] = row[column]
    return out


def _paired(a: dict[int, float], b: dict[int, float]) -> dict[int, float]:
    """seed -> a minus b, over the seeds both have."""
    return {k: a[k] - b[k] for k in sorted(a.keys() & b.keys())}


def _tests(wide, sets, controls, places, reference) -> list[dict[str, Any]]:
    """Every comparison of one (ratio, arm): kind, set, against, placement, and the seeds,
    mean and sd of its per-seed differences."""
    rows = []
    for place in places:
        for s in sets:
            c = controls.get(s)
            if c and c != s and (s, place) in wide and (c, place) in wide:
                rows.append(("vs random", s, c, place, _paired(wide[s, place], wide[c, place])))
    for s in [*sets, WHOLE]:
        for place in places:
            if place == reference or (s, place) not in wide or (s, reference) not in wide:
                continue
            effect = _paired(wide[s, place], wide[s, reference])
            rows.append(("placement", s, s, f"{place} - {reference}", effect))
            c = controls.get(s)
            if c and c != s and (c, place) in wide and (c, reference) in wide:
                control = _paired(wide[c, place], wide[c, reference])
                rows.append(
                    ("interaction", s, c, f"{place} - {reference}", _paired(effect, control))
                )
    tests = []
    for kind, s, c, place, by_seed in rows:
        d = np.array(list(by_seed.values()))
        tests.append({
            "kind": kind, "set": s, "against": c, "placement": place, "n": len(d),
            "estimate": float(d.mean()) if len(d) else float("nan"),
            "sd": float(d.std(ddof=1)) if len(d) > 1 else float("nan"),
            "values": d.tolist(),
        })  # fmt: skip
    return tests


def selection_tables(
    cells: pl.DataFrame,
    layout: Mapping[str, dict[str, str]],
    selection: Selection,
    reference: str,
    alpha: float = 1.0 - CONFIDENCE,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(means, tests). `cells`: ratio, schedule, arm, seed, objective; `layout`: placements();
    `reference`: the placement every other one is compared with. means: per (ratio, arm,
    set, placement) the objective's mean, 95% t-interval and sd over seeds, and `draws`, the
    distinct subsets behind them (a random set's: one per seed; its sd is the spread over
    draws and seeds together)."""
    mine = cells.filter(pl.col("schedule").is_in(list(layout))).with_columns(
        set=pl.col("schedule").replace_strict({k: v["set"] for k, v in layout.items()}),
        placement=pl.col("schedule").replace_strict({k: v["placement"] for k, v in layout.items()}),
    )
    sets = [s.name for s in selection.sets]
    random = {s.name for s in selection.sets if s.method == "random"}
    controls = {s.name: c.name for s in selection.sets if (c := selection.control(s))}
    places = list(dict.fromkeys(v["placement"] for v in layout.values()))
    means, tests = [], []
    pool_loss = f"test_loss_{selection.pool}"  # what choosing toward the target costs the pool
    if pool_loss not in mine.columns:
        mine = mine.with_columns(pl.lit(float("nan")).alias(pool_loss))
    for (ratio, arm), group in mine.group_by(["ratio", "arm"], maintain_order=True):
        wide, pool = _wide(group), _wide(group, pool_loss)
        for (s, place), by_seed in wide.items():
            values = np.array(list(by_seed.values()))
            mean, low, high = t_interval(values)
            means.append(
                {
                    "ratio": ratio,
                    "arm": arm,
                    "set": s,
                    "placement": place,
                    "objective": mean,
                    "ci_low": low,
                    "ci_high": high,
                    "seeds": len(by_seed),
                    "sd": float(values.std(ddof=1)) if len(values) > 1 else float("nan"),
                    "draws": len(by_seed) if s in random else 1,
                    "pool_loss": float(np.mean(list(pool[s, place].values()))),
                }
            )
        tests += [
            {"ratio": ratio, "arm": arm, **row}
            for row in _tests(wide, sets, controls, places, reference)
        ]
    if not tests:
        return pl.DataFrame(means), pl.DataFrame()
    table = pl.DataFrame(tests)
    judged = holm_family(table, alpha, VERDICTS)
    table = (
        table.with_columns(
            ci_low=judged["ci_low"],
            ci_high=judged["ci_high"],
            p_value=judged["p_value"],
            p_holm=judged["p_adjusted"],
            verdict=judged["verdict"],
            p_signflip=judged["p_signflip"],
            p_signflip_holm=judged["p_signflip_adjusted"],
        )
        .drop("values")
        .rename({"n": "seeds"})
    )
    order = pl.col("kind").replace_strict({k: i for i, k in enumerate(KINDS)})
    return pl.DataFrame(means), table.sort(order, maintain_order=True)
