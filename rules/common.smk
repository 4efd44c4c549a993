# Config validation, the cell grid and the input functions shared by every rule file.
import re
import sys
from dataclasses import asdict
from pathlib import Path

from snakemake.utils import min_version

from curriculab.analysis.registration import registration_spec
from curriculab.grid import (
    REGISTRATION,
    RUN_DIR,
    RUN_OUTPUTS,
    SHARDS,
    STREAM,
    Grid,
    cell_files,
    cell_id,
    cell_specs,
    longest_first,
)
from curriculab.training.branch import TRUNK, TRUNK_STREAM
from curriculab.config import ConfigError, load_study, load_yaml
from curriculab.data.pretrained import pretrained_inputs
from curriculab.data.sources import check_sources
from curriculab.design.plan import cells_read, design_grid, round_of
from curriculab.errors import one_line
from curriculab.harness.run import heldout_task
from curriculab.selection.plan import shard_domains
from curriculab.panel.plan import OWN as PANEL_OWN
from curriculab.training.lr import arm_description
from curriculab.objective import describe as describe_objective
from curriculab.training.packs import plan_packs, recorded_pack
from curriculab.job_resources import (
    blocks_from_manifests,
    pack_mem_mb,
    pack_runtime_min,
)

min_version("9.0")

try:
    for configfile_path in workflow.configfiles:
        load_yaml(
            configfile_path
        )  # Snakemake's loader keeps the last of two equal keys
    STUDY = load_study(
        config,
        workflow.source_path("../workflow/schemas/config.schema.yaml"),
        workflow.basedir,
    )
    check_sources({name: domain.source for name, domain in STUDY.domains.items()})
except ConfigError as error:
    sys.exit(one_line(error))

DOMAINS = list(STUDY.domain_names)
# The grid, in one tested place (curriculab.grid): every cell, stream and pack order, the
# design's and the ladder's cells, the selections' domains and the trunks.
GRID = Grid.of(STUDY)
CELLS = GRID.cells
STREAMS = GRID.streams
CONTROLS = STUDY.controls
DESIGN = STUDY.design  # docs/stages/design.md; rules/design.smk
DESIGN_CELLS = GRID.design_cells
LADDER = STUDY.ladder  # docs/stages/ladder.md; rules/ladder.smk
LADDER_CELLS = GRID.ladder_cells
PRETRAINED = STUDY.tokenizer.pretrained  # docs/stages/data.md: an existing tokenizer
PRETRAINED_FILES = pretrained_inputs(PRETRAINED)
SELECTION = STUDY.selection  # docs/stages/selection.md; rules/selection.smk
PANEL = STUDY.panel  # docs/stages/panel.md; rules/panel.smk
SELECTED = GRID.selected
TRUNKS = GRID.trunks  # docs/stages/trunk.md
CELL_BY_ID = GRID.cell_by_id
GRID_SCHEDULES = longest_first(STUDY.schedules)
CONTROL_SCHEDULES = longest_first(CONTROLS)
DESIGN_SCHEDULES = longest_first(DESIGN.all_names if DESIGN else [])
LADDER_SCHEDULES = longest_first(LADDER.all_names(DOMAINS) if LADDER else [])


wildcard_constraints:
    domain="|".join(map(re.escape, sorted(DOMAINS + SELECTED, key=len, reverse=True))),
    ratio="|".join(map(re.escape, STUDY.ratio_labels)),
    schedule="|".join(
        map(
            re.escape,
            GRID_SCHEDULES + CONTROL_SCHEDULES + DESIGN_SCHEDULES + LADDER_SCHEDULES,
        )
    ),
    arm="|".join(map(re.escape, sorted(STUDY.arms, key=len, reverse=True))),
    seed=r"\d+",
    split="train|test",
    trunk="|".join(map(re.escape, sorted(STUDY.trunks, key=len, reverse=True))) or "-",
    step=r"\d+",


SHARD_MANIFESTS = {
    domain: f"results/shards/{domain}/manifest.json" for domain in DOMAINS
}


def cell_shards(schedule, seed):
    """Domain -> the folder of the shards a cell of schedule and seed trains on (a selection's
    for the pool when it names one, a random set's draw for the seed; the domain's own
    otherwise)."""
    spec = STUDY.schedules.get(schedule) or TRUNKS.schedules.get(schedule, {})
    return shard_domains(SELECTION, spec, DOMAINS, seed)


def get_cell_shards(name):
    """Input function: split folder `name` of every domain, as the cell's schedule has them."""
    return lambda wc: [
        SHARDS.format(domain=folder, name=name)
        for folder in cell_shards(wc.schedule, wc.seed).values()
    ]


def get_shard_docs(wildcards):
    """The documents of a domain's shards: a selection's, or the prepared domain's."""
    if wildcards.domain in SELECTED:
        return f"results/selection/{wildcards.domain}/docs.parquet"
    return f"results/data/{wildcards.domain}/docs.parquet"


def finished_pack(cell_id):
    """The recorded pack of a cell whose training outputs all exist, else None."""
    run = Path("results/training", cell_id)
    if not all((run / name).exists() for name in RUN_OUTPUTS):
        return None
    return recorded_pack(run / "metrics.json")


# Training jobs: packs of cells (curriculab.training.packs); finished cells keep the pack that
# made them; new packs are cut from the grid's pack order (curriculab.grid.pack_order).
PACKS = plan_packs(GRID.pack_order, STUDY.resources.cells_per_job, finished_pack)
# A design round's cells are packed among themselves: the next round's proposals wait for them;
# so are a ladder scale's (one model preset per pack; the check waits for the ladder's fits).
PACKS += [
    pack
    for cells in GRID.separate_groups()
    for pack in plan_packs(
        [cell_id(c) for c in cells], STUDY.resources.cells_per_job, finished_pack
    )
]


def pack_files(pack, pattern):
    """`pattern` (with cell wildcards) filled in for every cell of a pack, in pack order."""
    return [pattern.format(**CELL_BY_ID[cell]) for cell in pack.cells]


def pack_cells(pack):
    """(ratio, schedule, arm, seed, trunk checkpoint, shard folders) of every cell of a pack,
    for the script; a trunk and shards only where a cell has them, so that the params of other
    packs stay as they were."""
    cells = [dict(CELL_BY_ID[cell], id=cell) for cell in pack.cells]
    return [
        cell
        | ({"trunk": trunk} if (trunk := TRUNKS.checkpoint(cell)) else {})
        | ({"shards": shards} if (shards := pack_cell_shards(cell)) else {})
        for cell in cells
    ]


def pack_cell_shards(cell):
    """A cell's shard folders when some differ from its domains' (a selection), else None."""
    folders = cell_shards(cell["schedule"], cell["seed"])
    return folders if any(d != f for d, f in folders.items()) else None


def pack_shards(pack, name):
    """Split folder `name` of every domain and of every selection a pack's cells train on."""
    folders = {
        f
        for c in pack.cells
        for f in cell_shards(CELL_BY_ID[c]["schedule"], CELL_BY_ID[c]["seed"]).values()
    }
    return [SHARDS.format(domain=f, name=name) for f in sorted(folders | set(DOMAINS))]


def pack_trunks(pack):
    """The trunk checkpoints the cells of a pack start from (each once)."""
    return sorted({TRUNKS.checkpoint(CELL_BY_ID[c]) for c in pack.cells} - {None})


def get_trunk_parent(wildcards):
    """The checkpoint a trunk segment trains from ([] for a segment from step 0)."""
    step = TRUNKS.parent_step(dict(wildcards))
    return [f"{TRUNK.format(**{**wildcards, 'step': step})}.pt"] if step else []


def get_trunk_parent_step(wildcards):
    """The step a trunk segment trains from (0: from step 0)."""
    return TRUNKS.parent_step(dict(wildcards))


def get_trunk_runtime_min(wildcards, attempt):
    """Wall-time limit (minutes) of a trunk segment: that of one cell of its ratio."""
    return pack_runtime_min(
        STUDY,
        [STUDY.ratio_value(wildcards.ratio)],
        blocks_from_manifests(SHARD_MANIFESTS, "train"),
        blocks_from_manifests(SHARD_MANIFESTS, "test"),
        attempt,
    )


def pack_train_settings(pack):
    """Training settings of the arms in a pack (only those: a new arm reruns no old pack)."""
    arms = sorted({CELL_BY_ID[cell]["arm"] for cell in pack.cells})
    return {arm: STUDY.train_settings[arm] for arm in arms}


def cell_scale(cell):
    """(tokens at most, model preset) of a ladder cell (its scale's), else None."""
    return LADDER.cell_size(CELL_BY_ID[cell]["schedule"]) if LADDER else None


def pack_preset(pack):
    """The model preset of a pack's cells (a ladder pack's scale may set its own)."""
    scale = cell_scale(pack.cells[0])
    return scale[1] if scale else STUDY.model_preset


def get_pack_runtime_min(pack):
    """Wall-time limit (minutes) of a pack's job: its cells' estimates summed, doubled on each
    retry (a batched pack runs its cells side by side, so this is generous for it)."""

    def runtime(wildcards, attempt):
        train_blocks = blocks_from_manifests(SHARD_MANIFESTS, "train")
        test_blocks = blocks_from_manifests(SHARD_MANIFESTS, "test")
        return pack_runtime_min(
            STUDY,
            [STUDY.ratio_value(CELL_BY_ID[cell]["ratio"]) for cell in pack.cells],
            train_blocks,
            test_blocks,
            attempt,
            [cell_scale(cell) for cell in pack.cells],
        )

    return runtime


def get_pack_mem_mb(pack):
    """Memory (MB) of a pack's job: one model at a time, or all of them when batched."""

    def mem_mb(wildcards, attempt):
        return pack_mem_mb(STUDY, len(pack.cells), attempt, pack_preset(pack))

    return mem_mb


def get_cell_runs(name):
    """File `name` of every cell's run directory, in grid order."""
    return cell_files(CELLS, name)


def get_cell_specs():
    """(ratio, schedule, arm, seed, run directory) of every cell, for the aggregate step."""
    return cell_specs(CELLS)


from curriculab.design.plan import cells_read, design_grid, round_of

# A round's proposals live in ROUND; DESIGN_GRID are the
# grid's schedules that lie in the design (its free observations: only their specs are params,
# so a change elsewhere in the grid reruns no round).
ROUND = "results/design/round{round}/proposals.json"
DESIGN_GRID = design_grid(STUDY) if DESIGN else {}


def get_design_cells(wildcards):
    """The cells a design round reads (curriculab.design.plan.cells_read); the summary's
    (a job without {round}) also hold the baseline's."""
    keys = wildcards.keys()
    return cells_read(STUDY, int(wildcards.round) if "round" in keys else None)


def ladder_runs(scales):
    """What rules ladder and ladder_summary read of their cells (input files and params)."""
    return {
        name: cell_files([c for s in scales for c in LADDER_CELLS[s]], file)
        for name, file in (
            ("evaluations", "eval.json"),
            ("metrics", "metrics.json"),
            ("curves", "curve.parquet"),
        )
    }


def get_stream_summaries():
    """(ratio, schedule, seed, summary file) of every stream, in grid order."""
    return [
        (c["ratio"], c["schedule"], c["seed"], STREAM.format(**c) + ".summary.json")
        for c in STREAMS
    ]


def get_study_summary():
    """What the report states about the study."""
    return {
        "name": STUDY.name,
        "target_domain": STUDY.target_domain,
        "domains": DOMAINS,
        "ratios": list(STUDY.ratio_labels),
        "schedules": list(STUDY.schedules),
        "arms": {name: arm_description(cfg) for name, cfg in STUDY.arms.items()},
        "budget": STUDY.budget.kind,
        "baseline": STUDY.baseline,
        "seeds": list(STUDY.seeds),
        "model_preset": STUDY.model_preset,
        "trunks": {name: list(members) for name, members in STUDY.trunks.items()},
        "objective": describe_objective(STUDY.utility, STUDY.target_domain),
        "utility": STUDY.utility,
    }


def get_stream_budget(wildcards):
    """`streams:` of the config; for a schedule on a trunk, with the sequences per optimiser
    step, where its branch starts (the params of other streams stay as they were)."""
    if "trunk" not in STUDY.schedules[wildcards.schedule]:
        return config["streams"]
    return {**config["streams"], "step_blocks": STUDY.train.batch_size}


# The shipped harness task (a file of the workflow, not of the working directory).
HARNESS_BASE_TASK = str(
    Path(workflow.basedir, "workflow", "harness", "curriculab_heldout.yaml")
)


def get_harness_tasks():
    """Task files of the shipped held-out tasks the study asks for (none without `harness`)."""
    domains = STUDY.harness.heldout_domains if STUDY.harness else ()
    return [f"results/harness/tasks/{heldout_task(domain)}.yaml" for domain in domains]


def get_harness_spec(key):
    """One setting of the study's `harness:` key (None without it)."""
    return getattr(STUDY.harness, key) if STUDY.harness else None
