"""The comparability audit: what every paired comparison actually differs in.

A comparison is a treatment schedule against its control (the baseline, or its matched control:
analysis.controls) within a ratio and a learning-rate arm, paired by seed. For every seed pair
the audit reads what the two cells did, not what the config says they should have done:

- order: whether their streams differ (sha256 of the stream file each run trained on);
- per domain: training tokens, unique tokens (the same data or other data), passes over the
  data (tokens / unique tokens), and the absolute learning-rate exposure (the sum of lr/peak
  over the domain's sequences: how much learning its tokens got);
- steps and tokens per step; the learning-rate curve at every optimiser step (the largest
  difference of lr/peak, recomputed from each run's record, and where each WSD decay starts);
- the final evaluation's blocks (sha256 of the test shard and the block indices, per domain),
  the initial weights (the seed) and the model (preset and parameter count).

Each factor has a tolerance (analysis.controls.AuditSpec). A comparison is *order only* when
its streams differ and no other factor does, in every seed pair: only such a comparison earns
an H1/H2 verdict (or any other verdict that names the order of data). Exposure is reported,
never counted against it: under one learning-rate curve, moving data moves the learning rate
its tokens meet, which is part of what "order" means.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from curriculab.analysis.audit_lines import COMPARISON_SCHEMA, audit_line
from curriculab.analysis.controls import AuditSpec, MatchedControl, control_of
from curriculab.analysis.statistics import paired_differences, t_interval
from curriculab.training.lr import record_curve

FACTS_SCHEMA: dict[str, type[pl.DataType]] = {
    "ratio": pl.String,
    "schedule": pl.String,
    "arm": pl.String,
    "seed": pl.Int64,
    "stream_sha256": pl.String,
    "steps": pl.Int64,
    "batch_tokens": pl.Int64,
    "preset": pl.String,
    "n_params": pl.Int64,
    "init_seed": pl.Int64,
    "lr_sha256": pl.String,
    "lr_record": pl.String,  # analysis.lr.lr_record as JSON, to recompute every step's rate
    "decay_start": pl.Float64,  # WSD decay's first step / steps (null: no WSD)
    "evaluation": pl.String,  # the final test's blocks, every domain (sha256s joined)
}


def run_facts(run: Sequence[Any], metrics: Mapping[str, Any]) -> dict[str, Any]:
    """One cell's row of FACTS_SCHEMA from its metrics.json (runs made before the audit lack
    the records: their fields are null, which the audit reports as unknown)."""
    lr = metrics.get("lr_curve") or {}
    final = metrics.get("final_test") or {}
    blocks = [final[d].get("blocks_sha256") for d in sorted(final)]
    steps = lr.get("steps")
    decay = lr.get("decay_start_step")
    return {
        "ratio": run[0],
        "schedule": run[1],
        "arm": run[2],
        "seed": int(run[3]),
        "stream_sha256": metrics.get("stream_sha256"),
        "steps": metrics.get("steps"),
        "batch_tokens": metrics.get("batch_tokens"),
        "preset": metrics.get("preset"),
        "n_params": metrics.get("n_params"),
        "init_seed": metrics.get("seed"),
        "lr_sha256": lr.get("sha256"),
        "lr_record": json.dumps(lr, sort_keys=True) if lr else None,
        "decay_start": decay / steps if decay is not None and steps else None,
        "evaluation": "|".join(blocks) if blocks and None not in blocks else None,
    }


def comparison_list(
    cells: pl.DataFrame, baseline: str, controls: Mapping[str, MatchedControl]
) -> list[tuple[str, str, str, str]]:
    """(schedule, control, arm, kind) of every comparison the report states: each schedule
    against the baseline; where it has a matched control, against that too; each matched
    control against the baseline (the learning-rate curve's own effect)."""
    pairs = cells.select("schedule", "arm").unique().sort("schedule", "arm").iter_rows()
    out = []
    for schedule, arm in pairs:
        if schedule == baseline:
            continue
        kind = "lr_only" if schedule in controls else "baseline"
        out.append((schedule, baseline, arm, kind))
        matched = control_of(schedule, arm, baseline, controls)
        if matched != baseline and matched in set(cells["schedule"]):
            out.append((schedule, matched, arm, "matched"))
    return out


def _domain_facts(stream_domains: pl.DataFrame, exposure: pl.DataFrame) -> dict[tuple, dict]:
    """{(ratio, schedule, arm, seed): {domain: tokens, unique, passes, exposure}}."""
    streams = {
        (r["ratio"], r["schedule"], r["seed"], r["domain"]): r
        for r in stream_domains.iter_rows(named=True)
    }
    out: dict[tuple, dict] = {}
    for row in exposure.iter_rows(named=True):
        key = (row["ratio"], row["schedule"], row["arm"], row["seed"])
        stream = streams.get((row["ratio"], row["schedule"], row["seed"], row["domain"]))
        tokens = unique = math.nan
        if stream is not None:
            unique = float(stream["unique_tokens"])
            tokens = unique + float(stream["repeated_tokens"])
        out.setdefault(key, {})[row["domain"]] = {
            "tokens": tokens,
            "unique": unique,
            "passes": tokens / unique if unique else math.nan,
            "exposure": float(row["sequences"]) * float(row["mean_lr_fraction"]),
        }
    return out


def _relative(a: float, b: float) -> float:
    """(a - b) / b; 0 when both are 0; NaN when unknown."""
    if a == b:
        return 0.0
    return (a - b) / b if b else math.inf


class _Curves:
    """Every step's lr/peak of each distinct learning-rate record, computed once."""

    def __init__(self) -> None:
        self._cache: dict[str, np.ndarray] = {}

    def max_difference(self, a: Mapping[str, Any], b: Mapping[str, Any]) -> float:
        """max over steps of |lr/peak| difference; NaN when either record is missing; inf
        when the step counts differ (no step-by-step comparison exists)."""
        if a["lr_sha256"] is None or b["lr_sha256"] is None:
            return math.nan
        if a["lr_sha256"] == b["lr_sha256"]:
            return 0.0
        curves = []
        for record in (a["lr_record"], b["lr_record"]):
            if record not in self._cache:
                self._cache[record] = record_curve(json.loads(record))
            curves.append(self._cache[record])
        if len(curves[0]) != len(curves[1]):
            return math.inf
        return float(np.max(np.abs(curves[0] - curves[1])))


def audit_pair(
    t: Mapping[str, Any],
    c: Mapping[str, Any],
    t_domains: Mapping[str, Mapping[str, float]],
    c_domains: Mapping[str, Mapping[str, float]],
    curves: _Curves,
    spec: AuditSpec,
) -> list[dict[str, Any]]:
    """The audit rows of one seed pair: factor, domain (or null), treatment and control
    values, difference, tolerance, differs (beyond tolerance; unknown counts as differing)."""

    def row(factor, t_value, c_value, difference, tolerance, domain=None):
        differs = not (difference is not None and abs(difference) <= tolerance)
        if difference is not None and math.isnan(difference):
            differs = True
        return {
            "factor": factor,
            "domain": domain,
            "treatment": t_value,
            "control_value": c_value,
            "difference": difference,
            "tolerance": tolerance,
            "differs": differs,
        }

    def same(key):  # 1.0 where they differ, 0.0 where equal, None where not recorded
        return None if t[key] is None or c[key] is None else float(t[key] != c[key])

    def minus(key):
        return None if t[key] is None or c[key] is None else float(t[key] - c[key])

    rows = [
        row("order", None, None, same("stream_sha256"), 0.0),
        row("steps", t["steps"], c["steps"], minus("steps"), 0.0),
        row("batch", t["batch_tokens"], c["batch_tokens"], minus("batch_tokens"), 0.0),
        row("lr", t["decay_start"], c["decay_start"], curves.max_difference(t, c), spec.lr),
        row("evaluation", None, None, same("evaluation"), 0.0),
        row("init", t["init_seed"], c["init_seed"], same("init_seed"), 0.0),
        row("model", t["n_params"], c["n_params"], same("n_params"), 0.0),
    ]
    rows[0]["differs"] = rows[0]["difference"] != 0.0  # order: unknown is not "differs"
    for domain in sorted(set(t_domains) | set(c_domains)):
        a = t_domains.get(domain, dict.fromkeys(("tokens", "unique", "passes", "exposure"), 0.0))
        b = c_domains.get(domain, dict.fromkeys(("tokens", "unique", "passes", "exposure"), 0.0))
        for factor, tolerance in (("tokens", spec.tokens), ("unique", spec.tokens)):
            rel = _relative(a[factor], b[factor])
            rows.append(row(factor, a[factor], b[factor], rel, tolerance, domain))
        passes = a["passes"] - b["passes"]
        rows.append(row("passes", a["passes"], b["passes"], passes, spec.epochs, domain))
        rel = _relative(a["exposure"], b["exposure"])
        rows.append(row("exposure", a["exposure"], b["exposure"], rel, spec.exposure, domain))
    return rows


AUDIT_SCHEMA: dict[str, type[pl.DataType]] = {
    "ratio": pl.String,
    "schedule": pl.String,
    "control": pl.String,
    "arm": pl.String,
    "seed": pl.Int64,
    "factor": pl.String,
    "domain": pl.String,
    "treatment": pl.Float64,
    "control_value": pl.Float64,
    "difference": pl.Float64,
    "tolerance": pl.Float64,
    "differs": pl.Boolean,
}


def audit(
    facts: pl.DataFrame,
    stream_domains: pl.DataFrame,
    exposure: pl.DataFrame,
    comparisons: Sequence[tuple[str, str, str, str]],
    spec: AuditSpec,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(audit: one row per comparison, seed pair and factor (AUDIT_SCHEMA); comparisons: one
    row per comparison and ratio with its audit line (COMPARISON_SCHEMA)).

    comparisons: (schedule, control, arm, kind) as `comparison_list` gives them; every ratio
    of `facts` is audited. A seed without both cells is left out (the pair cannot be formed)."""
    by_cell = {
        (r["ratio"], r["schedule"], r["arm"], r["seed"]): r for r in facts.iter_rows(named=True)
    }
    domains = _domain_facts(stream_domains, exposure)
    curves, rows, lines = _Curves(), [], []
    ratios = sorted(set(facts["ratio"]), key=float)
    for ratio in ratios:
        for schedule, control, arm, kind in comparisons:
            pair_rows = []
            seeds = sorted(s for (r, sc, a, s) in by_cell if (r, sc, a) == (ratio, schedule, arm))
            for seed in seeds:
                t, c = (
                    by_cell.get((ratio, schedule, arm, seed)),
                    by_cell.get((ratio, control, arm, seed)),
                )
                if t is None or c is None:
                    continue
                identity = {"ratio": ratio, "schedule": schedule, "control": control, "arm": arm}
                found = audit_pair(
                    t, c, domains.get((ratio, schedule, arm, seed), {}),
                    domains.get((ratio, control, arm, seed), {}), curves, spec,
                )  # fmt: skip
                pair_rows += [{**identity, "seed": seed, **r} for r in found]
            if pair_rows:
                rows += pair_rows
                lines.append(audit_line(ratio, schedule, control, arm, kind, pair_rows))
    table = pl.DataFrame(rows, schema=AUDIT_SCHEMA)
    return table, pl.DataFrame(lines, schema=COMPARISON_SCHEMA)


def eligible(comparisons: pl.DataFrame) -> dict[tuple[str, str, str, str], bool]:
    """{(ratio, schedule, control, arm): order only} of an audit's comparisons table."""
    keys = comparisons.select("ratio", "schedule", "control", "arm", "order_only").iter_rows()
    return {(r, s, c, a): bool(ok) for r, s, c, a, ok in keys}


def annotate(table: pl.DataFrame, comparisons: pl.DataFrame) -> pl.DataFrame:
    """`table` (rows with ratio, schedule, control, arm; ratio "all" for a test over every
    ratio) with `differs_in`: its comparison's audit line; over every ratio, "order only" when
    each ratio's is, else each ratio's line."""
    lines = {
        (r, s, c, a): text
        for r, s, c, a, text in comparisons.select(
            "ratio", "schedule", "control", "arm", "differs_in"
        ).iter_rows()
    }

    def line(ratio: str, schedule: str, control: str, arm: str) -> str | None:
        if ratio != "all":
            return lines.get((ratio, schedule, control, arm))
        mine = {r: t for (r, s, c, a), t in lines.items() if (s, c, a) == (schedule, control, arm)}
        if not mine:
            return None
        if set(mine.values()) == {"order only"}:
            return "order only"
        return " | ".join(
            f"ratio {r}: {t}" for r, t in sorted(mine.items(), key=lambda i: float(i[0]))
        )

    keys = table.select("ratio", "schedule", "control", "arm").iter_rows()
    return table.with_columns(differs_in=pl.Series([line(*k) for k in keys], dtype=pl.String))


def with_estimates(
    comparisons: pl.DataFrame, cells: pl.DataFrame, baseline: str, column: str = "objective"
) -> pl.DataFrame:
    """comparisons with `estimate`, `ci_low`, `ci_high` (mean paired difference of `column`,
    treatment minus control, and its 95% t-interval over seeds, unadjusted): every comparison
    stated, whether or not it earns a verdict."""
    rows = []
    for key in comparisons.select("ratio", "schedule", "control", "arm").iter_rows():
        ratio, schedule, control, arm = key
        mine = cells.filter(
            pl.col("ratio").eq(ratio)
            & pl.col("arm").eq(arm)
            & pl.col("schedule").is_in([schedule, control])
        )
        pairs = paired_differences(mine, control, column)
        mean, low, high = t_interval(pairs["difference"].to_numpy())
        rows.append((*key, mean, low, high))
    schema = {
        "ratio": pl.String,
        "schedule": pl.String,
        "control": pl.String,
        "arm": pl.String,
        "estimate": pl.Float64,
        "ci_low": pl.Float64,
        "ci_high": pl.Float64,
    }
    found = pl.DataFrame(rows, schema=schema, orient="row")
    return comparisons.join(
        found, on=["ratio", "schedule", "control", "arm"], how="left", maintain_order="left"
    )
