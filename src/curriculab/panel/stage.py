"""Rule panel's body: read one panel (the study's own cells or an imported table), choose its
regressor by out-of-fold rank correlation, propose the best mixture, and write
results/panel/<name>/: panel.parquet (the table in the one-file format), predictions.parquet
(every run's metric and every regressor's out-of-fold prediction) and summary.json."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from curriculab.io import atomic_path, read_json, write_json
from curriculab.panel.cells import cells_panel
from curriculab.panel.plan import OWN, PanelSpec, PanelTable
from curriculab.panel.propose import Constraints, next_runs, propose, score
from curriculab.panel.regressors import choose
from curriculab.panel.table import (
    WEIGHT_TOLERANCE,
    Panel,
    PanelError,
    panel_frame,
    read_pair,
    read_panel,
)


def load(table: PanelTable, root: Path, domains: tuple[str, ...], late: float) -> Panel:
    """The panel a PanelTable names (paths relative to the study's directory `root`)."""
    if table.name == OWN:
        return cells_panel(root / "results/analysis/cells.parquet", root, domains, late)
    if table.file:
        return read_panel(root / table.file)
    return read_pair(root / table.weights, root / table.metrics, table.id_column, table.strip,
                     table.strip_metric)  # fmt: skip


def _per_domain(values: dict[str, float], panel: Panel, key: str) -> np.ndarray:
    """(D,) a config mapping of the table's domains to numbers, in the table's order; a domain
    the table lacks, or one of its domains left out, names the key."""
    unknown = sorted(set(values) - set(panel.domains))
    if unknown:
        raise PanelError(
            f"config key '{key}': domain {unknown[0]!r} is not in {panel.source} (its domains: "
            f"{', '.join(panel.domains)})"
        )
    missing = [d for d in panel.domains if d not in values]
    if missing:
        raise PanelError(f"config key '{key}': no value for the table's domain {missing[0]!r}")
    return np.array([float(values[d]) for d in panel.domains])


def _constraints(
    spec: PanelSpec, table: PanelTable, panel: Panel, manifests: dict[str, str] | None
) -> Constraints:
    """The proposal's constraints. The tokens available: for the study's own cells, its
    domains' train tokens; for a table, its `tokens`. The natural mixture: a table's `natural`,
    else the tokens' mixture, else uniform. budget_tokens, max_epochs and kl: the table's, else
    panel.propose's; with the tokens, the first two cap every domain's passes."""
    options = spec.propose
    key = f"panel.tables.{table.name}"
    if manifests is not None:
        splits = [read_json(manifests[d])["splits"]["train"] for d in panel.domains]
        tokens = np.array([split["n_tokens"] for split in splits], float)
    else:
        tokens = _per_domain(table.tokens, panel, f"{key}.tokens") if table.tokens else None
    natural = None if tokens is None else tokens / tokens.sum()
    if table.natural:
        natural = _per_domain(table.natural, panel, f"{key}.natural")
        if abs(natural.sum() - 1) > WEIGHT_TOLERANCE:
            raise PanelError(
                f"config key '{key}.natural': the weights sum to {natural.sum():.4f}, expected 1 "
                f"(within {WEIGHT_TOLERANCE})"
            )
        natural = natural / natural.sum()
    budget = table.budget_tokens or options.get("budget_tokens")
    epochs = table.max_epochs or options.get("max_epochs")
    kl = float(options.get("kl", 0.0) if table.kl is None else table.kl)
    return Constraints(natural=natural, budget_tokens=budget, available_tokens=tokens,
                       max_epochs=epochs, kl=kl,
                       within_runs=bool(options.get("within_runs", True)))  # fmt: skip


def _described(c: Constraints, panel: Panel) -> dict[str, Any]:
    """The constraints as summary.json records them."""

    def per_domain(values: np.ndarray | None) -> dict[str, float] | None:
        if values is None:
            return None
        return dict(zip(panel.domains, map(float, values), strict=True))

    return {
        "natural": per_domain(c.natural), "tokens": per_domain(c.available_tokens),
        "budget_tokens": c.budget_tokens, "max_epochs": c.max_epochs, "kl": c.kl,
        "within_runs": c.within_runs,
    }  # fmt: skip


def run_panel(
    table: PanelTable, spec: PanelSpec, root: str | Path, out_dir: str | Path,
    domains: tuple[str, ...] = (), manifests: dict[str, str] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Read, fit, choose and propose for one panel; write its three files; return the summary."""
    root, out_dir = Path(root), Path(out_dir)
    panel = load(table, root, domains, spec.late)
    if table.metric not in panel.metrics:
        raise PanelError(
            f"{panel.source}: no metric {table.metric!r} (config key 'panel' names it; the "
            f"table has {sorted(panel.metrics)})"
        )
    y = panel.metrics[table.metric]
    if len(y) < spec.folds:
        raise PanelError(
            f"{panel.source}: {len(y)} runs are fewer than the {spec.folds} folds of "
            "panel.folds; add runs or lower it"
        )
    choice = choose(panel.features(), y, spec.regressors, spec.folds, spec.seed)
    options, constraints = spec.propose, _constraints(spec, table, panel, manifests)
    samples = int(options.get("samples", 20_000))
    # the candidates drawn and the chosen regressor fitted on every run and predicted, once
    scored = score(panel, table.metric, choice.best, constraints, samples, spec.seed)
    fold_models = choice.fold_models[choice.best]
    proposal = propose(
        panel, table.metric, choice.best, constraints, spec.folds, samples,
        int(options.get("top", 100)), spec.seed, fold_models=fold_models, scored=scored,
    )  # fmt: skip
    upcoming = next_runs(
        panel, table.metric, choice.best, constraints, int(options.get("next", 4)), samples,
        spec.seed, fold_models=fold_models, folds=spec.folds, scored=scored,
    )  # fmt: skip
    with atomic_path(out_dir / "panel.parquet") as tmp:
        panel_frame(panel).write_parquet(tmp)
    predictions = pl.DataFrame(
        {"run": list(panel.runs), "actual": y,
         **{f"oof_{name}": values for name, values in choice.predictions.items()}}
    )  # fmt: skip
    with atomic_path(out_dir / "predictions.parquet") as tmp:
        predictions.write_parquet(tmp)
    summary = {
        "name": table.name,
        "source": panel.source if table.name != OWN else "the study's cells",
        "runs": len(panel.runs),
        "domains": list(panel.domains),
        "phases": panel.phases,
        "phase_shares": [float(s) for s in panel.shares.mean(axis=0)],
        "metric": table.metric,
        "folds": spec.folds,
        "scores": choice.scores,
        "best": choice.best,
        "constraints": _described(constraints, panel),
        "proposal": proposal,
        "next": upcoming,
    }
    write_json(out_dir / "summary.json", summary)
    return summary
