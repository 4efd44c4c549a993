"""The grid of a study, in one place: every cell, stream and pack order, the optional stages'
cells, and the path templates of what they write. Plain data, built at DAG time from a
`config.Study`; `rules/common.smk` is a thin layer of input functions over it.

A cell is (ratio, schedule, learning-rate arm, seed). Streams do not depend on the arm, so the
cells of every arm share one stream per (ratio, schedule, seed). A matched control
(analysis.controls) is an ordinary cell with a stream of its own (the baseline's, linked).
Design and ladder cells are cells like any other, named before any has run, and never part of
the grid's verdicts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from curriculab.design.plan import design_cells
from curriculab.training.branch import TrunkPlan

RUN_DIR = "results/training/{ratio}/{schedule}/{arm}/seed{seed}"
STREAM = "results/streams/{ratio}/{schedule}/seed{seed}"  # + .arrow, .summary.json
SHARDS = "results/shards/{domain}/{name}"
REGISTRATION = "results/analysis/preregistration.json"  # the verdict family, before any training
RUN_OUTPUTS = ("model/model.safetensors", "curve.parquet", "metrics.json")

Cell = dict[str, Any]  # {"ratio", "schedule", "arm", "seed"}


def cell_id(cell: Cell) -> str:
    """A cell's id: its run directory below results/training/ (packs list cells by it)."""
    return RUN_DIR.format(**cell).removeprefix("results/training/")


def cell_files(cells: list[Cell], name: str) -> list[str]:
    """File `name` of the run directory of each of `cells`."""
    return [f"{RUN_DIR}/{name}".format(**cell) for cell in cells]


def cell_specs(cells: list[Cell]) -> list[tuple[str, str, str, int, str]]:
    """(ratio, schedule, arm, seed, run directory) of each of `cells`, for a table step."""
    return [(c["ratio"], c["schedule"], c["arm"], c["seed"], RUN_DIR.format(**c)) for c in cells]


def longest_first(names: Any) -> list[str]:
    """Names sorted longest first, as a wildcard alternation needs them."""
    return sorted(names, key=len, reverse=True)


@dataclass(frozen=True)
class Grid:
    """Everything the workflow trains for one study, in the orders its rules use."""

    cells: list[Cell]  # the grid's cells, then the matched controls'
    streams: list[dict[str, Any]]  # (ratio, schedule, seed) of every stream
    pack_order: list[str]  # cell ids in the order new packs are cut from
    design_cells: dict[int | str, list[Cell]]  # design group -> its cells ({} without design)
    ladder_cells: dict[str, list[Cell]]  # ladder scale -> its cells ({} without a ladder)
    selected: list[str]  # derived domains of the selections, longest first
    trunks: TrunkPlan
    cell_by_id: dict[str, Cell]

    @classmethod
    def of(cls, study: Any) -> Grid:
        """The grid of a `config.Study`."""
        ratios, seeds, controls = study.ratio_labels, study.seeds, study.controls
        cells = [
            {"ratio": ratio, "schedule": schedule, "arm": arm, "seed": seed}
            for ratio in ratios
            for schedule in study.schedules
            for arm in study.arms
            for seed in seeds
        ]
        cells += [
            {"ratio": ratio, "schedule": name, "arm": arm, "seed": seed}
            for ratio in ratios
            for name, control in controls.items()
            for arm in control.arms
            for seed in seeds
        ]
        streams = [
            {"ratio": ratio, "schedule": schedule, "seed": seed}
            for ratio in ratios
            for schedule in [*study.schedules, *controls]
            for seed in seeds
        ]
        design = design_cells(study)
        ladder = ladder_cells(study)
        extra = [c for group in (*design.values(), *ladder.values()) for c in group]
        return cls(
            cells=cells,
            streams=streams,
            pack_order=pack_order(study),
            design_cells=design,
            ladder_cells=ladder,
            selected=longest_first(study.selection.domains if study.selection else []),
            trunks=TrunkPlan.of(study),
            cell_by_id={cell_id(cell): cell for cell in cells + extra},
        )

    def separate_groups(self) -> list[list[Cell]]:
        """Cells packed among themselves: a design round's (the next round's proposals wait
        for them) and a ladder scale's (one model preset per pack)."""
        return [*self.design_cells.values(), *self.ladder_cells.values()]


def ladder_cells(study: Any) -> dict[str, list[Cell]]:
    """Every scale's cells and the check's at the target scale (their shares and tokens are
    set when their streams are built)."""
    ladder = study.ladder
    if ladder is None:
        return {}
    domains = list(study.domain_names)
    return {
        scale.name: ladder.cells(
            ladder.names(scale.name, domains),
            study.seeds if scale == ladder.target else ladder.seeds,
        )
        for scale in (*ladder.scales, ladder.target)
    }


def pack_schedules(study: Any) -> list[str]:
    """The grid's schedules in pack order: the baseline, its matched controls, the rest."""
    rest = [s for s in study.schedules if s != study.baseline]
    return [study.baseline, *study.controls, *rest]


def pack_order(study: Any) -> list[str]:
    """Cell ids in the order new packs are cut from (curriculab.training.packs). The innermost
    loops are the learning-rate arm (the arms of one stream train identically until their
    learning rates part, and a pack computes that shared prefix once: training.branch), then
    the ratio (which sets a cell's length, so that packs take about equally long and run side
    by side without a long tail). A matched control comes right after the baseline, whose
    prefix it shares."""
    controls = study.controls
    return [
        cell_id({"ratio": ratio, "schedule": schedule, "arm": arm, "seed": seed})
        for seed in study.seeds
        for schedule in pack_schedules(study)
        for ratio in study.ratio_labels
        for arm in (controls[schedule].arms if schedule in controls else study.arms)
    ]
