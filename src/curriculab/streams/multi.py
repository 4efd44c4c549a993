"""Schedule families for K domains: by utility, per-domain end windows, one domain concentrated.

Registered in the same registry as the two-domain families (streams.schedules); the package
imports this module, so `family:` names resolve wherever schedules are checked or built.
`utility_order` and `end_windows` with `shares: utility` read the study's utility weights
(`Context.utility`, from curriculab.objective): their spec carries the `utility` key, so they
rerun when the weights change and no other schedule does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from curriculab.streams.schedules import Context, Plan, Profile, family


def _mixture_profile(ctx: Context, window: float, share: np.ndarray, name: str) -> Profile:
    """Base mixture, then `share` (K,) in the final `window`. Under fixed_data each domain's
    base share is what its total leaves (an error names a domain that has too little); under
    fixed_tokens the base is the natural mixture."""
    base = ctx.natural.copy()
    if ctx.budget == "fixed_data":
        base = (ctx.natural - window * share) / (1.0 - window)
        tolerance = 0.5 / ctx.available.sum()
        for k in np.flatnonzero(base < -tolerance):
            need = window * share[k] * ctx.available.sum()
            raise ctx.fail(
                name,
                f"needs {need:.0f} {ctx.names[k]!r} blocks in the final {window:g} of training "
                f"but fixed_data has only {ctx.available[k]}; lower its share, shorten the "
                "window, or use budget fixed_tokens",
            )
        base = np.clip(base, 0.0, None)
        base /= base.sum()
    edges = np.array([0.0, 1.0 - window, 1.0])
    return Profile(edges, np.stack([base, share], axis=1), window=1.0 - window)


def uses_utility(spec: dict[str, Any]) -> bool:
    """Whether a schedule's order depends on the study's utility weights (so its spec carries
    the `utility` key and changes, and reruns, when they change)."""
    return spec["family"] == "utility_order" or (
        spec["family"] == "end_windows" and spec.get("shares") == "utility"
    )


@family("utility_order")
def utility_order(ctx: Context, params: dict[str, Any]) -> Plan:
    """Every domain placed by its utility, one `strength` from shuffled (0) to fully ordered (1).

    Strength 1 is `sequential` with domains in rising utility (highest last; equal utilities
    share a stretch, mixed at their natural shares), each stretch as long as its domains'
    share of the data. Strength s mixes the two at every moment: s_k(t) = (1 - s) natural_k +
    s seq_k(t). Every domain keeps its natural share of the run, so the family works under
    both budgets and changes only *when* each domain is seen.
    """
    strength = float(params["strength"])
    levels = np.unique(ctx.utility)  # rising
    natural = ctx.natural
    edges, columns = [0.0], []
    for level in levels:
        group = ctx.utility == level
        if natural[group].sum() <= 0.0:
            continue
        edges.append(edges[-1] + natural[group].sum())
        columns.append(np.where(group, natural, 0.0) / natural[group].sum())
    edges[-1] = 1.0
    ordered = np.stack(columns, axis=1)
    shares = (1.0 - strength) * natural[:, None] + strength * ordered
    # The window: the stretch of the highest utility (none at strength 0, or one stretch).
    window = edges[-2] if strength > 0 and len(columns) > 1 else None
    return Profile(np.array(edges), shares, window=window)


def _check_end_windows(params: dict[str, Any], names: Sequence[str], target: str) -> str | None:
    shares = params["shares"]
    if shares == "utility":
        return None
    if not isinstance(shares, dict):
        return "parameter 'shares' must map domains to shares, or be the word utility"
    unknown = sorted(set(shares) - set(names))
    if unknown:
        return f"parameter 'shares': unknown domains {unknown}; expected some of {sorted(names)}"
    if abs(sum(shares.values()) - 1.0) > 1e-6:
        return f"parameter 'shares': shares sum to {sum(shares.values()):g}, expected 1"
    return None


@family("end_windows", check=_check_end_windows)
def end_windows(ctx: Context, params: dict[str, Any]) -> Plan:
    """Per-domain end windows: every domain's share inside the final `window` given explicitly
    (`shares: {domain: share}`, summing to 1) or from its utility (`shares: utility`: share
    proportional to natural share x utility, so a domain of utility 0 leaves the window and
    the rest are upsampled by their utility). Before the window, the base mixture of
    `_mixture_profile`. The K-domain form of end_window."""
    if params["shares"] == "utility":
        share = ctx.natural * ctx.utility
        if share.sum() <= 0.0:
            raise ctx.fail("shares", "every domain with data has utility 0")
        share = share / share.sum()
    else:
        share = np.array([float(params["shares"].get(name, 0.0)) for name in ctx.names])
    return _mixture_profile(ctx, params["window"], share, "shares")


def _check_concentrate(params: dict[str, Any], names: Sequence[str], target: str) -> str | None:
    if params["domain"] not in names:
        return f"parameter 'domain': {params['domain']!r} is not one of the domains {list(names)}"
    return None


@family("concentrate", check=_check_concentrate)
def concentrate(ctx: Context, params: dict[str, Any]) -> Plan:
    """All of one domain's data in the final `window` of training, the others spread: the
    domain treated as fine-tuning data. Each domain keeps its natural share of the run, so
    against `shuffled` (the domain spread through training) only *when* it is seen changes.

    window: null (default) makes the window exactly as long as the domain's share, so the
    window is that domain alone; a longer window mixes the others into it in proportion.
    """
    k = ctx.names.index(params["domain"])
    mass = ctx.natural[k]
    window = params.get("window") or mass
    if window < mass - 1e-12:
        raise ctx.fail(
            "window",
            f"{window:g} is shorter than {params['domain']!r}'s share of the run ({mass:.4f}); "
            "lengthen it or leave it null",
        )
    if mass >= 1.0:
        raise ctx.fail("domain", f"{params['domain']!r} is all of the data")
    others = np.where(np.arange(len(ctx.names)) == k, 0.0, ctx.natural) / (1.0 - mass)
    inside = others * (1.0 - mass / window)
    inside[k] = mass / window
    edges = np.array([0.0, 1.0 - window, 1.0])
    return Profile(edges, np.stack([others, inside], axis=1), window=1.0 - window)
