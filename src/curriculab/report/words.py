"""How the report names things: the two-domain wording (D1, D2) or domains by name.

A two-domain study without a utility reads as it always has: D1 is the target, D2 the other
domain, and the verdicts are about the final D1 test loss. A study read domain by domain
(analysis.objective.named_domains: K > 2 domains or a stated utility) has no single "D2" and
judges the objective (the utility-weighted test loss), so its charts and sentences name the
domains and the objective instead. Every chart title, axis and sentence that names the ratio,
the measured loss or what a schedule places late takes its words from one `Words`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from curriculab.analysis.objective import named_domains
from curriculab.objective import is_default


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
