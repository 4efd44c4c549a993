"""Rules ladder and ladder_summary: every scale's fits and the predictions at the target scale,
or the check there with the fits, for the report."""

import json
import sys

from curriculab.errors import log_to

log_to(snakemake.log[0])


from curriculab.analysis.domains import objective_cells, train_blocks
from curriculab.io import atomic_path, read_json, write_json
from curriculab.ladder.plan import Ladder
from curriculab.ladder.tables import check_table, ladder_fits

params = snakemake.params
ladder = Ladder.of(params.ladder)
blocks = train_blocks(params.domains, snakemake.input.manifests)
cells = objective_cells(
    params.runs, params.domains, params.target, params.utility, [ladder.ratio], blocks
).select("schedule", "seed", "objective")


def write_csv(table, path):
    with atomic_path(path) as tmp:
        table.write_csv(tmp)


if snakemake.rule == "ladder":
    fits = ladder_fits(ladder, cells, blocks, params.target, params.ratio)
    write_csv(fits["optima"], snakemake.output.optima)
    write_csv(fits["orders"], snakemake.output.orders)
    write_csv(fits["predictions"], snakemake.output.predictions)
    write_csv(fits["epochs"], snakemake.output.epochs)
    record = {k: v if k == "check" else v.to_dicts() for k, v in fits.items()}
    write_json(snakemake.output.fits, record)
    print(json.dumps(fits["check"], indent=2), file=sys.stderr)
else:
    means, tests = check_table(cells)
    write_csv(tests, snakemake.output.check)
    summary = {
        **read_json(snakemake.input.fits),
        "ladder": params.ladder,
        "check_means": means.to_dicts(),
        "check_tests": tests.to_dicts(),
    }
    write_json(snakemake.output.summary, summary)
    print(tests, file=sys.stderr)
