"""A typed, frozen view of config.yaml, validated against workflow/schemas/config.schema.yaml.

Validation happens when Snakemake builds the DAG, before any job runs. Every problem is reported
as a `ConfigError` whose message is one line naming the key at fault and what is expected.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import jsonschema

from curriculab.analysis.controls import AuditSpec, MatchedControl, check_audit, matched_controls
from curriculab.data.near_duplicates import NearDuplicates
from curriculab.data.pretrained import TokenizerSpec, check_tokenizer
from curriculab.data.shards import DEFAULT_FILE_MB
from curriculab.design.plan import Design, check_design, pick
from curriculab.errors import ConfigError
from curriculab.harness.run import HarnessSpec, harness_spec
from curriculab.io import load_yaml
from curriculab.job_resources import TrainResources, train_resources
from curriculab.ladder.plan import Ladder, check_ladder
from curriculab.objective import check_utility
from curriculab.panel.plan import PanelSpec, check_panel
from curriculab.selection.plan import Selection, check_selection
from curriculab.streams.multi import uses_utility
from curriculab.streams.prefix import check_removals, check_trunks
from curriculab.streams.schedules import BudgetSpec, budget_spec, check_schedule, order_spec
from curriculab.training.model import PRESETS

# nats/token below the unigram reference that count as learning beyond token frequencies
DEFAULT_MARGIN = 0.1


@dataclass(frozen=True)
class DomainSpec:
    """One data domain: where its documents come from and how many to read at most."""

    name: str
    source: dict[str, Any]
    max_docs: int | None
    subset: dict[str, Any] | None = None  # {buckets, keep}: documents by content-hash bucket
    sample: str = "random"  # which documents max_docs keeps: random (by content hash) or first


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser and evaluation settings shared by every cell."""

    batch_size: int  # sequences per optimiser step (the token batch is batch_size * seq_len)
    lr: float  # peak learning rate of AdamW
    warmup_fraction: float  # share of steps with linear warmup
    min_lr_fraction: float  # floor of the decay, as a fraction of lr
    weight_decay: float  # AdamW decoupled weight decay
    grad_clip: float  # max global L2 norm of gradients
    eval_points: int  # evaluations during training (see eval_spacing), after the initial one
    eval_blocks: int  # held-out blocks per domain used for the learning curve
    final_eval_blocks: int | None  # held-out blocks per domain in the final evaluation (None: all)
    log_every_steps: int  # progress line interval in the rule's log
    device: str  # "auto" picks CUDA when present
    micro_batch_size: int | None  # sequences per forward/backward; None: the whole batch
    lr_schedule: str  # cosine, linear, constant or wsd (warmup, stable, decay)
    decay_fraction: float  # wsd: final share of steps with linear decay to the floor
    decay_start: str  # wsd: "fixed" (the final decay_fraction) or "window" (the D1 window)
    eval_spacing: str  # "linear" or "log" spacing of the learning-curve evaluations
    checkpoint_every: int | None  # steps between resumable checkpoints; None: none
    compile: str  # torch.compile: "auto" (on CUDA), "on" or "off"


@dataclass(frozen=True)
class Study:
    """The whole study: domains, grid of cells, and the settings of every stage."""

    name: str
    target_domain: str
    utility: dict[str, Any] | None  # per-domain weights of the objective (curriculab.objective)
    domains: dict[str, DomainSpec]
    test_fraction: float
    min_chars: int
    tokenizer: TokenizerSpec  # trained (vocab_size) or pretrained (data/pretrained.py)
    vocab_size: int  # the vocabulary the model is sized for
    seq_len: int
    ratios: tuple[float, ...]
    schedules: dict[str, dict[str, Any]]  # name -> {"family": ..., **parameters}, sweeps expanded
    seeds: tuple[int, ...]
    arms: dict[str, TrainConfig]  # learning-rate arm name -> the training settings of its cells
    budget: BudgetSpec
    baseline: str  # schedule that every other is compared with, paired by seed
    target_d1_loss: float | None  # speed-of-learning target; None: the stated default rule
    unigram_margin: float  # nats/token below the unigram reference that counts as learned
    verdict_schedules: tuple[str, ...] | None  # the verdict family; None: the latest schedule
    model_preset: str
    train: TrainConfig
    resources: TrainResources  # what training and evaluation jobs ask of the scheduler
    harness: HarnessSpec | None = None  # lm-evaluation-harness tasks on every cell; None: none
    trunks: dict[str, tuple[str, ...]] = field(default_factory=dict)  # trunk -> its schedules
    removals: dict[str, dict[str, str]] = field(default_factory=dict)  # schedule -> domain, ref
    design: Design | None = None  # the design loop (curriculab.design.plan); None: none
    ladder: Ladder | None = None  # scale ladders (curriculab.ladder.plan); None: none
    shard_file_mb: float = DEFAULT_FILE_MB  # MB of tokens per shard file (data/shards.py)
    panel: PanelSpec | None = None  # run panels (curriculab.panel); None: none
    selection: Selection | None = None  # target-aware selection (curriculab.selection); None: none
    audit: AuditSpec = field(default_factory=AuditSpec)  # comparability tolerances
    controls: dict[str, MatchedControl] = field(default_factory=dict)  # name -> matched control
    near_duplicates: NearDuplicates = field(default_factory=NearDuplicates)  # prepare's check

    @property
    def ratio_labels(self) -> tuple[str, ...]:
        """Ratios as they appear in paths and wildcards (shortest exact decimal form)."""
        return tuple(ratio_label(r) for r in self.ratios)

    @property
    def domain_names(self) -> tuple[str, ...]:
        """Domain names in a fixed (sorted) order, used wherever order must be deterministic."""
        return tuple(sorted(self.domains))

    @property
    def train_settings(self) -> dict[str, dict[str, Any]]:
        """Per arm, its training settings as a plain mapping (a rule's params)."""
        return {name: asdict(cfg) for name, cfg in self.arms.items()}

    def ratio_value(self, label: str) -> float:
        """The ratio (D1 train blocks per D2 train block) behind a wildcard label."""
        return self.ratios[self.ratio_labels.index(label)]


def ratio_label(ratio: float) -> str:
    """Format a ratio for paths: 0.05 -> '0.05', 1.0 -> '1'."""
    return format(ratio, "g")


def _key_path(error: jsonschema.ValidationError, prefix: str = "") -> str:
    parts = [f"[{p}]" if isinstance(p, int) else str(p) for p in error.absolute_path]
    return ".".join([prefix, *parts] if prefix else parts).replace(".[", "[") or "<top level>"


def validate_schema(
    config: dict[str, Any], schema: dict[str, Any], prefix: str = "", note: str = ""
) -> None:
    """Check `config` against the JSON schema; raise the single most relevant error as one line."""
    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is not None:
        message = " ".join(error.message.split())
        raise ConfigError(f"config key '{_key_path(error, prefix)}'{note}: {message}")


def expand_schedules(entries: dict[str, dict[str, Any]]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Expand `sweep:` lists: {name: (entry name, spec)}; a swept schedule is named like
    'late-window0.1-d1_share0.5' (one suffix per swept parameter, in the order given)."""
    expanded: dict[str, tuple[str, dict[str, Any]]] = {}
    for base, entry in entries.items():
        spec = {k: v for k, v in entry.items() if k != "sweep"}
        sweep = entry.get("sweep", {})
        for picks in itertools.product(*(range(len(v)) for v in sweep.values())):
            values = [options[i] for options, i in zip(sweep.values(), picks, strict=True)]
            suffix = "".join(
                f"-{key}{_label(v, i)}" for key, v, i in zip(sweep, values, picks, strict=True)
            )
            expanded[base + suffix] = (base, {**spec, **dict(zip(sweep, values, strict=True))})
    return expanded


def _label(value: Any, index: int) -> str:
    """A path-safe label: numbers as written (0.1), other values by their position in the list."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return str(index)
    return format(value, "g") if isinstance(value, float) else str(value)


def _check_schedules(config: dict[str, Any], schema: dict[str, Any]) -> dict[str, dict]:
    """Every schedule, sweeps expanded and checked; one that places domains by utility carries
    the study's `utility` (its order depends on it: see streams.schedules.uses_utility)."""
    names, target = sorted(config["domains"]), config["target_domain"]
    single = {"$ref": "#/$defs/schedule", "$defs": schema["$defs"]}
    schedules = {}
    for name, (base, spec) in expand_schedules(config["grid"]["schedules"]).items():
        note = f" (sweep value {name!r})" if name != base else ""
        validate_schema(order_spec(spec), single, prefix=f"grid.schedules.{base}", note=note)
        problem = check_schedule(spec, names, target)
        if problem:
            raise ConfigError(f"config key 'grid.schedules.{base}'{note}: {problem}")
        schedules[name] = {**spec, "utility": config.get("utility")} if uses_utility(spec) else spec
    return schedules


def _check_semantics(config: dict[str, Any]) -> None:
    domains = config["domains"]
    if config["target_domain"] not in domains:
        raise ConfigError(
            f"config key 'target_domain': {config['target_domain']!r} is not one of the "
            f"domains {sorted(domains)}"
        )
    problem = check_utility(config.get("utility"), sorted(domains))
    if problem:
        raise ConfigError(f"config key 'utility': {problem}")
    labels = [ratio_label(r) for r in config["grid"]["ratios"]]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"config key 'grid.ratios': values must be distinct, got {labels}")
    presets = [("model.preset", config["model"]["preset"])]
    ladder = config.get("ladder") or {}
    for key, scale in [*enumerate(ladder.get("scales", [])), ("target", ladder.get("target"))]:
        if (scale or {}).get("preset"):
            where = f"scales[{key}]" if isinstance(key, int) else key
            presets.append((f"ladder.{where}.preset", scale["preset"]))
    for key, preset in presets:
        if preset not in PRESETS:
            raise ConfigError(
                f"config key '{key}': unknown preset {preset!r}; expected one of {sorted(PRESETS)}"
            )
        seq_len, context = config["shards"]["seq_len"], PRESETS[preset].context
        if seq_len > context:
            raise ConfigError(
                f"config key 'shards.seq_len': {seq_len} tokens is longer than the context of "
                f"preset {preset!r} ({context} tokens, {key})"
            )
    batch, micro = config["train"]["batch_size"], config["train"].get("micro_batch_size")
    if micro is not None and (micro > batch or batch % micro):
        raise ConfigError(
            f"config key 'train.micro_batch_size': {micro} must divide train.batch_size ({batch}) "
            "so that every micro-batch has the same size"
        )


# Top-level keys a newer version calls by another name: an old study file gets a pointer.
RENAMED = {"select": "selection"}


def load_study(
    config: dict[str, Any],
    schema_path: str | os.PathLike[str],
    workflow_dir: str | os.PathLike[str] | None = None,
) -> Study:
    """Validate a config mapping and return the typed `Study`; raise `ConfigError` if invalid.
    workflow_dir: where files that ship with the workflow are found when the working
    directory lacks them (a panel's tables)."""
    schema = load_yaml(schema_path)
    for old, new in RENAMED.items():
        if old in config:
            raise ConfigError(f"config key {old!r}: renamed to {new!r} (docs/reference/config.md)")
    validate_schema(config, schema)
    _check_semantics(config)
    schedules = _check_schedules(config, schema)
    analysis = config.get("analysis") or {}
    baseline = analysis.get(
        "baseline", "shuffled" if "shuffled" in schedules else next(iter(schedules))
    )
    if baseline not in schedules:
        raise ConfigError(
            f"config key 'analysis.baseline': {baseline!r} is not one of the schedules "
            f"{sorted(schedules)}"
        )
    domains = {
        name: DomainSpec(
            name=name,
            source=dict(spec["source"]),
            max_docs=spec.get("max_docs"),
            subset=_check_subset(name, spec.get("subset")),
            sample=spec.get("sample", "random"),
        )
        for name, spec in config["domains"].items()
    }
    train = train_config(config["train"])
    grid = config["grid"]
    seq_len = int(config["shards"]["seq_len"])
    budget = budget_spec(config["streams"], seq_len, train.batch_size)
    ratios = {ratio_label(r): float(r) for r in grid["ratios"]}
    arms = lr_arms(grid.get("lr_arms"), train)
    audit = check_audit(analysis.get("audit"))
    design = check_design(config.get("design"), schedules, ratios, arms, grid["seeds"])
    tokenizer = check_tokenizer(config["tokenizer"])
    return Study(
        name=config["study"],
        target_domain=config["target_domain"],
        utility=config.get("utility"),
        domains=domains,
        test_fraction=float(config["prepare"]["test_fraction"]),
        min_chars=int(config["prepare"]["min_chars"]),
        near_duplicates=NearDuplicates.of(config["prepare"].get("near_duplicates")),
        tokenizer=tokenizer,
        vocab_size=tokenizer.vocab_size,
        seq_len=int(config["shards"]["seq_len"]),
        shard_file_mb=float(config["shards"].get("file_mb", DEFAULT_FILE_MB)),
        panel=check_panel(config.get("panel"), ".", workflow_dir),
        ratios=tuple(float(r) for r in grid["ratios"]),
        schedules=schedules,
        seeds=tuple(int(s) for s in grid["seeds"]),
        arms=arms,
        budget=budget,
        baseline=baseline,
        target_d1_loss=analysis.get("target_d1_loss"),
        unigram_margin=float(analysis.get("unigram_margin", DEFAULT_MARGIN)),
        verdict_schedules=_verdict_schedules(analysis, schedules, baseline),
        model_preset=config["model"]["preset"],
        train=train,
        resources=train_resources(
            config.get("resources", {}).get("train", {}),
            config["train"].get("device", TRAIN_DEFAULTS["device"]),
            train.batch_size // (train.micro_batch_size or train.batch_size),
        ),
        harness=harness_spec(config.get("harness"), tuple(config["domains"])),
        trunks=check_trunks(schedules, budget, seq_len),
        removals=check_removals(schedules),
        design=design,
        ladder=check_ladder(
            config.get("ladder"),
            grid["seeds"],
            schedules,
            ratios,
            arms,
            config["model"]["preset"],
            pick,
            seq_len,
        ),
        selection=check_selection(
            config.get("selection"),
            sorted(domains),
            config["target_domain"],
            schedules,
            (*grid["seeds"], *(design.fresh_seeds if design else ())),  # a random draw each
        ),
        audit=audit,
        controls=matched_controls(schedules, baseline, arms, audit),
    )


def _verdict_schedules(
    analysis: dict[str, Any], schedules: dict[str, Any], baseline: str
) -> tuple[str, ...] | None:
    """`analysis.verdict_schedules`: schedules of the study other than the baseline, or None."""
    chosen = analysis.get("verdict_schedules")
    if chosen is None:
        return None
    for name in chosen:
        if name not in schedules or name == baseline:
            raise ConfigError(
                f"config key 'analysis.verdict_schedules': {name!r} is not one of the schedules "
                f"compared with the baseline {sorted(set(schedules) - {baseline})}"
            )
    return tuple(chosen)


def _check_subset(domain: str, subset: dict[str, Any] | None) -> dict[str, Any] | None:
    """A domain's `subset:` (content-hash buckets to keep), checked against its bucket count."""
    if subset is not None and max(subset["keep"]) >= subset["buckets"]:
        raise ConfigError(
            f"config key 'domains.{domain}.subset.keep': bucket {max(subset['keep'])} does not "
            f"exist; buckets are numbered 0 to {subset['buckets'] - 1}"
        )
    return subset


def lr_arms(raw: dict[str, dict[str, Any]] | None, train: TrainConfig) -> dict[str, TrainConfig]:
    """The learning-rate arms: each arm is `train:` with its own learning-rate keys. Without
    `grid.lr_arms`, one arm named after train.lr_schedule with nothing overridden."""
    if not raw:
        return {train.lr_schedule: train}
    arms = {name: replace(train, **overrides) for name, overrides in raw.items()}
    for name, arm in arms.items():
        if arm.decay_start == "window" and arm.lr_schedule != "wsd":
            raise ConfigError(
                f"config key 'grid.lr_arms.{name}.decay_start': 'window' places a WSD decay; "
                f"this arm's lr_schedule is {arm.lr_schedule!r} (set lr_schedule: wsd)"
            )
    return arms


def train_config(raw: dict[str, Any]) -> TrainConfig:
    """The typed training settings of a validated `train:` mapping, with defaults filled in."""
    return TrainConfig(**{**TRAIN_DEFAULTS, **raw})


# Defaults of the optional `train:` keys (the schema lists the same values).
TRAIN_DEFAULTS: dict[str, Any] = {
    "final_eval_blocks": None,
    "log_every_steps": 10,
    "device": "auto",
    "micro_batch_size": None,
    "lr_schedule": "cosine",
    "decay_fraction": 0.2,
    "decay_start": "fixed",
    "eval_spacing": "linear",
    "checkpoint_every": None,
    "compile": "auto",
}
