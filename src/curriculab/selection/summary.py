"""Rule selection_summary: every selection's record, how much the selections overlap, and the
selection x placement comparisons of the cells (curriculab.selection.compare), for the report.
A random set has one draw per training seed: its overlaps are summarised over draws (mean,
min, max), beside the overlap of its draws with each other."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations
from pathlib import Path
from typing import Any

import polars as pl

from curriculab.analysis.domains import objective_cells, train_blocks
from curriculab.io import atomic_path, read_json, write_json
from curriculab.objective import describe
from curriculab.selection.compare import selection_tables
from curriculab.selection.methods import transport_cost
from curriculab.selection.plan import Selection
from curriculab.selection.stage import read_embeddings


def overlaps(scores: Sequence[str | Path], names: Sequence[str]) -> list[dict[str, Any]]:
    """Jaccard overlap of the chosen documents of every pair of sets (`names`: each score
    file's set; a random set's draws share its name): per pair of set names, the number of
    pairs of draws, their mean Jaccard, min and max. A random set paired with itself is the
    overlap of two of its draws."""
    chosen = [
        (name, set(pl.read_parquet(path).filter(pl.col("chosen"))["doc_id"].to_list()))
        for name, path in zip(names, scores, strict=True)
    ]
    order = list(dict.fromkeys(names))
    found: dict[tuple[str, str], list[float]] = {}
    for (a, x), (b, y) in combinations(chosen, 2):
        key = (a, b) if order.index(a) <= order.index(b) else (b, a)
        found.setdefault(key, []).append(len(x & y) / max(len(x | y), 1))
    return [
        {"a": a, "b": b, "pairs": len(j), "jaccard": sum(j) / len(j), "jaccard_min": min(j),
         "jaccard_max": max(j)}
        for (a, b), j in sorted(found.items(), key=lambda kv: (order.index(kv[0][0]),
                                                               order.index(kv[0][1])))
    ]  # fmt: skip


def write_summary(params: Any, inputs: Any, out: Mapping[str, str | Path]) -> pl.DataFrame:
    """Write results/selection/summary.json and the comparisons' CSV; return the comparisons."""
    selection = Selection.of(params.selection, params.target_domain, params.seeds)
    blocks = train_blocks(params.domains, inputs.manifests)
    cells = objective_cells(
        params.runs, params.domains, params.target_domain, params.utility, params.ratios, blocks
    )
    means, tests = selection_tables(cells, params.layout, selection, params.reference)
    with atomic_path(out["tests"]) as tmp:
        tests.write_csv(tmp)
    records = [read_json(path) for path in inputs.records]  # in the order of inputs.scores
    vectors = read_embeddings(inputs.embeddings)  # the whole pool's distance, once for all sets
    pool_cost = transport_cost(
        vectors["pool"][1], vectors["target"][1], selection.ot.epsilon, selection.seed
    )
    write_json(
        out["summary"],
        {
            "pool": selection.pool,
            "target": selection.target,
            "embedding": selection.embedding.describe(),
            "ot": vars(selection.ot),
            "objective": describe(params.utility, params.target_domain),
            "reference": params.reference,
            "layout": dict(params.layout),
            "records": records,
            "draws": {
                s.name: list(selection.seeds) for s in selection.sets if s.method == "random"
            },
            "pool_transport_cost": pool_cost,
            "overlaps": overlaps(inputs.scores, [r["set"] for r in records]),
            "means": means.to_dicts(),
            "tests": tests.to_dicts(),
        },
    )
    return tests
