"""The objective in the analysis (analysis.domains): utility weights per ratio, the objective
per cell against a hand computation, a two-domain study that reads exactly as before, the
verdict family chosen by where the utility sits, per-domain verdicts of known truth, and every
domain's strip read from real stream summaries."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from scipy import stats
from statsmodels.stats.multitest import multipletests

from curriculab.analysis.domains import (
    DOMAIN_BARCODE_SCHEMA,
    DOMAIN_VERDICT_SCHEMA,
    WEIGHTS_SCHEMA,
    add_objective,
    analyse_objective,
    collect_domain_barcodes,
    domain_verdicts,
    judged_domains,
    named_domains,
    objective_auc,
    train_blocks,
    utility_end_bias,
    weights_table,
)
from curriculab.analysis.finetune import FINETUNE_SCHEMA
from curriculab.analysis.learning import curve_metrics
from curriculab.analysis.statistics import (
    end_bias,
    hypothesis_verdicts,
    late_schedules,
    paired_differences,
    summarise_paired,
)
from curriculab.analysis.verdicts import analyse
from tests.support.finetune_cells import DOMAINS, EFFECTS, k3_cells

BINS = 10


def test_weights_per_ratio_follow_the_utility_and_the_cells_counts(tmp_path: Path) -> None:
    blocks = {"a": 500, "b": 200, "c": 800}
    manifests = []
    for name, n in blocks.items():
        manifests.append(tmp_path / f"{name}.json")
        splits = {"train": {"n_blocks": n, "n_docs": 1}, "test": {"n_blocks": 3, "n_docs": 1}}
        manifests[-1].write_text(json.dumps({"splits": splits}))
    assert train_blocks(DOMAINS, manifests) == blocks
    ratios = ["0.3", "0.1"]  # given out of order: rows come by ratio value
    table = weights_table({"count_power": -0.5}, DOMAINS, "a", ratios, blocks)
    assert table.schema == pl.Schema(WEIGHTS_SCHEMA)
    for ratio, a_blocks in (("0.1", 100), ("0.3", 300)):  # ratio x (200 + 800) blocks of a
        counts = np.array([a_blocks, 200, 800], dtype=float) ** -0.5
        rows = table.filter(pl.col("ratio") == ratio)
        assert rows["domain"].to_list() == DOMAINS
        assert rows["weight"].to_numpy() == pytest.approx(counts / counts.sum())
    assert table["ratio"].to_list()[::3] == ["0.1", "0.3"]
    explicit = weights_table({"weights": {"a": 2, "c": 1}}, DOMAINS, "a", ratios, blocks)
    assert explicit["weight"].to_list()[:3] == pytest.approx([2 / 3, 0.0, 1 / 3])
    default = weights_table(None, DOMAINS, "a", ratios, blocks)
    assert default["weight"].to_list() == [1.0, 0.0, 0.0] * 2


def test_the_objective_is_the_weighted_mean_of_the_domains_losses() -> None:
    cells = k3_cells(seeds=2)
    blocks = {"a": 500, "b": 200, "c": 800}
    weights = weights_table(
        {"weights": {"a": 2, "b": 1, "c": 1}}, DOMAINS, "a", ["0.1", "0.3"], blocks
    )
    objective = add_objective(cells, weights, {"weights": {"a": 2, "b": 1, "c": 1}})
    by_hand = [(2 * r["test_loss_a"] + r["test_loss_b"] + r["test_loss_c"]) / 4
               for r in cells.iter_rows(named=True)]  # fmt: skip
    assert objective["objective"].to_list() == pytest.approx(by_hand, rel=1e-12)
    assert objective.drop("objective").equals(cells)  # nothing else changes, rows in order
    # count_power: the weights of a cell depend on its ratio (a's blocks are ratio x 1000).
    power = {"count_power": 1.0}
    weights = weights_table(power, DOMAINS, "a", ["0.1", "0.3"], blocks)
    objective = add_objective(cells, weights, power)
    for row, value in zip(cells.iter_rows(named=True), objective["objective"], strict=True):
        counts = {"a": 1000 * row["ratio_value"], "b": 200, "c": 800}
        total = sum(counts.values())
        assert value == pytest.approx(
            sum(counts[d] * row[f"test_loss_{d}"] for d in DOMAINS) / total
        )
    # A domain of weight 0 adds nothing, even a diverged (NaN) loss; a weighted one propagates it.
    broken = cells.with_columns(pl.lit(float("nan")).alias("test_loss_b"))
    only_ac = {"weights": {"a": 1, "c": 1}}
    weights = weights_table(only_ac, DOMAINS, "a", ["0.1", "0.3"], blocks)
    assert add_objective(broken, weights, only_ac)["objective"].is_finite().all()
    weights = weights_table({"weights": {"b": 1}}, DOMAINS, "a", ["0.1", "0.3"], blocks)
    assert add_objective(broken, weights, {"weights": {"b": 1}})["objective"].is_nan().all()
    with pytest.raises(ValueError, match=r"no utility weights for ratios \['0.3'\]"):
        add_objective(cells, weights.filter(pl.col("ratio") == "0.1"), {"weights": {"b": 1}})


def test_without_a_utility_the_objective_is_the_d1_loss_bit_for_bit() -> None:
    cells = k3_cells(seeds=3).with_columns(pl.col("d1_test_loss") * (1 + 1e-16) + 1e-13)
    weights = weights_table(None, DOMAINS, "a", ["0.1", "0.3"], {d: 100 for d in DOMAINS})
    objective = add_objective(cells, weights, None)["objective"].to_numpy()
    assert np.array_equal(objective.view(np.int64), cells["d1_test_loss"].to_numpy().view(np.int64))


def _shares(schedule: str, domain: str) -> list[float]:
    """Ten stretches of a two-domain stream, code 20% of it: where each schedule puts it."""
    code = {"shuffled": [0.2] * BINS, "d1_last": [0.0] * 8 + [1.0] * 2,
            "web_last": [1.0] * 2 + [0.0] * 8}[schedule]  # fmt: skip
    return code if domain == "code" else [1.0 - share for share in code]


def two_domain_study(schedules: dict[str, float], seeds: int = 4) -> dict[str, pl.DataFrame]:
    """cells, curves, barcodes and domain_barcodes of a code (target) / web study at three
    ratios and two arms; `schedules` maps each to its change of the code loss (nats/token)."""
    rng = np.random.default_rng(3)
    ratios = {"0.05": 0.05, "0.15": 0.15, "0.45": 0.45}
    cells, curves, bars, by_domain = [], [], [], []
    for ratio, value in ratios.items():
        for arm in ("constant", "wsd"):
            for seed in range(seeds):
                base = 4.0 + rng.normal(0, 0.2)
                for schedule, effect in schedules.items():
                    code = base + effect * (1 - value) + rng.normal(0, 0.02)
                    web = 3.5 + rng.normal(0, 0.02)
                    cell = {"ratio": ratio, "ratio_value": value, "schedule": schedule,
                            "arm": arm, "seed": seed}  # fmt: skip
                    cells.append({**cell, "d1_test_loss": code, "d2_test_loss": web,
                                  "test_loss_code": code, "test_loss_web": web})  # fmt: skip
                    for step, scale in ((0, 2.0), (50, 1.2), (100, 1.0)):
                        for domain, final in (("code", code), ("web", web)):
                            curves.append({**cell, "step": step, "tokens_seen": 1000 * step,
                                           "domain": domain, "loss": final * scale,
                                           "is_target": domain == "code"})  # fmt: skip
        for schedule in schedules:
            for seed in range(2):
                stream = {"ratio": ratio, "ratio_value": value, "schedule": schedule, "seed": seed}
                for i in range(BINS):
                    bars.append({**stream, "bin": i, "progress": i / BINS,
                                 "target_share": _shares(schedule, "code")[i]})  # fmt: skip
                    for domain in ("code", "web"):
                        by_domain.append({**stream, "domain": domain, "bin": i,
                                          "progress": i / BINS,
                                          "share": _shares(schedule, domain)[i]})  # fmt: skip
    return {
        "cells": pl.DataFrame(cells),
        "curves": pl.DataFrame(curves),
        "barcodes": pl.DataFrame(bars),
        "domain_barcodes": pl.DataFrame(by_domain, schema=DOMAIN_BARCODE_SCHEMA),
    }


def _study(utility: dict | None, domains: list[str], schedules: list[str]) -> dict:
    """The aggregate rule's params that analyse_objective reads."""
    specs = {name: {"family": "shuffled" if name == "shuffled" else "sequential"}
             for name in schedules}  # fmt: skip
    return {"utility": utility, "domains": domains, "target": domains[0], "baseline": "shuffled",
            "schedules": specs}  # fmt: skip


def test_a_two_domain_study_reads_exactly_as_before() -> None:
    study = two_domain_study({"shuffled": 0.0, "d1_last": -0.3, "web_last": 0.3})
    blocks = {"code": 100, "web": 1000}
    weights = weights_table(None, ["code", "web"], "code", ["0.05", "0.15", "0.45"], blocks)
    new = analyse_objective(
        study, study["barcodes"], study["domain_barcodes"], weights,
        _study(None, ["code", "web"], ["shuffled", "d1_last", "web_last"]),
    )  # fmt: skip
    old = analyse(study["cells"], study["curves"], study["barcodes"], "shuffled")
    # The objective is the D1 loss; the verdicts are those of the D1 loss, family and all.
    assert new["cells"]["objective"].equals(new["cells"]["d1_test_loss"], check_names=False)
    assert_frame_equal(new["verdicts"], old["verdicts"])
    late = late_schedules(study["barcodes"], "shuffled")[:1]
    assert late == ["d1_last"] and set(new["verdicts"]["schedule"]) == {"d1_last"}
    on_d1 = hypothesis_verdicts(study["cells"], late, "shuffled")
    on_objective = hypothesis_verdicts(new["cells"], late, "shuffled", column="objective")
    assert_frame_equal(on_objective, on_d1)
    assert set(new["verdicts"]["verdict"]) == {"supported"}  # the study has a real effect
    # The paired table keeps its rows and adds the objective's, identical to the D1 loss's.
    metric = pl.col("metric")
    before = pl.concat(
        summarise_paired(paired_differences(old["cells"], "shuffled", m), m)
        for m in ("d1_test_loss", "d2_test_loss", "d1_auc")
    )
    assert_frame_equal(new["paired"].filter(metric != "objective"), before)
    assert_frame_equal(
        new["paired"].filter(metric == "objective").drop("metric"),
        old["paired"].filter(metric == "d1_test_loss").drop("metric"),
    )
    # No per-domain verdicts and no fine-tuning rows: empty, with their columns.
    assert new["domain_verdicts"].is_empty()
    assert new["domain_verdicts"].schema == pl.Schema(DOMAIN_VERDICT_SCHEMA)
    assert new["finetune"].is_empty() and new["finetune"].schema == pl.Schema(FINETUNE_SCHEMA)


def test_the_verdict_family_is_where_the_utility_sits() -> None:
    schedules = {"shuffled": 0.0, "d1_last": -0.3, "web_last": 0.3}
    study = two_domain_study(schedules)
    ratios, blocks = ["0.05", "0.15", "0.45"], {"code": 100, "web": 1000}
    on_web = {"weights": {"web": 1}}
    weights = weights_table(on_web, ["code", "web"], "code", ratios, blocks)
    # Code 20% of each stream: a centre of 0.5 spread, 0.9 at the end (d1_last) or 0.1 at the
    # start (web_last), where web is at 0.4 and 0.6.
    bias = utility_end_bias(study["domain_barcodes"], weights)
    assert bias == pytest.approx({"shuffled": 0.5, "d1_last": 0.4, "web_last": 0.6})
    assert end_bias(study["barcodes"]) == pytest.approx({"shuffled": 0.5, "d1_last": 0.9,
                                                         "web_last": 0.1})  # fmt: skip
    d1_only = weights_table(None, ["code", "web"], "code", ratios, blocks)
    assert utility_end_bias(study["domain_barcodes"], d1_only) == pytest.approx(
        end_bias(study["barcodes"])
    )
    assert late_schedules(study["barcodes"], "shuffled", bias=bias) == ["web_last"]
    analysed = analyse_objective(
        study, study["barcodes"], study["domain_barcodes"], weights,
        _study(on_web, ["code", "web"], list(schedules)),
    )  # fmt: skip
    assert set(analysed["verdicts"]["schedule"]) == {"web_last"}
    # The objective is all web here: web_last does not change it, so no verdict is supported.
    assert set(analysed["verdicts"]["verdict"]) == {"inconclusive"}
    # A stated utility reads the study domain by domain: per-domain verdicts of web_last.
    verdicts = analysed["domain_verdicts"]
    assert set(verdicts["schedule"]) == {"web_last"} and set(verdicts["domain"]) == {"code", "web"}
    code = verdicts.filter(pl.col("domain") == "code")
    assert set(code["verdict"]) == {"raised"}  # web_last raises the code loss by 0.3 x (1 - r)
    # Summaries without every domain's share: the family falls back to where D1 sits.
    fallback = analyse_objective(
        study, study["barcodes"], study["domain_barcodes"].clear(), weights,
        _study(on_web, ["code", "web"], list(schedules)),
    )  # fmt: skip
    assert set(fallback["verdicts"]["schedule"]) == {"d1_last"}


def test_per_domain_verdicts_recover_the_known_effects() -> None:
    cells = k3_cells(seeds=5)
    late = ["concentrate_a", "concentrate_c"]
    table = domain_verdicts(cells, late, "shuffled", DOMAINS)
    assert table.schema == pl.Schema(DOMAIN_VERDICT_SCHEMA)
    assert table.height == 2 * 2 * 2 * 3  # schedules x arms x ratios x domains
    assert set(table["family_size"]) == {table.height} and set(table["correction"]) == {"holm"}
    assert table["schedule"].to_list()[: table.height // 2] == ["concentrate_a"] * 12
    for row in table.iter_rows(named=True):
        truth = EFFECTS[row["schedule"]].get(row["domain"], 0.0)
        assert row["metric"] == f"test_loss_{row['domain']}"
        assert row["estimate"] == pytest.approx(truth, abs=0.03)
        expected = "raised" if truth > 0 else "lowered" if truth < 0 else "inconclusive"
        assert row["verdict"] == expected, row
    # The numbers: t-tests on the seed-paired differences, Holm over this table alone.
    expected_p = []
    for row in table.iter_rows(named=True):
        keep = (pl.col("ratio") == row["ratio"]) & (pl.col("arm") == row["arm"])
        group = cells.filter(keep).pivot("schedule", index="seed", values=row["metric"])
        diff = (group[row["schedule"]] - group["shuffled"]).to_numpy()
        expected_p.append(stats.ttest_1samp(diff, 0.0).pvalue)
    assert table["p_value"].to_numpy() == pytest.approx(expected_p, rel=1e-9)
    adjusted = multipletests(expected_p, alpha=0.05, method="holm")[1]
    assert table["p_adjusted"].to_numpy() == pytest.approx(adjusted, rel=1e-9)
    empty = domain_verdicts(cells, [], "shuffled", DOMAINS)
    assert empty.is_empty() and empty.schema == pl.Schema(DOMAIN_VERDICT_SCHEMA)


def test_a_study_is_read_domain_by_domain_with_three_domains_or_a_utility() -> None:
    assert not named_domains(["code", "web"], None)
    assert named_domains(["code", "web"], {"weights": {"code": 1}})
    assert named_domains(["code", "web", "books"], None)
    # Three domains without a utility: verdicts on the D1 loss, per-domain verdicts beside.
    cells = k3_cells(seeds=3)
    barcodes = pl.DataFrame(
        [{"ratio": r, "ratio_value": float(r), "schedule": s, "seed": 0, "bin": i,
          "progress": i / BINS, "target_share": share}
         for r in ("0.1", "0.3") for s in ("shuffled", *EFFECTS)
         for i, share in enumerate([0.3] * BINS if s != "concentrate_a" else [0] * 7 + [1] * 3)]
    )  # fmt: skip
    curves = pl.DataFrame(
        [{**{k: r[k] for k in ("ratio", "ratio_value", "schedule", "arm", "seed")}, "step": step,
          "tokens_seen": step, "domain": d, "loss": r[f"test_loss_{d}"] + 1 / (1 + step),
          "is_target": d == "a", "n_tokens": 100}
         for r in cells.iter_rows(named=True) for step in (0, 10, 20) for d in DOMAINS]
    )  # fmt: skip
    weights = weights_table(None, DOMAINS, "a", ["0.1", "0.3"], {d: 100 for d in DOMAINS})
    specs = {"shuffled": {"family": "shuffled"},
             **{s: {"family": "concentrate", "domain": s[-1]} for s in EFFECTS}}  # fmt: skip
    study = {"utility": None, "domains": DOMAINS, "target": "a", "baseline": "shuffled",
             "schedules": specs}  # fmt: skip
    analysed = analyse_objective(
        {"cells": cells, "curves": curves}, barcodes,
        pl.DataFrame(schema=DOMAIN_BARCODE_SCHEMA), weights, study,
    )  # fmt: skip
    assert set(analysed["verdicts"]["schedule"]) == {"concentrate_a"}
    # The target's loss is the objective, which H1 tests: the per-domain family leaves it out.
    assert set(analysed["domain_verdicts"]["domain"]) == set(DOMAINS) - {"a"}
    h1 = analysed["verdicts"].filter(pl.col("hypothesis") == "H1")
    assert h1.height == 2 * 2 and set(h1["family_size"]) == {h1.height + 2}  # + H2 per arm
    assert set(analysed["domain_verdicts"]["family_size"]) == {2 * 2 * 2}  # arms x ratios x b, c
    # With a stated utility the objective is not the target's loss: its loss is tested there.
    utility = {"weights": {"a": 1, "b": 1, "c": 1}}
    weighted = weights_table(utility, DOMAINS, "a", ["0.1", "0.3"], {d: 100 for d in DOMAINS})
    analysed = analyse_objective(
        {"cells": cells, "curves": curves}, barcodes, pl.DataFrame(schema=DOMAIN_BARCODE_SCHEMA),
        weighted, {**study, "utility": utility},
    )  # fmt: skip
    assert set(analysed["domain_verdicts"]["domain"]) == set(DOMAINS)
    with pytest.raises(ValueError, match="target domain 'z'"):
        judged_domains(DOMAINS, "z", None)
    metrics = set(analysed["paired"]["metric"])
    assert {f"test_loss_{d}" for d in DOMAINS} <= metrics and "objective" in metrics
    assert set(analysed["finetune"]["schedule"]) == set(EFFECTS)


def test_every_domain_strip_is_read_from_the_stream_summaries(tmp_path: Path) -> None:
    from curriculab.io import write_json
    from curriculab.streams.build import build_order
    from curriculab.streams.schedules import BudgetSpec
    from curriculab.streams.summary import BARCODE_BINS, summarise_order

    budget = BudgetSpec("fixed_data", total_blocks=None, max_epochs=None)
    blocks = {"a": 200, "b": 300, "c": 100}
    spec = {"family": "concentrate", "domain": "c"}
    names, order = build_order(blocks, "a", 0.25, "concentrate_c", spec, 0, budget)
    summary = summarise_order(names, order, "a", seq_len=16)
    write_json(tmp_path / "new.json", summary)
    streams = [("0.25", "concentrate_c", 0, tmp_path / "new.json")]
    table = collect_domain_barcodes(streams)
    assert table.schema == pl.Schema(DOMAIN_BARCODE_SCHEMA)
    assert table.height == BARCODE_BINS * 3
    totals = table.group_by("bin").agg(pl.col("share").sum())["share"]
    assert totals.to_numpy() == pytest.approx(1.0)  # every stretch is all of some domain
    a = table.filter(pl.col("domain") == "a").sort("bin")["share"].to_list()
    assert a == summary["target_share_by_bin"]
    c = table.filter(pl.col("domain") == "c").sort("bin")["share"].to_list()
    assert c[-1] == 1.0 and c[0] == 0.0  # concentrated at the end
    # A summary written before share_by_bin: no strips at all, rather than some streams' only.
    del summary["share_by_bin"]
    write_json(tmp_path / "old.json", summary)
    mixed = collect_domain_barcodes([*streams, ("0.5", "concentrate_c", 0, tmp_path / "old.json")])
    assert mixed.is_empty() and mixed.schema == pl.Schema(DOMAIN_BARCODE_SCHEMA)


def test_the_objective_auc_is_the_area_under_the_weighted_curve() -> None:
    """Uneven evaluation spacing, three domains, two cells: against a hand computation, and
    with weight 1 on the target it is d1_auc."""
    rng = np.random.default_rng(5)
    tokens = np.array([0, 100, 250, 700, 1000])
    rows = []
    for seed in (0, 1):
        for domain in ("a", "b", "c"):
            loss = 6.0 - rng.random() - np.linspace(0, 2, len(tokens)) * rng.random()
            rows += [
                {"ratio": "0.1", "ratio_value": 0.1, "schedule": "s", "arm": "wsd",
                 "seed": seed, "step": i, "tokens_seen": int(t), "domain": domain,
                 "loss": float(v), "is_target": domain == "b", "n_tokens": 100}
                for i, (t, v) in enumerate(zip(tokens, loss, strict=True))
            ]  # fmt: skip
    curves = pl.DataFrame(rows)
    weights = pl.DataFrame(
        {"ratio": ["0.1"] * 3, "domain": ["a", "b", "c"], "weight": [0.5, 0.3, 0.2]}
    )
    got = objective_auc(curves, weights).sort("seed")
    for seed in (0, 1):
        cell = curves.filter(pl.col("seed") == seed)
        curve = sum(
            w * cell.filter(pl.col("domain") == d).sort("step")["loss"].to_numpy()
            for d, w in zip(["a", "b", "c"], [0.5, 0.3, 0.2], strict=True)
        )
        expected = float(np.trapezoid(curve, tokens) / tokens[-1])
        assert got["objective_auc"][seed] == pytest.approx(expected, rel=1e-12)
    one_hot = weights.with_columns(weight=pl.Series([0.0, 1.0, 0.0]))
    d1 = curve_metrics(curves, {("0.1", "wsd"): 5.0}).sort("seed")["d1_auc"].to_numpy()
    assert objective_auc(curves, one_hot).sort("seed")["objective_auc"].to_numpy() == (
        pytest.approx(d1, rel=1e-12)
    )
