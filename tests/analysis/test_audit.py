"""The comparability audit and the verdicts it allows, on simulated grids with planted confounds.

Each grid has the shape of a real study (three ratios, the baseline and one late schedule, one
learning-rate arm) and is fed to the real code path of the aggregate step: the audit of every
seed pair (analysis.audit) from run facts, stream and exposure tables as the pipeline writes
them, then the verdict family and the H1/H2 verdicts (analysis.verdicts, statistics).

- Confounded grids: the late schedule differs from its control in order (with no effect at
  all) and in one more factor that carries a large true effect on D1's loss: the
  learning-rate curve, D1's token count, or the evaluation blocks. None may produce an H1 or
  H2 verdict, and each audit line must name the factor.
- An order-only grid with a true order effect keeps every verdict the unaudited procedure
  gives, with the power of tests/analysis/test_verdict_simulation.py.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest

from curriculab.analysis.audit import FACTS_SCHEMA, audit, comparison_list, eligible
from curriculab.analysis.controls import AuditSpec
from curriculab.analysis.statistics import NOT_JUDGED, hypothesis_verdicts
from curriculab.analysis.verdicts import verdict_family
from curriculab.errors import ConfigError
from curriculab.training.lr import lr_record

RATIOS = ["0.05", "0.15", "0.45"]
BASELINE, LATE, ARM = "shuffled", "late", "wsd"
DOMAINS = ("recipes", "wiki")
STEPS, BATCH = 100, 8
CONFOUNDS = {  # the planted factor -> the words its audit line must hold
    "lr": "LR schedule (decay from 95% vs 80%)",
    "tokens": "recipes tokens +57%",
    "evaluation": "evaluation blocks",
}
WSD = {
    "lr": 1e-3,
    "lr_schedule": "wsd",
    "warmup_fraction": 0.05,
    "min_lr_fraction": 0.1,
    "decay_fraction": 0.2,
    "decay_start": "window",
}


def _facts(schedule: str, ratio: str, seed: int, confound: str | None) -> dict:
    late = schedule == LATE
    window = 0.95 if late and confound == "lr" else None  # None: the final 20% decays
    record = lr_record(STEPS, SimpleNamespace(**WSD), window)
    return {
        "ratio": ratio,
        "schedule": schedule,
        "arm": ARM,
        "seed": seed,
        "stream_sha256": f"{schedule}/{ratio}/{seed}",  # every schedule has its own order
        "steps": STEPS,
        "batch_tokens": BATCH * 128,
        "preset": "tiny",
        "n_params": 1000,
        "init_seed": seed,
        "lr_sha256": record["sha256"],
        "lr_record": json.dumps(record, sort_keys=True),
        "decay_start": record["decay_start_step"] / STEPS,
        "evaluation": "other blocks" if late and confound == "evaluation" else "blocks",
    }


def _domains(schedule: str, ratio: str, seed: int, confound: str | None) -> list[dict]:
    """Stream and exposure rows of one cell: D1 gets 57% more tokens (repeats) in a tokens
    grid; exposure moves with the order in every grid (never a confound)."""
    rows = []
    for domain in DOMAINS:
        unique = 10000 * float(ratio) if domain == "recipes" else 20000
        upsampled = schedule == LATE and confound == "tokens" and domain == "recipes"
        extra = 0.57 * unique if upsampled else 0.0
        rows.append(
            {
                "ratio": ratio,
                "schedule": schedule,
                "arm": ARM,
                "seed": seed,
                "domain": domain,
                "unique_tokens": int(unique),
                "repeated_tokens": int(extra),
                "sequences": int(unique + extra) // 128,
                "mean_lr_fraction": 0.6 if schedule == LATE and domain == "recipes" else 0.9,
            }
        )
    return rows


def grid(
    confound: str | None, seeds: int, late_minus_base: np.ndarray, rng: np.random.Generator
) -> dict[str, pl.DataFrame]:
    """One simulated study: cells (d1_test_loss with seed, seed x ratio and cell noise; the
    late schedule shifted by `late_minus_base` per ratio), run facts, stream_domains,
    exposure and barcodes (the late schedule's D1 in the final tenth)."""
    cells, facts, domains, bars = [], [], [], []
    seed_effect = rng.normal(0, 0.1, seeds)
    subsample = rng.normal(0, 0.1, (seeds, len(RATIOS)))
    for i, ratio in enumerate(RATIOS):
        for seed in range(seeds):
            for schedule in (BASELINE, LATE):
                loss = 3.0 + seed_effect[seed] + subsample[seed, i] + rng.normal(0, 0.05)
                loss += late_minus_base[i] if schedule == LATE else 0.0
                identity = {"ratio": ratio, "schedule": schedule, "arm": ARM, "seed": seed}
                cells.append({**identity, "ratio_value": float(ratio), "d1_test_loss": loss})
                facts.append(_facts(schedule, ratio, seed, confound))
                domains += _domains(schedule, ratio, seed, confound)
                share = [0.0] * 9 + [1.0] if schedule == LATE else [0.1] * 10
                bars += [
                    {"ratio": ratio, "ratio_value": float(ratio), "schedule": schedule,
                     "seed": seed, "bin": b, "progress": b / 10, "target_share": s}
                    for b, s in enumerate(share)
                ]  # fmt: skip
    table = pl.DataFrame(domains)
    return {
        "cells": pl.DataFrame(cells),
        "facts": pl.DataFrame(facts, schema=FACTS_SCHEMA),
        "stream_domains": table.select(
            "ratio", "schedule", "seed", "domain", "unique_tokens", "repeated_tokens"
        ).unique(maintain_order=True),
        "exposure": table.select(
            "ratio", "schedule", "arm", "seed", "domain", "sequences", "mean_lr_fraction"
        ),
        "barcodes": pl.DataFrame(bars),
    }


def judge(study: dict[str, pl.DataFrame], chosen=None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(comparisons, verdicts) by the aggregate step's own functions."""
    listed = comparison_list(study["cells"], BASELINE, {})
    _, comparisons = audit(
        study["facts"], study["stream_domains"], study["exposure"], listed, AuditSpec()
    )
    judged = eligible(comparisons)
    late = verdict_family(study["barcodes"], BASELINE, chosen, None, judged)
    return comparisons, hypothesis_verdicts(study["cells"], late or [LATE], BASELINE,
                                            judged=judged)  # fmt: skip


@pytest.mark.parametrize("confound", sorted(CONFOUNDS))
def test_a_confound_with_a_true_effect_gets_no_verdict(confound: str) -> None:
    rng = np.random.default_rng(3)
    effect = np.array([-0.6, -0.4, -0.2])  # large: every such grid was "supported" before
    for _ in range(20):
        study = grid(confound, 5, effect, rng)
        comparisons, verdicts = judge(study)
        assert comparisons.height == 3 and not comparisons["order_only"].any()
        for line in comparisons["differs_in"]:
            assert line.startswith("order; ") and CONFOUNDS[confound] in line, line
        assert (verdicts["verdict"] == NOT_JUDGED).all() and (verdicts["family_size"] == 0).all()
        assert set(verdicts["hypothesis"]) == {"H1", "H2"}
        # Still stated: the compound intervention's estimate and interval.
        assert verdicts.filter(pl.col("hypothesis") == "H1")["estimate"].is_finite().all()
        # Without the audit the same grid would have earned H1 verdicts: the test has teeth.
        unaudited = hypothesis_verdicts(study["cells"], [LATE], BASELINE)
        assert (unaudited["verdict"] == "supported").any()
        # The automatic family finds nothing to judge; a stated one is a one-line error.
        assert verdict_family(study["barcodes"], BASELINE, None, None, eligible(comparisons)) == []
        with pytest.raises(ConfigError, match=r"^config key 'analysis.verdict_schedules'"):
            judge(study, [LATE])


def test_order_alone_keeps_the_verdicts_and_their_power() -> None:
    rng = np.random.default_rng(11)
    effect = np.array([-0.6, -0.4, -0.2])  # tests/analysis/test_verdict_simulation.py's power case
    supported = {"H1": 0, "H2": 0}
    grids = 60
    for _ in range(grids):
        study = grid(None, 5, effect, rng)
        comparisons, verdicts = judge(study)
        assert comparisons["order_only"].all()
        assert set(comparisons["differs_in"]) == {"order only"}
        assert verdicts["judged"].all() and (verdicts["family_size"] == 4).all()
        unaudited = hypothesis_verdicts(study["cells"], [LATE], BASELINE)
        assert verdicts["verdict"].to_list() == unaudited["verdict"].to_list()
        assert verdicts["p_adjusted"].to_list() == unaudited["p_adjusted"].to_list()
        for name in supported:
            mine = verdicts.filter(pl.col("hypothesis") == name)["verdict"]
            supported[name] += (mine == "supported").mean()
    assert supported["H1"] / grids >= 0.8 and supported["H2"] / grids >= 0.5, supported


def test_tolerances_decide_what_counts_as_a_difference() -> None:
    study = grid("tokens", 3, np.zeros(3), np.random.default_rng(1))
    listed = comparison_list(study["cells"], BASELINE, {})
    loose = AuditSpec(tokens=0.6, epochs=0.6)
    _, comparisons = audit(
        study["facts"], study["stream_domains"], study["exposure"], listed, loose
    )
    assert comparisons["order_only"].all()
    _, strict = audit(
        study["facts"], study["stream_domains"], study["exposure"], listed, AuditSpec()
    )
    assert not strict["order_only"].any()
    assert all("recipes passes 1.57 vs 1.00" in line for line in strict["differs_in"])


def test_a_family_changed_after_results_is_recorded(tmp_path) -> None:
    from curriculab.analysis.registration import register, spec_hash

    out, runs = tmp_path / "preregistration.json", tmp_path / "runs"
    spec = {"verdict_schedules": ["late"], "seeds": [0, 1, 2]}
    first = register(spec, out, runs)
    assert first["sha256"] == spec_hash(spec) and first["changed_after_results"] is None
    assert register(spec, out, runs)["history"] == first["history"]  # same family: no entry
    changed = register({**spec, "seeds": [0, 1]}, out, runs)  # before any cell: allowed
    assert len(changed["history"]) == 2 and changed["changed_after_results"] is None
    (runs / "cell").mkdir(parents=True)
    (runs / "cell" / "metrics.json").write_text("{}")
    late = register({**spec, "verdict_schedules": ["other"]}, out, runs)
    flagged = late["changed_after_results"]
    assert flagged["changed"]["cells_existing"] == 1 and flagged["now"]["sha256"] == late["sha256"]
    assert flagged["first"]["sha256"] == changed["sha256"]  # the family the cells were run under
