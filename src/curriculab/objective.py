"""The study's objective: a utility weight per domain, and the utility-weighted test loss.

"The amount we care about domains is not proportional to their frequency." A study states how
much each domain's test loss counts with the config key `utility`:

- `weights: {domain: u}`: explicit weights (>= 0; a domain left out counts 0), or
- `count_power: p`: u_k proportional to n_k ** p, n_k the train blocks domain k has in the
  cell (after the D1 subsample of its ratio); p < 0 makes rare domains count more.

The objective is sum_k u_k L_k / sum_k u_k. Without `utility`, the weight is 1 on the target
domain (D1) and 0 elsewhere, so the objective *is* the D1 test loss and every two-domain study
reads as before. Schedule families that place domains by utility (streams.schedules) and the
analysis (analysis.domains) take their weights from `utility_weights`, so both always agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def check_utility(utility: dict[str, Any] | None, names: Sequence[str]) -> str | None:
    """A problem with the `utility` key (config time, no data needed), or None."""
    if utility is None or "count_power" in utility:
        return None
    unknown = sorted(set(utility["weights"]) - set(names))
    if unknown:
        return f"'weights' names unknown domains {unknown}; expected some of {sorted(names)}"
    if not any(weight > 0 for weight in utility["weights"].values()):
        return "'weights' needs at least one weight above 0"
    return None


def utility_weights(
    utility: dict[str, Any] | None, names: Sequence[str], target: str, available: np.ndarray
) -> np.ndarray:
    """(K,) utility weights in the order of `names`, summing to 1.

    available: (K,) train blocks of each domain in the cell (used by `count_power` only).
    """
    if utility is None:
        weights = np.array([1.0 if name == target else 0.0 for name in names])
    elif "count_power" in utility:
        counts = np.asarray(available, dtype=np.float64)
        weights = np.where(counts > 0, np.maximum(counts, 1.0) ** utility["count_power"], 0.0)
    else:
        weights = np.array([float(utility["weights"].get(name, 0.0)) for name in names])
    return weights / weights.sum()


def is_default(utility: dict[str, Any] | None) -> bool:
    """True when the study states no utility: the objective is the D1 test loss itself."""
    return utility is None


def describe(utility: dict[str, Any] | None, target: str) -> str:
    """One phrase for the report: how the study weighs its domains."""
    if utility is None:
        return f"the {target} test loss (utility 1 on {target}, 0 elsewhere)"
    if "count_power" in utility:
        return (
            f"the utility-weighted test loss, u_k proportional to n_k^{utility['count_power']:g} "
            "(n_k: the domain's train blocks in the cell)"
        )
    listed = ", ".join(f"{name} {w:g}" for name, w in sorted(utility["weights"].items()))
    return f"the utility-weighted test loss (weights {listed})"
