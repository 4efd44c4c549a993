"""The study key `panel` (docs/stages/panel.md): which run tables to read, which metric to rank,
which regressors to choose from and what a proposal must respect.

    panel:
      metric: d1_test_loss      # of the study's own cells (lower is better)
      own: true                 # the study's cells as a panel (results/panel/own/)
      late: 0.2                 # phase 1: the last share of each cell's stream (0: one phase)
      tables:                   # imported tables, by name (results/panel/<name>/)
        regmix: {weights: w.csv, metrics: m.csv, strip: train_the_pile_,
                 strip_metric: metric/the_pile_, metric: pile_cc_val_loss}
        mine: {file: runs.csv, metric: loss, tokens: {web: 4.0e11, code: 2.0e10},
               budget_tokens: 1.0e12, max_epochs: 4}
      regressors: [linear, loglinear, lightgbm, gp]
      folds: 5
      seed: 0
      propose: {max_epochs: null, kl: 0.0, samples: 20000, top: 100}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curriculab.errors import ConfigError

OWN = "own"  # the name of the study's own panel
REGRESSOR_NAMES = ("linear", "loglinear", "lightgbm", "gp")


@dataclass(frozen=True)
class PanelTable:
    """One panel: the study's own cells, or an imported file or pair."""

    name: str
    metric: str
    file: str | None = None
    weights: str | None = None
    metrics: str | None = None
    id_column: str | None = None
    strip: str = ""
    strip_metric: str = ""
    natural: dict[str, float] | None = None  # the natural mixture (default: tokens', else uniform)
    tokens: dict[str, float] | None = None  # each domain's available tokens (olmix token_counts)
    budget_tokens: float | None = None  # this table's proposal budget (default: panel.propose's)
    max_epochs: float | None = None  # this table's epoch cap (default: panel.propose's)
    kl: float | None = None  # this table's KL weight (default: panel.propose's)

    def inputs(self) -> list[str]:
        return [p for p in (self.file, self.weights, self.metrics) if p]


@dataclass(frozen=True)
class PanelSpec:
    """The study's panels and how each is fitted and proposed from."""

    tables: dict[str, PanelTable]
    late: float = 0.2
    regressors: tuple[str, ...] = REGRESSOR_NAMES
    folds: int = 5
    seed: int = 0
    propose: dict[str, Any] = field(default_factory=dict)


def _locate(path: str, root: str | Path, shipped: str | Path | None, name: str) -> str:
    """A table's file: relative to the working directory `root`, else to the workflow's own
    directory `shipped` (files that ship with the workflow, such as bench/data/; then the
    path returned is absolute)."""
    if (Path(root) / path).is_file():
        return path
    if shipped is not None and (Path(shipped) / path).is_file():
        return str(Path(shipped).resolve() / path)
    where = "the working directory" + ("" if shipped is None else " or the workflow's directory")
    raise ConfigError(f"config key 'panel.tables.{name}': no such file {path!r} in {where}")


def check_panel(
    raw: dict[str, Any] | None, root: str | Path = ".", shipped: str | Path | None = None
) -> PanelSpec | None:
    """The typed `panel` key (schema-checked), its files found under `root` or `shipped`
    (_locate) and named by the paths found."""
    if raw is None:
        return None
    tables = {}
    if raw.get("own", True):
        tables[OWN] = PanelTable(OWN, raw.get("metric", "d1_test_loss"))
    for name, spec in (raw.get("tables") or {}).items():
        if name == OWN:
            raise ConfigError(f"config key 'panel.tables.{OWN}': the name is the study's own")
        if bool(spec.get("file")) == bool(spec.get("weights") or spec.get("metrics")):
            raise ConfigError(
                f"config key 'panel.tables.{name}': give either file, or weights and metrics"
            )
        if spec.get("weights") and not spec.get("metrics"):
            raise ConfigError(f"config key 'panel.tables.{name}.metrics': the pair's metrics file")
        found = {k: _locate(spec[k], root, shipped, name)
                 for k in ("file", "weights", "metrics") if spec.get(k)}  # fmt: skip
        tables[name] = PanelTable(name=name, **{**spec, **found})
    if not tables:
        raise ConfigError("config key 'panel': no table (own is false and tables is empty)")
    return PanelSpec(
        tables=tables,
        late=float(raw.get("late", 0.2)),
        regressors=tuple(raw.get("regressors", REGRESSOR_NAMES)),
        folds=int(raw.get("folds", 5)),
        seed=int(raw.get("seed", 0)),
        propose=dict(raw.get("propose") or {}),
    )
