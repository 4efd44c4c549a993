"""The audit line of a comparison: what it differs in, in words ("order only", or each
factor with its largest difference over the seed pairs), as one row of the comparisons table.
The audit itself (analysis.audit) decides what differs; this module says it."""

from __future__ import annotations

import math
from typing import Any

import polars as pl

COMPARISON_SCHEMA: dict[str, type[pl.DataType]] = {
    "ratio": pl.String,
    "ratio_value": pl.Float64,
    "schedule": pl.String,  # the treatment
    "control": pl.String,  # the baseline or a matched control
    "arm": pl.String,
    "kind": pl.String,  # baseline, matched, or lr_only (a matched control against the baseline)
    "n_pairs": pl.Int64,  # seed pairs audited
    "factors": pl.String,  # what differs beyond tolerance, comma-separated (order first)
    "order_only": pl.Boolean,  # streams differ and nothing else does: eligible for a verdict
    "differs_in": pl.String,  # the audit line: "order only", or each factor in words
    "exposure": pl.String,  # lr exposure changes above the reporting threshold, in words
}
CONFOUNDS = ("tokens", "unique", "passes", "steps", "batch", "lr", "evaluation", "init", "model")


def audit_line(
    ratio: str, schedule: str, control: str, arm: str, kind: str, rows: list[dict[str, Any]]
) -> dict[str, Any]:
    """One comparison's COMPARISON_SCHEMA row from its audit rows (every seed pair)."""
    seeds = {r["seed"] for r in rows}
    differing = [r for r in rows if r["differs"]]
    factors = sorted(
        {(r["factor"], r["domain"]) for r in differing if r["factor"] != "exposure"},
        key=lambda f: (("order", *CONFOUNDS).index(f[0]), f[1] or ""),
    )
    order = any(f == "order" for f, _ in factors)
    confounded = any(f in CONFOUNDS for f, _ in factors)
    phrases = [_phrase(factor, domain, rows) for factor, domain in factors]
    if order and not confounded:
        text = "order only"
    elif not factors:
        text = "nothing (the cells are the same)"
    else:
        text = "; ".join(phrases)
    exposure = [
        _phrase("exposure", d, rows)
        for d in sorted({r["domain"] for r in differing if r["factor"] == "exposure"})
    ]
    return {
        "ratio": ratio,
        "ratio_value": float(ratio),
        "schedule": schedule,
        "control": control,
        "arm": arm,
        "kind": kind,
        "n_pairs": len(seeds),
        "factors": ",".join(f if d is None else f"{f}:{d}" for f, d in factors),
        "order_only": order and not confounded,
        "differs_in": text,
        "exposure": "; ".join(exposure),
    }


def _largest(rows: list[dict[str, Any]], factor: str, domain: str | None) -> dict[str, Any]:
    """The seed pair's row of `factor` (and domain) with the largest |difference|."""
    mine = [r for r in rows if r["factor"] == factor and r["domain"] == domain]
    known = [r for r in mine if r["difference"] is not None and not math.isnan(r["difference"])]
    return max(known, key=lambda r: abs(r["difference"])) if known else mine[0]


def _phrase(factor: str, domain: str | None, rows: list[dict[str, Any]]) -> str:
    """A factor in words, with its largest difference over the seed pairs."""
    r = _largest(rows, factor, domain)
    t, c, d = r["treatment"], r["control_value"], r["difference"]
    unknown = d is None or (isinstance(d, float) and math.isnan(d))
    if factor == "order":
        return "order"
    if unknown:
        return f"{factor}{f' ({domain})' if domain else ''} (not recorded)"
    if factor == "lr":
        if t is not None and c is not None and t != c:
            return f"LR schedule (decay from {t:.0%} vs {c:.0%})"
        return f"LR schedule (largest lr/peak difference {d:.3g})"
    if factor in ("tokens", "exposure"):
        word = "tokens" if factor == "tokens" else "lr exposure"
        return (
            f"{domain} {word} {d:+.0%}"
            if math.isfinite(d)
            else f"{domain} {word} (none in control)"
        )
    if factor == "unique":
        return f"other {domain} data ({d:+.0%} unique tokens)"
    if factor == "passes":
        return f"{domain} passes {t:.2f} vs {c:.2f}"
    if factor == "steps":
        return f"steps {t:.0f} vs {c:.0f}"
    if factor == "batch":
        return f"tokens per step {t:.0f} vs {c:.0f}"
    if factor == "model":
        return f"model ({t:.0f} vs {c:.0f} parameters)"
    return {"evaluation": "evaluation blocks", "init": "initial weights"}[factor]
