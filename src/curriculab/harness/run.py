"""lm-evaluation-harness on every cell's saved model: the field's own evaluator reads our cells.

A cell's `model/` directory is a Hugging Face checkpoint (safetensors weights, config and the
study's tokenizer), so the harness loads it as `--model hf --model_args pretrained=<dir>`.
Two kinds of task run (study key `harness.tasks`):

- `curriculab_heldout_<domain>`: the shipped perplexity task (workflow/harness/
  curriculab_heldout.yaml) over that domain's held-out documents, written by `write_heldout_task`
  as a JSONL file and a task YAML that includes the shipped one. It needs no network, and its
  bits per byte compare across tokenizers (our own test loss is in nats per token).
- any task the harness knows (e.g. `lambada_openai`, `hellaswag`), where its data are reachable
  from the job: on the hub (network) or in the Hugging Face cache.

The job writes one tidy `harness.json` per cell; an unknown task or unreachable data is a
one-line error naming the task.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from curriculab.errors import ConfigError, CurriculabError, first_line
from curriculab.io import atomic_path, write_json

HELDOUT_PREFIX = "curriculab_heldout_"


class HarnessError(CurriculabError, RuntimeError):
    """A harness task that cannot run: an unknown name, or data the job cannot reach."""


@dataclass(frozen=True)
class HarnessSpec:
    """The study's `harness:` key: which tasks run on every cell after training."""

    tasks: tuple[str, ...]
    batch_size: int = 16  # documents (or rolling windows) per forward pass
    limit: int | None = None  # documents per task at most; None: all

    @property
    def heldout_domains(self) -> tuple[str, ...]:
        """Domains whose shipped held-out task is asked for, in the order asked."""
        return tuple(d for d in map(heldout_domain, self.tasks) if d is not None)


def harness_spec(raw: dict[str, Any] | None, domains: Sequence[str]) -> HarnessSpec | None:
    """The typed `harness:` mapping of a schema-valid config; None when the key is absent."""
    if not raw:
        return None
    settings = {key: raw[key] for key in ("batch_size", "limit") if key in raw}
    spec = HarnessSpec(tuple(raw["tasks"]), **settings)
    for domain in spec.heldout_domains:
        if domain not in domains:
            raise ConfigError(
                f"config key 'harness.tasks': {heldout_task(domain)!r} names no domain; "
                f"expected {HELDOUT_PREFIX}<domain> with a domain of {sorted(domains)}"
            )
    return spec


def heldout_task(domain: str) -> str:
    """Name of the shipped perplexity task over `domain`'s held-out documents."""
    return HELDOUT_PREFIX + domain


def heldout_domain(task: str) -> str | None:
    """The domain of a shipped held-out task, or None for any other task."""
    return task.removeprefix(HELDOUT_PREFIX) if task.startswith(HELDOUT_PREFIX) else None


def write_heldout_task(domain: str, docs: Path, base: Path, data_out: Path, task_out: Path) -> int:
    """Write `domain`'s test documents (docs.parquet order) as JSONL and the task YAML that
    includes the shipped `base` and reads them. Paths inside the YAML are absolute, so the
    harness finds them from any working directory. Returns the number of documents."""
    import polars as pl  # here, not at the top: the Snakefile imports this module for the config

    test = (
        pl.read_parquet(docs, columns=["doc_id", "text", "split"])
        .filter(pl.col("split") == "test")
        .select("doc_id", "text")
    )
    if test.is_empty():
        raise HarnessError(f"{docs}: domain {domain!r} has no test documents for its harness task")
    with atomic_path(data_out) as tmp, open(tmp, "w", encoding="utf-8") as out:
        for row in test.iter_rows(named=True):
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    task = (
        f"# Written by curriculab (rule harness_task) for domain {domain!r}.\n"
        f"include: {json.dumps(str(base.resolve()))}\n"
        f"task: {heldout_task(domain)}\n"
        "dataset_kwargs:\n"
        "  data_files:\n"
        f"    test: {json.dumps(str(data_out.resolve()))}\n"
    )
    with atomic_path(task_out) as tmp:
        tmp.write_text(task)
    return test.height


def _task_manager(tasks: Sequence[str], task_dir: Path):
    """The harness's task index: our task folder, plus its own tasks only when one is asked for
    (indexing the thousands of shipped tasks takes about 15 s)."""
    from lm_eval.tasks import TaskManager

    own_only = all(heldout_domain(task) is not None for task in tasks)
    manager = TaskManager(include_path=str(task_dir), include_defaults=not own_only)
    unknown = [task for task in tasks if task not in manager.all_tasks]
    if unknown:
        raise HarnessError(
            f"config key 'harness.tasks': {', '.join(map(repr, unknown))} is not a task of "
            f"lm-evaluation-harness (`lm_eval ls tasks` lists them) nor a shipped "
            f"{HELDOUT_PREFIX}<domain> task"
        )
    return manager


def _load_tasks(tasks: Sequence[str], manager) -> list:
    """Each task (or group) built with its data, before any model runs; a task whose data
    cannot be reached (no network, not in the cache) is named in one line. The built objects
    go to the evaluation as they are, so no data is loaded twice."""
    loaded = []
    for task in tasks:
        try:
            built = manager.load([task])
        except Exception as error:  # datasets raises many kinds; all mean "cannot load"
            raise HarnessError(
                f"config key 'harness.tasks': task {task!r} could not load its data "
                f"({first_line(error)}); it needs the dataset on the hub or in the Hugging "
                "Face cache of the machine that runs the job"
            ) from None
        # A tag (several tasks under one name) is neither: the harness expands it again.
        loaded.append(built["groups"].get(task) or built["tasks"].get(task, task))
    return loaded


def _number(value: Any) -> float | None:
    """A harness score as a float; 'N/A' (no standard error) and non-finite values as None."""
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


def tidy_results(results: dict[str, Any], tasks: Sequence[str]) -> dict[str, Any]:
    """The harness's result mapping -> {task: {"n_docs", "metrics": {name: {value, stderr}}}}.
    Keys arrive as "<metric>,<filter>" and "<metric>_stderr,<filter>"."""
    tidy: dict[str, Any] = {}
    for task in tasks:
        scores = results["results"][task]
        metrics: dict[str, dict[str, float | None]] = {}
        for key, value in scores.items():
            name, _, filter_name = key.partition(",")
            if not filter_name or name.endswith("_stderr"):
                continue
            label = name if filter_name == "none" else f"{name} ({filter_name})"
            metrics[label] = {
                "value": _number(value),
                "stderr": _number(scores.get(f"{name}_stderr,{filter_name}")),
            }
        samples = results.get("n-samples", {}).get(task, {})
        tidy[task] = {"n_docs": samples.get("effective"), "metrics": metrics}
    return tidy


def run_harness(
    model_dir: Path,
    tasks: Sequence[str],
    task_dir: Path,
    out: Path,
    *,
    device: str,
    batch_size: int,
    limit: int | None,
    log: TextIO = sys.stderr,
) -> dict[str, Any]:
    """Evaluate one cell's model on `tasks` with lm-evaluation-harness; write `out` (JSON)."""
    import lm_eval
    from lm_eval.evaluator import simple_evaluate

    manager = _task_manager(tasks, task_dir)
    loaded = _load_tasks(tasks, manager)
    print(f"lm-evaluation-harness {lm_eval.__version__}: {list(tasks)} on {model_dir}", file=log)
    results = simple_evaluate(
        model="hf",
        model_args={"pretrained": str(model_dir), "dtype": "float32"},
        tasks=loaded,
        task_manager=manager,
        device=device,
        batch_size=batch_size,
        limit=limit,
        log_samples=False,
    )
    if results is None:  # only on non-zero ranks of a distributed run, which this never is
        raise HarnessError(f"{model_dir}: lm-evaluation-harness returned no results")
    payload = {
        "lm_eval_version": lm_eval.__version__,
        "model": str(model_dir),
        "limit": limit,
        "tasks": tidy_results(results, tasks),
    }
    for task, scores in payload["tasks"].items():
        metrics = scores["metrics"].items()
        shown = ", ".join(f"{k} {v['value']:.4g}" for k, v in metrics if v["value"] is not None)
        print(f"{task}: {shown}", file=log)
    write_json(out, payload)
    return payload
