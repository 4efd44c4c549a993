"""The report's account of what its comparisons hold fixed (analysis.audit, analysis.registration):
the comparability audit of every comparison, the families of tests and what each holds fixed,
the registration of the verdict family (and a warning when it changed after results existed),
and how matched controls appear in the charts (left out) and tables (named in words)."""

from __future__ import annotations

import html
from typing import Any

import polars as pl

from curriculab.analysis.controls import MATCH
from curriculab.analysis.statistics import NOT_JUDGED
from curriculab.report import fmt
from curriculab.report.sections import table
from curriculab.report.words import Words, matched_parts, schedule_label

AUDIT_TEXT = """Every comparison the report states is audited from what its cells did, not from
the config: the streams (whether the order differs, and each domain's training tokens, unique
tokens and passes), the learning rate at every optimiser step (the largest difference of lr/peak,
and where each WSD decay starts), each domain's learning-rate exposure (the sum of lr/peak over
its tokens), steps and tokens per step, the final evaluation's blocks, the initial weights (the
seed) and the model. Tolerances are set in analysis.audit. A comparison earns a verdict only when
its cells differ in order and in nothing else; exposure is reported but is part of what order
means under one learning-rate curve. Where an arm's cooldown starts at the schedule's window
(decay_start: window), each schedule is compared with a matched control: the baseline's own
stream trained under that schedule's learning-rate curve, branched from the baseline where the
two learning rates part. A matched control against the baseline (the learning-rate curve alone)
measures what the curve itself does. Matched controls are left out of the charts, and named in
the tables as "{baseline} at a schedule's learning rate (matched control)"."""

KINDS = {  # comparisons.kind -> what the comparison isolates, in the order the table lists them
    "baseline": "schedule vs baseline",
    "matched": "schedule vs its matched control",
    "lr_only": "learning-rate curve alone",
}


def _entry(registration: dict[str, Any]) -> dict[str, Any]:
    """The history entry of the registration in force (its last appearance); the record
    itself without a history."""
    mine = [e for e in registration.get("history") or [] if e["sha256"] == registration["sha256"]]
    return mine[-1] if mine else {"sha256": registration["sha256"]}


def registration_text(registration: dict[str, Any] | None) -> str:
    """One sentence: the verdict family's registered hash (12 characters) and time."""
    if not registration:
        return ""
    entry = _entry(registration)
    when = f" at {entry['time']}" if entry.get("time") else ""
    cells = entry.get("cells_existing")
    before = (
        "" if cells is None else " before any cell had finished" if not cells else
        f" when {cells} cells had finished"
    )  # fmt: skip
    return (
        f"The verdict family (its schedules, arms, ratios, seeds, baseline, matched controls, "
        f"the audit's tolerances, alpha and correction) was registered as "
        f"{registration['sha256'][:12]}{when}{before} (results/analysis/preregistration.json)."
    )


def registration_banner(registration: dict[str, Any] | None) -> str:
    """The warning at the top of the page when the verdict family changed after results
    existed (analysis.registration.changed_after_results); empty otherwise."""
    changed = (registration or {}).get("changed_after_results")
    if not changed:
        return ""
    first, then, now = changed["first"], changed["changed"], changed["now"]
    text = (
        f"The verdict family was changed after {then['cells_existing']} cells had finished: "
        f"first registered {first['sha256'][:12]} at {first['time']}, changed to "
        f"{then['sha256'][:12]} at {then['time']} with {then['cells_existing']} cells "
        f"existing; now {now['sha256'][:12]}. Verdicts of a family chosen after seeing results "
        "are not pre-registered ones."
    )
    return f'<p class="warning" id="registration-changed"><b>Warning:</b> {html.escape(text)}</p>'


def _change(row: dict[str, Any]) -> str:
    """ "+0.050 [+0.046, +0.054]" (nats/token); "n/a" without an estimate."""
    signed = [fmt.loss(row.get(key), signed=True) for key in ("estimate", "ci_low", "ci_high")]
    return signed[0] if signed[1] == fmt.NA else f"{signed[0]} [{signed[1]}, {signed[2]}]"


def _ordered(comparisons: pl.DataFrame) -> pl.DataFrame:
    """By arm, then by treatment (a matched control's rows beside its schedule's), kind and
    ratio; with the columns the table shows."""
    rows = list(comparisons.iter_rows(named=True))
    treatment = [(matched_parts(r["schedule"]) or ("", r["schedule"]))[1] for r in rows]
    return comparisons.with_columns(
        pl.Series("treatment", treatment, pl.String),
        pl.Series("order", [[*KINDS, r["kind"]].index(r["kind"]) for r in rows], pl.Int64),
        pl.Series("pair", [schedule_label(r["schedule"]) for r in rows], pl.String),
        pl.Series("against", [schedule_label(r["control"]) for r in rows], pl.String),
        pl.Series("isolates", [KINDS.get(r["kind"], r["kind"]) for r in rows], pl.String),
        pl.Series("change", [_change(r) for r in rows], pl.String),
        pl.Series("lr_exposure", [r.get("exposure") or None for r in rows], pl.String),
    ).sort("arm", "treatment", "order", "ratio_value", "control")


def comparability_section(
    comparisons: pl.DataFrame,
    baseline: str,
    words: Words,
    registration: dict[str, Any] | None = None,
) -> str:
    """How the audit works, how many comparisons earn a verdict, then every comparison: what
    it compares, what its cells differ in, the exposure note, its estimate and eligibility."""
    text = " ".join(AUDIT_TEXT.format(baseline=baseline).split())
    eligible = int(comparisons["order_only"].sum())
    count = (
        f"{comparisons.height} comparisons (per ratio and learning-rate arm) were audited; "
        f"{eligible} differ in order alone and are eligible for a verdict."
    )
    columns = {
        "arm": "lr arm",
        "pair": "schedule",
        "against": "compared with",
        "isolates": "what it isolates",
        "ratio": words.ratio,
        "n_pairs": "seed pairs",
        "differs_in": "differs in",
        "lr_exposure": "lr exposure (reported, not a confound)",
        "change": f"change in the {words.short}, schedule minus control (95% CI, nats/token)",
        "order_only": "eligible for a verdict",
    }
    paragraphs = [text, count, registration_text(registration)]
    body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs if p)
    return body + table(_ordered(comparisons), columns)


def _verdict_family(verdicts: pl.DataFrame) -> str:
    """The H1/H2 family: its judged tests, and how many more are stated without a verdict."""
    judged = int(verdicts["family_size"].max() or 0)
    unjudged = verdicts.filter(pl.col("verdict") == NOT_JUDGED).height
    extra = f"; {unjudged} more stated without a verdict" if unjudged > 0 else ""
    return (
        f"H1/H2 verdicts ({judged} tests{extra}): Holm over the judged tests. Each schedule is "
        "compared with its matched control where its arm's cooldown follows the window, else "
        "with the baseline; only comparisons of order alone are judged."
    )


def _family_size(frame: pl.DataFrame, column: str = "family_size") -> int:
    """The tests of a family from its table's family_size column (0 without one)."""
    return int(frame[column].max() or 0) if column in frame.columns and frame.height else 0


def families_section(
    tables: dict[str, pl.DataFrame],
    selection: dict[str, Any] | None = None,
    ladder: dict[str, Any] | None = None,
    design: dict[str, Any] | None = None,
) -> str:
    """Every family of tests in this study, how many tests it holds and what each compares and
    holds fixed (those with rows only), and that each is controlled separately."""

    def rows(name: str) -> pl.DataFrame:
        frame = tables.get(name)
        return pl.DataFrame() if frame is None else frame

    items = []
    if not rows("verdicts").is_empty():
        items.append(_verdict_family(rows("verdicts")))
    if not rows("domain_verdicts").is_empty():
        size = _family_size(rows("domain_verdicts"))
        items.append(
            f"Per-domain verdicts ({size} tests): a Holm family of its own over the same "
            "comparisons, one test per domain's final test loss; order alone. Without a stated "
            "utility the target's loss is left out: H1 tests it."
        )
    if not rows("finetune").is_empty():
        objective = rows("finetune").filter(pl.col("metric") == "objective")
        items.append(
            f"Fine-tuning calls ({_family_size(objective)} tests): a Holm family of its own; "
            "each concentrate schedule against its control (matched where the arm's cooldown "
            "follows the window), on the objective; order alone. The per-domain rows beside "
            "them are exploratory."
        )
    if not rows("utility").is_empty():
        items.append(
            f"Utility by removal ({_family_size(rows('utility'))} tests): a Holm family of its "
            "own over every removal, measured domain, ratio and arm; the cells differ by design "
            "in the removed domain's data in the window; steps, learning rate and evaluation "
            "are the same. Its intervals are per comparison (unadjusted)."
        )
    if selection is not None:
        tests = selection.get("tests") or []
        items.append(
            f"Selection × placement ({len(tests)} tests, one Holm family): selections differ in "
            "which pool documents are trained on, at equal tokens; placements differ in order "
            "only."
        )
    if ladder is not None:
        tests = ladder.get("check_tests") or []
        items.append(
            f"Ladder check ({len(tests)} tests, one Holm family): the predicted mixtures "
            "against the natural, uniform and smallest-scale mixtures at the target scale; the "
            "mixtures differ by design, at equal tokens and learning rate. The per-scale "
            "optima and predictions carry intervals, not tests."
        )
    if design is not None:
        items.append(
            "Design loop: no test. Its recommendation is one measured point; its intervals "
            "are the surrogate's, not a family's."
        )
    if not items:
        return "<p>This study states no tests: every number in it is descriptive.</p>"
    listed = "".join(f"<li>{html.escape(item)}</li>" for item in items)
    return (
        f"<ul>{listed}</ul><p>Each family is controlled separately: Holm's step-down "
        "correction holds the family-wise error rate at 5% within it, not across families, so "
        "a reader who acts on verdicts from several families should expect more than 5% "
        "chance of at least one false one among them. Beside every t-test, an exact sign-flip "
        "p-value (Holm-adjusted within the same family) is a robustness check; with n seeds "
        "it cannot go below 2/2<sup>n</sup>. Every other number in the report is exploratory."
        "</p>"
    )


IS_CONTROL = pl.col("schedule").str.contains(MATCH, literal=True)


def without_controls(tables: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """The tables the charts draw: without matched controls, which share the baseline's order
    and would read as one more schedule (the comparability audit states their effect)."""
    return {
        name: frame.filter(~IS_CONTROL) if _has_schedules(frame) else frame
        for name, frame in tables.items()
    }


def labelled(frame: pl.DataFrame) -> pl.DataFrame:
    """`frame` with each matched control's schedule named in words (report.words)."""
    if not _has_schedules(frame):
        return frame
    names = frame.filter(IS_CONTROL)["schedule"].unique().to_list()
    return frame.with_columns(pl.col("schedule").replace({n: schedule_label(n) for n in names}))


def _has_schedules(frame: pl.DataFrame) -> bool:
    return "schedule" in frame.columns and frame.schema["schedule"] == pl.String
