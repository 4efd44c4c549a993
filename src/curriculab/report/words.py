"""How the report names things: the two-domain wording (D1, D2) or domains by name.

A two-domain study without a utility reads as it always has: D1 is the target, D2 the other
domain, and the verdicts are about the final D1 test loss. A study read domain by domain
(analysis.domains.named_domains: K > 2 domains or a stated utility) has no single "D2" and
judges the objective (the utility-weighted test loss), so its charts and sentences name the
domains and the objective instead. Every chart title, axis and sentence that names the ratio,
the measured loss or what a schedule places late takes its words from one `Words`.

A matched control (analysis.controls: the baseline's order under another schedule's
learning-rate curve, named "<baseline>@<schedule>") is named in words in tables
(`schedule_label`) and beside every verdict (`control_words`, `audit_note`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from curriculab.analysis.controls import MATCH
from curriculab.analysis.domains import named_domains
from curriculab.analysis.signflip import seeds_needed
from curriculab.analysis.statistics import NOT_JUDGED
from curriculab.objective import is_default
from curriculab.report import fmt


@dataclass(frozen=True)
class Words:
    """The phrases that differ between the two readings (defaults: the two-domain study)."""

    ratio: str = "D1 ratio"  # the amount-of-data axis, and panels: "D1 ratio 0.05"
    ratio_unit: str = "D1 / D2 train blocks"  # what the ratio counts
    measure: str = "final D1 test loss"  # what verdicts and charts compare across schedules
    short: str = "D1 loss"  # in a legend or axis: "Δ D1 loss (nats/token)"
    helps: str = "helps D1"  # a schedule that lowers `measure` ...
    amount: str = "D1"  # "... against the amount of D1"
    placed: str = "D1"  # what the default verdict family places latest
    subsample: str = "the D1 subsample"  # what a seed fixes across ratios besides the weights
    column: str = "d1_test_loss"  # the cells' column (and paired metric) behind `measure`
    named: bool = False  # domains by name: per-domain curves and strips, no pooled D2


D1_WORDS = Words()


def named_words(target: str, utility: dict[str, Any] | None) -> Words:
    """The wording of a study read domain by domain, with `target` the domain whose amount the
    ratio sets. Without a utility (K > 2 domains), the objective is the target's loss: say so."""
    weighted = not is_default(utility)
    return Words(
        ratio=f"{target} ratio",
        ratio_unit=f"{target} / other train blocks",
        measure=(
            "final objective (utility-weighted test loss)"
            if weighted
            else f"final objective ({target} test loss)"
        ),
        short="objective",
        helps="lowers the objective",
        amount=target,
        placed=target if is_default(utility) else "the utility",
        subsample=f"the {target} subsample",
        column="objective",
        named=True,
    )


def words_for(study: dict[str, Any]) -> Words:
    """The wording of a study (the report rule's study summary)."""
    utility = study.get("utility")
    if named_domains(study["domains"], utility):
        return named_words(study["target_domain"], utility)
    return D1_WORDS


def matched_parts(name: str) -> tuple[str, str] | None:
    """(baseline, treatment) of a matched control's name ("shuffled@d1_last"); None for any
    other schedule."""
    baseline, sep, treatment = name.partition(MATCH)
    return (baseline, treatment) if sep else None


def schedule_label(name: str) -> str:
    """A schedule as tables name it: a matched control in words, every other by its name."""
    parts = matched_parts(name)
    if parts is None:
        return name
    return f"{parts[0]} at {parts[1]}'s learning rate (matched control)"


def control_words(control: str) -> str:
    """What a comparison was made against: "shuffled", or "shuffled@d1_last, the baseline
    under d1_last's learning-rate curve" (a name the tables use, then what it is)."""
    parts = matched_parts(control)
    if parts is None:
        return control
    return f"{control}, the baseline under {parts[1]}'s learning-rate curve"


def is_judged(row: Mapping[str, Any]) -> bool:
    """Whether a verdict row earned its verdict (tables made before the audit: every row)."""
    return row.get("judged") is not False and row.get("verdict", row.get("call")) != NOT_JUDGED


def audit_note(row: Mapping[str, Any], baseline: str) -> str:
    """The audit line beside a verdict: "differs in: order only; vs shuffled". Only what it
    was compared with where the row has no verdict (`no_verdict` says what it differs in) or
    no audit (tables made before it)."""
    control = control_words(row.get("control") or baseline)
    differs = row.get("differs_in")
    return f"differs in: {differs}; vs {control}" if differs and is_judged(row) else f"vs {control}"


def no_verdict(row: Mapping[str, Any]) -> str:
    """Why a row has no verdict: the compound intervention its comparison is."""
    differs = row.get("differs_in") or "more than order (see the comparability audit)"
    return f"no verdict: differs in {differs}"


ALPHA = 0.05  # every family's error rate (analysis.statistics.holm_verdicts' default)


def sign_flip_note(row: Mapping[str, Any]) -> str:
    """The exact sign-flip test beside a t-test (analysis.signflip): "sign-flip p = 0.031,
    Holm 0.19", and where its floor with this many seeds (2 / 2^n) cannot reach 5%, how many
    seeds would; empty for tables made before it."""
    p = row.get("p_signflip")
    if p is None:
        return ""
    adjusted = row.get("p_signflip_adjusted")
    text = f"sign-flip p = {fmt.p_value(p)}"
    if adjusted is not None and adjusted == adjusted:  # NaN outside the family
        text += f", Holm {fmt.p_value(adjusted)}"
    floor = row.get("p_signflip_min")
    if floor is not None and floor >= ALPHA:
        text += (
            f"; with {row['n']} seeds it cannot go below {floor:.3g}, so cannot reach "
            f"{ALPHA:g} ({seeds_needed(ALPHA)} seeds could)"
        )
    return text
