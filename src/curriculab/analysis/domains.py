"""The study's objective in the tables: utility weights per ratio, the objective per cell,
where each schedule places the utility, and per-domain verdicts.

The objective of a cell is sum_k w_k L_k (nats/token): its domains' final test losses
(`test_loss_<domain>`) weighted by the study's utility (curriculab.objective; the weights of a
ratio are those the streams of that ratio were built with, so analysis and streams agree).
Without a stated utility the objective *is* `d1_test_loss` (a copy, bit for bit), the verdict
family is chosen by where D1 sits, and a two-domain study reads exactly as before. With K > 2
domains or a stated utility (`named_domains`), the study is read domain by domain: paired
comparisons of every domain's loss, and per-domain verdicts (`domain_verdicts`), a Holm family
of their own, separate from the H1/H2 family; without a stated utility the target's loss is
left out of it (`judged_domains`), as H1 tests exactly that loss.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from curriculab.analysis.aggregate import collect_cells
from curriculab.analysis.audit import eligible
from curriculab.analysis.finetune import finetune_table, paired_tests
from curriculab.analysis.learning import CELL, area_per_token
from curriculab.analysis.runs import StreamSpec, check_runs, get_field, ratio_value, read_record
from curriculab.analysis.statistics import STREAM, holm_family
from curriculab.analysis.verdicts import analyse, verdict_family
from curriculab.objective import is_default, utility_weights
from curriculab.streams.build import target_blocks_wanted

WEIGHTS_SCHEMA: dict[str, type[pl.DataType]] = {
    "ratio": pl.String,
    "ratio_value": pl.Float64,
    "domain": pl.String,
    "weight": pl.Float64,  # the domain's utility weight in the objective; a ratio's sum to 1
}
CELL_SCHEMA: dict[str, type[pl.DataType]] = {
    "ratio": pl.String,
    "ratio_value": pl.Float64,
    "schedule": pl.String,
    "arm": pl.String,
    "seed": pl.Int64,
}
DOMAIN_BARCODE_SCHEMA: dict[str, type[pl.DataType]] = {
    "ratio": pl.String,
    "ratio_value": pl.Float64,
    "schedule": pl.String,
    "seed": pl.Int64,
    "domain": pl.String,
    "bin": pl.Int64,
    "progress": pl.Float64,  # start of the stretch, fraction of training
    "share": pl.Float64,  # the domain's share of the stretch's sequences
}
DOMAIN_VERDICT_SCHEMA: dict[str, type[pl.DataType]] = {
    "schedule": pl.String,  # a schedule of the verdict family
    "arm": pl.String,
    "ratio": pl.String,
    "ratio_value": pl.Float64,
    "domain": pl.String,
    "metric": pl.String,  # the compared column, test_loss_<domain>
    "estimate": pl.Float64,  # mean paired difference, schedule minus baseline (nats/token)
    "ci_low": pl.Float64,  # 95% t-interval over seeds, not adjusted for multiplicity
    "ci_high": pl.Float64,
    "n": pl.Int64,  # seed pairs
    "p_value": pl.Float64,  # two-sided one-sample t-test, unadjusted
    "p_adjusted": pl.Float64,  # Holm over this table (its own family)
    "family_size": pl.Int64,
    "verdict": pl.String,  # lowered / raised (the loss, significantly) / inconclusive
    "correction": pl.String,  # "holm"
    "p_signflip": pl.Float64,  # exact sign-flip p-value, unadjusted (analysis.signflip)
    "p_signflip_min": pl.Float64,  # its floor with n seeds: 2 / 2^n
    "p_signflip_adjusted": pl.Float64,  # Holm over this table's sign-flip p-values
    "control": pl.String,  # the baseline or the schedule's matched control
    "judged": pl.Boolean,  # the comparison differs in order alone (analysis.audit)
}
# holm_verdicts speaks of hypotheses that predict a negative estimate; here, of the loss.
LOSS_VERDICTS = {"supported": "lowered", "contradicted": "raised", "inconclusive": "inconclusive"}


def named_domains(domains: Sequence[str], utility: dict[str, Any] | None) -> bool:
    """True when the study is read domain by domain (K > 2 domains or a stated utility): no
    "D2" pools the other domains, and every domain's loss is compared and judged."""
    return len(domains) > 2 or not is_default(utility)


def train_blocks(domains: Sequence[str], manifests: Sequence[str | Path]) -> dict[str, int]:
    """Train blocks of every domain, from its shard manifest (given in the order of domains)."""
    blocks = {}
    for name, path in zip(domains, manifests, strict=True):
        splits = get_field(read_record(Path(path)), "splits", Path(path))
        train = get_field(splits, "train", Path(path), "splits.")
        blocks[name] = int(get_field(train, "n_blocks", Path(path), "splits.train."))
    return blocks


def weights_table(
    utility: dict[str, Any] | None,
    domains: Sequence[str],
    target: str,
    ratios: Sequence[str],
    blocks: Mapping[str, int],
) -> pl.DataFrame:
    """One row per (ratio, domain): its utility weight in the objective (WEIGHTS_SCHEMA).

    A cell at ratio r has target_blocks_wanted(blocks, target, r) blocks of the target and all
    train blocks of every other domain: the counts `count_power` weighs (seed-free, as the D1
    subsample's size does not depend on the seed)."""
    rows = []
    for ratio in sorted(ratios, key=ratio_value):
        value = ratio_value(ratio)
        wanted = target_blocks_wanted(dict(blocks), target, value)
        available = np.array([wanted if d == target else blocks[d] for d in domains])
        weights = utility_weights(utility, list(domains), target, available)
        rows += [
            {"ratio": ratio, "ratio_value": value, "domain": d, "weight": float(w)}
            for d, w in zip(domains, weights, strict=True)
        ]
    return pl.DataFrame(rows, schema=WEIGHTS_SCHEMA)


def add_objective(
    cells: pl.DataFrame, weights: pl.DataFrame, utility: dict[str, Any] | None
) -> pl.DataFrame:
    """cells with `objective` (nats/token): sum_k w_k test_loss_k with the weights of the
    cell's ratio. Without a utility, a copy of `d1_test_loss` (bit-identical). A domain of
    weight 0 adds nothing, even where its loss is not finite."""
    if is_default(utility):
        return cells.with_columns(pl.col("d1_test_loss").alias("objective"))
    missing = set(cells["ratio"].unique()) - set(weights["ratio"].unique())
    if missing:
        raise ValueError(f"add_objective: no utility weights for ratios {sorted(missing)}")
    domains = weights["domain"].unique(maintain_order=True).to_list()
    wide = weights.pivot(on="domain", index="ratio", values="weight")
    wide = wide.rename({d: f"weight_{d}" for d in domains})
    terms = [
        pl.when(pl.col(f"weight_{d}") > 0)
        .then(pl.col(f"weight_{d}") * pl.col(f"test_loss_{d}"))
        .otherwise(0.0)
        for d in domains
    ]
    return (
        cells.join(wide, on="ratio", how="left", maintain_order="left")
        .with_columns(pl.sum_horizontal(terms).alias("objective"))
        .drop(f"weight_{d}" for d in domains)
    )


def objective_cells(
    runs: Sequence[Sequence[Any]],
    domains: Sequence[str],
    target: str,
    utility: dict[str, Any] | None,
    ratios: Sequence[str],
    blocks: Mapping[str, int],
) -> pl.DataFrame:
    """The cells of `runs` ((ratio, schedule, arm, seed, run directory) each, as a rule's params
    give them) with the study's `objective` (add_objective, utility weights for `ratios`)."""
    specs = [(r, s, arm, int(seed), Path(d)) for r, s, arm, seed, d in runs]
    cells = collect_cells(specs, target)["cells"]
    return add_objective(cells, weights_table(utility, domains, target, ratios, blocks), utility)


def objective_auc(curves: pl.DataFrame, weights: pl.DataFrame) -> pl.DataFrame:
    """Per cell: `objective_auc`, the speed of learning of the objective: the area under the
    objective's learning curve, sum_k w_k loss_k(t) at every evaluation, over tokens seen,
    divided by the tokens seen (nats/token; lower means the utility was learned earlier and
    kept). With weight 1 on D1 it is analysis.learning's d1_auc."""
    weighted = (
        curves.join(weights.select("ratio", "domain", "weight"), on=["ratio", "domain"])
        .filter(pl.col("weight") > 0)
        .group_by([*CELL, "step"])
        .agg(pl.col("tokens_seen").first(), (pl.col("weight") * pl.col("loss")).sum().alias("loss"))
        .sort([*CELL, "step"])
    )
    rows = []
    for key, cell in weighted.group_by(CELL, maintain_order=True):
        tokens = cell["tokens_seen"].to_numpy().astype(np.float64)
        area = area_per_token(tokens, cell["loss"].to_numpy())
        rows.append({**dict(zip(CELL, key, strict=True)), "objective_auc": area})
    return pl.DataFrame(rows, schema={**CELL_SCHEMA, "objective_auc": pl.Float64})


def collect_domain_barcodes(runs: Sequence[StreamSpec]) -> pl.DataFrame:
    """Every domain's share per stretch of training of every stream (DOMAIN_BARCODE_SCHEMA),
    from the summaries' `share_by_bin`. Summaries written before it existed have none: then,
    if any stream lacks it, an empty table, so no schedule is placed on part of its streams."""
    rows = []
    for ratio, schedule, seed, path in check_runs(runs):
        summary = read_record(Path(path))
        if "share_by_bin" not in summary:
            return pl.DataFrame(schema=DOMAIN_BARCODE_SCHEMA)
        identity = {
            "ratio": ratio,
            "ratio_value": ratio_value(ratio),
            "schedule": schedule,
            "seed": seed,
        }
        for domain, shares in summary["share_by_bin"].items():
            rows += [
                {**identity, "domain": domain, "bin": i, "progress": i / len(shares), "share": s}
                for i, s in enumerate(shares)
            ]
    return pl.DataFrame(rows, schema=DOMAIN_BARCODE_SCHEMA)


def utility_end_bias(domain_barcodes: pl.DataFrame, weights: pl.DataFrame) -> dict[str, float]:
    """Per schedule: where the utility sits, as a fraction of training (0.5 = spread evenly,
    1 = at the very end): per stream, sum_k w_k centre_k over the domains it holds (weights
    renormalised over them), centre_k the mean position of domain k's sequences; then the mean
    over the schedule's streams. With weight 1 on D1 this is statistics.end_bias."""
    n_bins = pl.col("bin").max().over(STREAM) + 1
    centres = (
        domain_barcodes.with_columns((pl.col("progress") + 0.5 / n_bins).alias("mid"))
        .group_by([*STREAM, "domain"])
        .agg(
            pl.col("share").sum().alias("mass"),
            ((pl.col("mid") * pl.col("share")).sum() / pl.col("share").sum()).alias("centre"),
        )
        .filter(pl.col("mass") > 0)
        .join(weights.select("ratio", "domain", "weight"), on=["ratio", "domain"], how="left")
    )
    if centres["weight"].null_count():
        raise ValueError("utility_end_bias: domain_barcodes hold a ratio or domain without weights")
    per_stream = (
        centres.group_by(STREAM)
        .agg(((pl.col("weight") * pl.col("centre")).sum() / pl.col("weight").sum()).alias("c"))
        .filter(pl.col("c").is_finite())  # a stream whose domains all weigh 0 places nothing
        .group_by("schedule")
        .agg(pl.col("c").mean())
        .sort("schedule")
    )
    return dict(zip(per_stream["schedule"], per_stream["c"], strict=True))


def judged_domains(domains: Sequence[str], target: str, utility: dict | None) -> list[str]:
    """The domains whose loss the per-domain family tests: every domain but the target when
    the objective is the target's own loss (no stated utility), which the H1/H2 family tests
    already; testing it twice, in two families, would give one question two verdicts."""
    if target not in domains:
        raise ValueError(f"target domain {target!r} is not one of {list(domains)}")
    return [d for d in domains if not (d == target and is_default(utility))]


def domain_verdicts(
    cells: pl.DataFrame,
    late: Sequence[str],
    baseline: str,
    domains: Sequence[str],
    alpha: float = 0.05,
    controls: Mapping[tuple[str, str], str] | None = None,
    judged: Mapping[tuple[str, str, str, str], bool] | None = None,
) -> pl.DataFrame:
    """Per (schedule of `late`, arm, ratio, domain): the seed-paired difference of that
    domain's final test loss against `baseline`, tested as H1 is (two-sided t over seeds), with
    Holm's correction over this whole table: one family of its own, so the H1/H2 verdicts keep
    their error control and power. verdict: "lowered" / "raised" where the Holm-adjusted
    p-value is below alpha (the schedule significantly lowers / raises that loss), else
    "inconclusive". Rows in the order of `late`, then arm, ratio and `domains`. Compared with
    each schedule's matched control where `controls` names one; a comparison that differs in
    more than order (`judged`, analysis.audit) is "not judged" and outside the family."""
    parts = []
    for domain in domains:
        column = f"test_loss_{domain}"
        tests = paired_tests(cells, list(late), baseline, column, controls, judged)
        if not tests.is_empty():
            parts.append(tests.with_columns(domain=pl.lit(domain)))
    if not parts:
        return pl.DataFrame(schema=DOMAIN_VERDICT_SCHEMA)
    order = {"schedule": list(late), "domain": list(domains)}
    tests = pl.concat(parts).sort(
        pl.col("schedule").replace_strict({s: i for i, s in enumerate(order["schedule"])}),
        "arm",
        "ratio_value",
        pl.col("domain").replace_strict({d: i for i, d in enumerate(order["domain"])}),
    )
    return tests.select(
        "schedule",
        "arm",
        "ratio",
        "ratio_value",
        "domain",
        "metric",
        **holm_family(tests, alpha, LOSS_VERDICTS),
    ).cast(DOMAIN_VERDICT_SCHEMA)


def analyse_objective(
    collected: Mapping[str, pl.DataFrame],
    barcodes: pl.DataFrame,
    domain_barcodes: pl.DataFrame,
    weights: pl.DataFrame,
    study: Mapping[str, Any],
    comparisons: pl.DataFrame | None = None,
) -> dict[str, pl.DataFrame]:
    """statistics.analyse on the study's objective, with the tables of K domains: cells (with
    `objective` and the learning metrics), paired, verdicts, domain_verdicts and finetune.

    study: utility, domains, target (D1), baseline, schedules (name -> spec), target_d1_loss
    and verdict_schedules, as in the aggregate rule's params. The verdict family is chosen by
    where the utility sits (utility_end_bias) when the study states a utility and the streams
    record every domain's share; else by where D1 sits, as before. paired gains every
    test_loss_<domain> and domain_verdicts has rows only when `named_domains`.
    comparisons: the audit's table (analysis.audit): every verdict compares a schedule with
    its matched control where it has one, and only comparisons of order alone are judged."""
    controls, judged = None, None
    if comparisons is not None:
        matched = comparisons.filter(pl.col("kind") == "matched")
        controls = {(s, a): c for s, a, c in matched.select("schedule", "arm", "control").rows()}
        judged = eligible(comparisons)
    utility, domains, baseline = study["utility"], list(study["domains"]), study["baseline"]
    cells = add_objective(collected["cells"], weights, utility)
    bias = None
    if not is_default(utility) and not domain_barcodes.is_empty():
        bias = utility_end_bias(domain_barcodes, weights)
    named = named_domains(domains, utility)
    losses = [f"test_loss_{d}" for d in domains] if named else []
    if named:  # the objective's speed of learning beside D1's
        speed = objective_auc(collected["curves"], weights)
        cells = cells.join(speed, on=CELL, how="left", maintain_order="left")
        losses.append("objective_auc")
    analysed = analyse(
        cells,
        collected["curves"],
        barcodes,
        baseline,
        study.get("target_d1_loss"),
        study.get("verdict_schedules"),
        bias=bias,
        metrics=losses,
        controls=controls,
        judged=judged,
    )
    late = verdict_family(barcodes, baseline, study.get("verdict_schedules"), bias, judged)
    late = late if named else []
    kept = {"controls": controls, "judged": judged}
    return {
        **analysed,
        "domain_verdicts": domain_verdicts(
            cells, late, baseline, judged_domains(domains, study["target"], utility), **kept
        ),
        "finetune": finetune_table(cells, study["schedules"], baseline, domains, **kept),
    }
