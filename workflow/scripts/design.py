"""Rules design and design_summary: one round's proposals, or the loop's result for the report."""

import json
import sys

from curriculab.errors import log_to

log_to(snakemake.log[0])


from curriculab.analysis.domains import objective_cells, train_blocks
from curriculab.design.loop import allowed_points, observations, propose_round, seed_noise
from curriculab.design.plan import Design
from curriculab.design.summary import summarise
from curriculab.io import atomic_path, read_json, write_json
from curriculab.streams.schedules import budget_spec

params = snakemake.params
design = Design.of(params.design)
blocks = train_blocks(params.domains, snakemake.input.manifests)
allowed = allowed_points(
    design, blocks, params.target, params.ratio, budget_spec(params.budget, params.seq_len)
)
rounds = [read_json(path) for path in snakemake.input.proposals]
specs = dict(params.schedules) | {p["schedule"]: p["spec"] for r in rounds for p in r["proposals"]}
cells = (
    objective_cells(
        params.runs, params.domains, params.target, params.utility, [design.ratio], blocks
    )
    if params.runs
    else None
)
obs = observations(cells, design, specs) if cells is not None else None
noise = seed_noise(cells, design, obs["schedule"].to_list()) if obs is not None else None

if snakemake.rule == "design":
    round_ = int(snakemake.wildcards["round"])
    proposals = propose_round(design, round_, obs, allowed, noise)
    observed = [] if obs is None else obs.to_dicts()
    write_json(
        snakemake.output.proposals,
        {
            "round": round_,
            "design": params.design,
            "observed": observed,
            "seed_noise_sd": None if noise is None else noise**0.5,
            "proposals": proposals,
        },
    )
    for p in proposals:
        print(json.dumps(p), file=sys.stderr)
else:
    points, surface, summary = summarise(
        design, obs, rounds, allowed, cells, params.baseline, noise
    )
    for table, path in ((points, snakemake.output.points), (surface, snakemake.output.surface)):
        with atomic_path(path) as tmp:
            table.write_parquet(tmp)
    with atomic_path(snakemake.output.points_csv) as tmp:
        points.write_csv(tmp)
    write_json(snakemake.output.summary, summary)
    print(json.dumps(summary, indent=2), file=sys.stderr)
