"""Pre-registration of the verdict family: what will be judged, fixed before any cell trains.

The rule `preregister` writes `results/analysis/preregistration.json` before any training job starts
(every training job waits for it, without rerunning when it changes later): the verdict
family's schedules, arms, ratios, seeds, baseline, matched controls, the audit's tolerances and
alpha, with the sha256 of that specification. Each registration is also appended to
`results/analysis/preregistration.history.jsonl` with the number of cells that had finished by
then, so that a family changed after results existed is never silent: the report says so at its top
(`changed_after_results`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

from curriculab.io import write_json

ALPHA = 0.05  # the family-wise error rate of every Holm family in the report


def registration_spec(study: Any) -> dict[str, Any]:
    """What the verdicts of a `config.Study` are fixed to before it trains."""
    return {
        "target_domain": study.target_domain,
        "baseline": study.baseline,
        "verdict_schedules": list(study.verdict_schedules or [])
        or "the latest schedule with a comparison of order alone",
        "schedules": study.schedules,
        "matched_controls": {
            name: {"baseline": c.baseline, "treatment": c.treatment, "arms": list(c.arms)}
            for name, c in study.controls.items()
        },
        "arms": study.train_settings,
        "ratios": list(study.ratio_labels),
        "seeds": list(study.seeds),
        "utility": study.utility,
        "audit": {
            key: getattr(study.audit, key)
            for key in ("lr", "tokens", "epochs", "exposure", "matched_controls")
        },
        "alpha": ALPHA,
        "correction": "holm",
    }


def spec_hash(spec: dict[str, Any]) -> str:
    """sha256 of a specification's canonical JSON."""
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def register(spec: dict[str, Any], out: str | Path, runs: str | Path) -> dict[str, Any]:
    """Write the registration of `spec` to `out` and append it to the history beside it;
    `runs`: the folder whose finished cells (metrics.json) are counted."""
    out = Path(out)
    history_path = out.with_suffix(".history.jsonl")
    history = []
    if history_path.exists():
        history = [json.loads(line) for line in history_path.read_text().splitlines() if line]
    entry = {
        "sha256": spec_hash(spec),
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cells_existing": sum(1 for _ in Path(runs).glob("**/metrics.json")),
    }
    if not history or history[-1]["sha256"] != entry["sha256"]:
        history.append(entry)
        with history_path.open("a", encoding="utf-8") as file:
            file.write(json.dumps(entry) + "\n")
    record = {"sha256": entry["sha256"], "spec": spec, "history": history}
    record["changed_after_results"] = changed_after_results(history)
    write_json(out, record)
    return record


def changed_after_results(history: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The registration in force when the first cells were trained (the last one made before
    any existed), the first change made after, and the current one; None without a change."""
    before = [e for e in history if not e["cells_existing"]] or history[:1]
    first = before[-1]
    for entry in history[history.index(first) + 1 :]:
        if entry["sha256"] != first["sha256"]:
            return {"first": first, "changed": entry, "now": history[-1]}
    return None
