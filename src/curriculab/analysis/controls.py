"""What a comparison must hold fixed, planned before anything trains (DAG time, torch-free).

A verdict on H1 or H2 names one factor: the order of a fixed set of data. It is earned only by
a comparison whose cells differ from each other in that factor alone (analysis.audit checks it
from what the cells actually did). Two things in a study can make a schedule differ from its
baseline in more than its order, and this module plans what removes them:

- **A learning rate that depends on the schedule.** Under an arm whose WSD cooldown starts where
  the schedule's final window starts (`decay_start: window`), a schedule with a window and the
  baseline without one decay over different stretches of training: the whole model, D2
  included, trains under another learning-rate curve. Each such schedule gets a *matched
  control*: the baseline's own stream (the same data in the same order, byte for byte) trained
  under the treatment's learning-rate curve, an ordinary cell named `<baseline>@<schedule>`
  under that arm alone. It trains identically to the baseline (or, on a trunk, to the trunk)
  until the two learning rates part, so a pack (training.branch) or the trunk starts it from
  that step: it costs only the steps after they part.
- **More of the target under a token budget.** An end window under `fixed_tokens` adds D1
  tokens unless it holds D1's total at its natural share (`hold_total`), which is therefore
  the default there (streams.schedules); `hold_total: false` asks for upsampling, which the
  audit reports under that name and never as H1.

`AuditSpec` holds the tolerances within which two cells count as equal in a factor.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from curriculab.errors import ConfigError

MATCH = "@"  # a matched control's name: <baseline>@<treatment> (no user schedule has an @)


@dataclass(frozen=True)
class AuditSpec:
    """Tolerances of the comparability audit (config `analysis.audit`)."""

    lr: float = 1e-6  # largest |lr/peak difference| at any optimiser step that is "the same curve"
    tokens: float = 0.0  # largest relative difference of a domain's training tokens
    epochs: float = 0.0  # largest difference of a domain's passes (tokens / unique tokens)
    exposure: float = 0.05  # relative change in a domain's lr exposure reported as notable
    matched_controls: bool = True  # build matched controls where the arm's lr follows the order


AUDIT_RANGES = {
    "lr": (0.0, 0.5),
    "tokens": (0.0, 0.5),
    "epochs": (0.0, 1.0),
    "exposure": (0.0, 1.0),
}


def check_audit(raw: Mapping[str, Any] | None) -> AuditSpec:
    """The typed `analysis.audit`; a tolerance outside its range is a one-line ConfigError."""
    raw = dict(raw or {})
    for key, (low, high) in AUDIT_RANGES.items():
        value = raw.get(key, getattr(AuditSpec, key))
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not low <= value <= high
        ):
            raise ConfigError(
                f"config key 'analysis.audit.{key}': {value!r} is not a number in "
                f"[{low:g}, {high:g}]"
            )
    return AuditSpec(**raw)


@dataclass(frozen=True)
class MatchedControl:
    """The baseline's order under a treatment's learning-rate curve, under `arms`."""

    name: str  # <baseline>@<treatment>
    baseline: str
    treatment: str
    arms: tuple[str, ...]  # the arms whose learning rate depends on the schedule

    def spec(self, schedules: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
        """The baseline's spec with `lr_from`, the schedule whose window sets the cooldown,
        and, for an end window, `lr_window`: its length, which fixes the cooldown's first step.

        On the baseline's trunk only when that step is known at DAG time (an end window, on
        the trunk or off it: both start their window at round((1 - window) x steps)), so the
        control starts from the trunk's checkpoint there (curriculab.training.branch.trunk_starts).
        Otherwise it trains from step 0 (on the baseline's stream, which it reads as it is)."""
        spec = {**schedules[self.baseline], "lr_from": self.treatment}
        treatment = schedules[self.treatment]
        if treatment["family"] == "end_window":
            spec["lr_window"] = treatment["window"]
        elif "trunk" in spec:
            del spec["trunk"]
        return spec


def order_dependent_arms(arms: Mapping[str, Any]) -> tuple[str, ...]:
    """The arms whose learning-rate curve depends on the schedule: WSD decaying from where the
    schedule's final window starts."""
    return tuple(
        name
        for name, cfg in arms.items()
        if cfg.lr_schedule == "wsd" and cfg.decay_start == "window"
    )


def matched_controls(
    schedules: Mapping[str, Mapping[str, Any]],
    baseline: str,
    arms: Mapping[str, Any],
    audit: AuditSpec,
) -> dict[str, MatchedControl]:
    """{name: control} for every schedule but the baseline, under the arms whose learning
    rate depends on the schedule (none when `audit.matched_controls` is off).

    A control is planned for every such schedule, also one whose window happens to give the
    baseline's own cooldown: whether they differ is only known once the streams exist, and
    an identical control costs one step (it branches off the baseline at the last step)."""
    dependent = order_dependent_arms(arms)
    if not dependent or not audit.matched_controls:
        return {}
    for name in schedules:
        if MATCH in name:  # the schema forbids it; a hand-built Study must too
            raise ConfigError(f"config key 'grid.schedules.{name}': names may not contain {MATCH}")
    return {
        f"{baseline}{MATCH}{name}": MatchedControl(
            f"{baseline}{MATCH}{name}", baseline, name, dependent
        )
        for name in schedules
        if name != baseline
    }


def control_of(
    schedule: str, arm: str, baseline: str, controls: Mapping[str, MatchedControl]
) -> str:
    """The cells a schedule's verdicts compare with under `arm`: its matched control where it
    has one, else the baseline."""
    name = f"{baseline}{MATCH}{schedule}"
    return name if name in controls and arm in controls[name].arms else baseline


def is_control(schedule: str) -> bool:
    """True for a matched control's name."""
    return MATCH in schedule
