"""A panel of runs: one row per training run, its mixture of domains (per phase) and what it
measured. Imported tables (RegMix's mixture + loss pair, olmix's ratios + metrics pair, or one
file) and a study's own cells go through this one type.

One file (`read_panel`, `write_panel`; CSV or Parquet) has a column `run` (an id), a column
`weight:<domain>` per domain for a one-phase table, or `weight:<phase>:<domain>` per phase
(phases numbered from 0) with a column `share:<phase>` (that phase's share of training; the
shares of a run sum to 1), and a column `metric:<name>` per metric. A pair (`read_pair`) is a
weights file and a metrics file joined on an id column (default: each file's first column);
every other column of the weights file is a domain (`strip` removes a prefix such as RegMix's
`train_`), every other column of the metrics file a metric (`strip_metric`: `metric/`), except
the columns both files have (olmix's `name` and `index`): those label a run, and must agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from curriculab.errors import CurriculabError
from curriculab.io import atomic_path

WEIGHT_TOLERANCE = 0.01  # |sum of a phase's weights - 1| allowed (published tables round to 1e-3)


class PanelError(CurriculabError, ValueError):
    """A run table cannot be read; the message names the file, row or column."""


@dataclass(frozen=True)
class Panel:
    """Runs (R), domains (D), phases (P): weights (R, P, D), each phase's share of training
    (R, P), metrics {name: (R,)}; `source` says where it came from."""

    runs: tuple[str, ...]
    domains: tuple[str, ...]
    weights: np.ndarray  # (R, P, D), each (run, phase) row sums to 1
    shares: np.ndarray  # (R, P), each run's row sums to 1
    metrics: dict[str, np.ndarray]
    source: str

    @property
    def phases(self) -> int:
        return int(self.weights.shape[1])

    def features(self) -> np.ndarray:
        """(R, P*D [+P]) the regressors' inputs: every phase's weights, and the phase shares
        where they differ between runs. A two-phase model is one regressor over both."""
        flat = self.weights.reshape(len(self.runs), -1)
        if self.phases > 1 and np.ptp(self.shares, axis=0).max() > 0:
            flat = np.concatenate([flat, self.shares], axis=1)
        return flat

    def overall(self) -> np.ndarray:
        """(R, D) the mixture of the whole run: the phases' weights by their shares."""
        return np.einsum("rp,rpd->rd", self.shares, self.weights)

    def take(self, rows: np.ndarray) -> Panel:
        """The panel of some runs (their order)."""
        rows = np.asarray(rows)
        return Panel(
            tuple(self.runs[i] for i in rows), self.domains, self.weights[rows],
            self.shares[rows], {k: v[rows] for k, v in self.metrics.items()}, self.source,
        )  # fmt: skip


def _read(path: Path) -> pl.DataFrame:
    if not path.exists():
        raise PanelError(f"{path}: no such file (expected a CSV or Parquet table of runs)")
    try:
        if path.suffix == ".parquet":
            return pl.read_parquet(path)
        return pl.read_csv(path, infer_schema_length=None)
    except (pl.exceptions.PolarsError, OSError) as error:
        raise PanelError(f"{path}: not a readable table ({type(error).__name__})") from None


def _numeric(frame: pl.DataFrame, column: str, path: Path, what: str) -> np.ndarray:
    """A column as float64; a missing or non-numeric value is named by its row."""
    values = frame[column]
    if not values.dtype.is_numeric():
        cast = values.cast(pl.Float64, strict=False)
        bad = (cast.is_null() & values.is_not_null()).arg_true()
        if len(bad):
            row = int(bad[0])
            raise PanelError(
                f"{path}: row {row + 2}, column {column!r}: {values[row]!r} is not a number "
                f"({what})"
            )
        values = cast
    values = values.cast(pl.Float64)
    missing = (values.is_null() | values.is_nan()).arg_true()
    if len(missing):
        raise PanelError(f"{path}: row {int(missing[0]) + 2}, column {column!r}: missing {what}")
    return values.to_numpy()


def _ids(frame: pl.DataFrame, column: str, path: Path) -> list[str]:
    ids = [str(v) for v in frame[column].to_list()]
    seen: dict[str, int] = {}
    for row, run in enumerate(ids):
        if run in seen:
            raise PanelError(
                f"{path}: row {row + 2}, column {column!r}: duplicate run id {run!r} "
                f"(first on row {seen[run] + 2})"
            )
        seen[run] = row
    return ids


def _check_sums(weights: np.ndarray, runs: list[str], path: Path, where: list[str]) -> None:
    """Every (run, phase) mixture sums to 1 within WEIGHT_TOLERANCE and has no negative."""
    for p, label in enumerate(where):
        sums = weights[:, p, :].sum(axis=1)
        bad = np.flatnonzero(np.abs(sums - 1) > WEIGHT_TOLERANCE)
        if len(bad):
            r = int(bad[0])
            raise PanelError(
                f"{path}: row {r + 2} (run {runs[r]!r}): {label} weights sum to {sums[r]:.4f}, "
                f"expected 1 (within {WEIGHT_TOLERANCE})"
            )
        negative = np.flatnonzero((weights[:, p, :] < 0).any(axis=1))
        if len(negative):
            r = int(negative[0])
            raise PanelError(f"{path}: row {r + 2} (run {runs[r]!r}): a negative {label} weight")


def _check_domains(domains: list[str], known: list[str] | None, path: Path) -> None:
    unknown = [d for d in domains if known is not None and d not in known]
    if unknown:
        raise PanelError(
            f"{path}: column for domain {unknown[0]!r}: not one of the domains {sorted(known)}"
        )


def read_panel(path: str | Path, domains: list[str] | None = None) -> Panel:
    """A panel from one file (the module's format); `domains`: the ones allowed (None: any)."""
    path = Path(path)
    frame = _read(path)
    if "run" not in frame.columns:
        raise PanelError(f"{path}: no column 'run' (one id per run)")
    runs = _ids(frame, "run", path)
    weight_columns = [c for c in frame.columns if c.startswith("weight:")]
    metric_columns = [c for c in frame.columns if c.startswith("metric:")]
    if not weight_columns or not metric_columns:
        raise PanelError(f"{path}: needs weight:<domain> and metric:<name> columns")
    keys = [c.split(":")[1:] for c in weight_columns]
    if all(len(k) == 1 for k in keys):
        phases, names = ["0"], [k[0] for k in keys]
        keys = [["0", k[0]] for k in keys]
    elif all(len(k) == 2 for k in keys):
        phases = sorted({k[0] for k in keys}, key=lambda p: int(p) if p.isdigit() else p)
        names = list(dict.fromkeys(k[1] for k in keys))
    else:
        raise PanelError(f"{path}: weight columns mix weight:<domain> and weight:<phase>:<domain>")
    _check_domains(names, domains, path)
    weights = np.zeros((len(runs), len(phases), len(names)))
    for column, (phase, name) in zip(weight_columns, keys, strict=True):
        values = _numeric(frame, column, path, "weight")
        weights[:, phases.index(phase), names.index(name)] = values
    if len(phases) == 1:
        shares = np.ones((len(runs), 1))
    else:
        missing = [p for p in phases if f"share:{p}" not in frame.columns]
        if missing:
            raise PanelError(f"{path}: no column 'share:{missing[0]}' (phase {missing[0]}'s share)")
        shares = np.stack([_numeric(frame, f"share:{p}", path, "share") for p in phases], axis=1)
        _check_sums(shares[:, None, :], runs, path, ["phase-share"])
    _check_sums(weights, runs, path, [f"phase {p}" for p in phases])
    metrics = {c.split(":", 1)[1]: _numeric(frame, c, path, "metric") for c in metric_columns}
    return Panel(tuple(runs), tuple(names), weights, shares, metrics, str(path))


def _labels(
    weights: pl.DataFrame, metrics: pl.DataFrame, ids: tuple[str, str], paths: tuple[Path, Path]
) -> set[str]:
    """The columns both files of a pair have besides their ids (olmix writes `name` and
    `index` into both, pandas an unnamed index): a run's labels, neither domains nor metrics.
    They must agree run by run (the metrics already in the weights' order), or the pair's
    files do not describe the same runs."""
    labels = (set(weights.columns) & set(metrics.columns)) - set(ids)
    for column in sorted(labels):
        left = [str(v) for v in weights[column].to_list()]
        right = [str(v) for v in metrics[column].to_list()]
        bad = [i for i, (a, b) in enumerate(zip(left, right, strict=True)) if a != b]
        if bad:
            raise PanelError(
                f"{paths[1]}: column {column!r}, which both files of the pair have, reads "
                f"{right[bad[0]]!r} for run {weights[ids[0]][bad[0]]!r} where {paths[0].name} "
                f"reads {left[bad[0]]!r} (a column in both files is a run's label and must agree)"
            )
    return labels


def read_pair(
    weights_path: str | Path,
    metrics_path: str | Path,
    id_column: str | None = None,
    strip: str = "",
    strip_metric: str = "",
    domains: list[str] | None = None,
) -> Panel:
    """A one-phase panel from a weights file and a metrics file joined on `id_column` (default:
    each file's first column), as RegMix and olmix publish them."""
    paths = Path(weights_path), Path(metrics_path)
    frames = [_read(p) for p in paths]
    ids = []
    for frame, path in zip(frames, paths, strict=True):
        column = id_column or frame.columns[0]
        if column not in frame.columns:
            raise PanelError(f"{path}: no id column {column!r}")
        ids.append((column, _ids(frame, column, path)))
    (wid, wruns), (mid, mruns) = ids
    unmatched = [r for r in wruns if r not in set(mruns)] or [
        r for r in mruns if r not in set(wruns)
    ]
    if unmatched:
        where = paths[0] if unmatched[0] not in set(mruns) else paths[1]
        raise PanelError(f"{where}: run {unmatched[0]!r} has no row in the other file of the pair")
    weights_frame, metrics_frame = frames
    order = {run: i for i, run in enumerate(mruns)}
    metrics_frame = metrics_frame[[order[r] for r in wruns]]
    labels = _labels(weights_frame, metrics_frame, (wid, mid), paths)
    columns = [c for c in weights_frame.columns if c != wid and c not in labels]
    names = [c.removeprefix(strip) for c in columns]
    _check_domains(names, domains, paths[0])
    weights = np.stack([_numeric(weights_frame, c, paths[0], "weight") for c in columns], axis=1)
    weights = weights[:, None, :]
    _check_sums(weights, wruns, paths[0], ["the"])
    metrics = {
        c.removeprefix(strip_metric): _numeric(metrics_frame, c, paths[1], "metric")
        for c in metrics_frame.columns
        if c != mid and c not in labels
    }
    if not metrics:
        raise PanelError(f"{paths[1]}: no metric column besides the id {mid!r}")
    source = f"{paths[0]} + {paths[1]}"
    return Panel(tuple(wruns), tuple(names), weights, np.ones((len(wruns), 1)), metrics, source)


def panel_frame(panel: Panel) -> pl.DataFrame:
    """The panel in the one-file format (weight:<domain> for one phase)."""
    columns: dict[str, object] = {"run": list(panel.runs)}
    for p in range(panel.phases):
        for d, name in enumerate(panel.domains):
            key = f"weight:{name}" if panel.phases == 1 else f"weight:{p}:{name}"
            columns[key] = panel.weights[:, p, d]
    if panel.phases > 1:
        for p in range(panel.phases):
            columns[f"share:{p}"] = panel.shares[:, p]
    for name, values in panel.metrics.items():
        columns[f"metric:{name}"] = values
    return pl.DataFrame(columns)


def write_panel(panel: Panel, path: str | Path) -> None:
    """Write the panel as one CSV or Parquet file (by suffix), atomically."""
    frame = panel_frame(panel)
    with atomic_path(path) as tmp:
        if Path(path).suffix == ".parquet":
            frame.write_parquet(tmp)
        else:
            frame.write_csv(tmp, float_precision=None)
