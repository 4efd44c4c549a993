"""The study key `selection` (docs/stages/selection.md): which pool documents each selection keeps.

A selection chooses documents from the pool domain's train split toward the target domain's
train split (never a test split) and becomes a derived domain, `{pool}_{set}` (for example
`wiki_ot`): its train split is the chosen documents, its test split the pool's own, so a cell
that trains on it is evaluated on exactly the pool's test blocks. A schedule trains on a
selection with `select: <set>`: in its cells the pool domain's train blocks are the
selection's, every other domain and the order's family are untouched.

A `random` set is the control, and one draw would make "ot beats random" a statement about one
subset. It is drawn anew for every training seed instead (the derived domain
`{pool}_{set}_seed{seed}`), so a cell of seed s trains on draw s: comparisons stay paired by
training seed, and their spread over seeds includes the spread over draws. The other methods
are deterministic given the embedding: one set for every seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from curriculab.errors import ConfigError
from curriculab.selection.embed import EmbeddingSpec
from curriculab.selection.methods import OTSpec
from curriculab.streams.schedules import SELECT as KEY  # a schedule's key naming its selection


@dataclass(frozen=True)
class SelectSet:
    """One selection: a method and a size (`k` documents, or `tokens` train tokens)."""

    name: str
    method: str
    k: int | None = None
    tokens: int | None = None

    @property
    def size(self) -> str:
        return f"{self.k} documents" if self.k is not None else f"{self.tokens} tokens"


@dataclass(frozen=True)
class Selection:
    """Every selection of a study, from one pool toward one target, in one embedding."""

    pool: str
    target: str
    embedding: EmbeddingSpec
    ot: OTSpec
    sets: tuple[SelectSet, ...]
    seed: int = 0
    seeds: tuple[int, ...] = ()  # training seeds: a random set has one draw for each

    @classmethod
    def of(cls, raw: dict[str, Any], target_domain: str, seeds: Sequence[int]) -> Selection:
        """From the `selection` key (schema-checked); the target defaults to the study's D1.
        seeds: every training seed of a cell that may train on a selection."""
        return cls(
            pool=raw["pool"],
            target=raw.get("target") or target_domain,
            embedding=EmbeddingSpec.of(raw.get("embedding")),
            ot=OTSpec.of(raw.get("ot")),
            sets=tuple(SelectSet(name, **spec) for name, spec in raw["sets"].items()),
            seed=int(raw.get("seed", 0)),
            seeds=tuple(sorted({int(s) for s in seeds})),
        )

    def domain(self, set_name: str, seed: int) -> str:
        """The derived domain (its shards' folder name) a cell of training seed `seed` trains
        on for a selection: a random set's draw for that seed, any other set itself."""
        if self.set(set_name).method == "random":
            return f"{self.pool}_{set_name}_seed{seed}"
        return f"{self.pool}_{set_name}"

    @property
    def domains(self) -> dict[str, SelectSet]:
        """Derived domain -> its selection (every draw of a random set)."""
        return {
            self.domain(s.name, seed): s
            for s in self.sets
            for seed in (self.seeds if s.method == "random" else (None,))
        }

    @property
    def draws(self) -> dict[str, int | None]:
        """Derived domain -> the training seed it is drawn for (None: not a random draw)."""
        return {
            self.domain(s.name, seed): seed
            for s in self.sets
            for seed in (self.seeds if s.method == "random" else (None,))
        }

    def set(self, name: str) -> SelectSet:
        return next(s for s in self.sets if s.name == name)

    def control(self, chosen: SelectSet) -> SelectSet | None:
        """The random selection a set is compared with: of the same size, else the first."""
        randoms = [s for s in self.sets if s.method == "random"]
        same = [s for s in randoms if (s.k, s.tokens) == (chosen.k, chosen.tokens)]
        return (same or randoms or [None])[0]


def shard_domains(
    selection: Selection | None, spec: dict[str, Any], domains: list[str], seed: int
) -> dict[str, str]:
    """Domain -> the folder of the shards a cell of schedule `spec` and training seed `seed`
    trains on (a selection's for the pool: a random set's draw for that seed)."""
    chosen = spec.get(KEY)
    if selection is None or chosen is None:
        return {d: d for d in domains}
    return {d: selection.domain(chosen, int(seed)) if d == selection.pool else d for d in domains}


def check_selection(
    raw: dict[str, Any] | None,
    domains: list[str],
    target_domain: str,
    schedules: dict[str, dict[str, Any]],
    seeds: Sequence[int],
) -> Selection | None:
    """The `selection` key checked against the domains and the schedules that use it. seeds:
    every training seed of the study's cells (a random set is drawn for each)."""
    users = {name: spec[KEY] for name, spec in schedules.items() if KEY in spec}
    if raw is None:
        if users:
            name = next(iter(users))
            raise ConfigError(
                f"config key 'grid.schedules.{name}.select': no selections are defined; "
                "add the study key 'selection' (docs/stages/selection.md)"
            )
        return None
    selection = Selection.of(raw, target_domain, seeds)
    for key, value in (("pool", selection.pool), ("target", selection.target)):
        if value not in domains:
            raise ConfigError(
                f"config key 'selection.{key}': {value!r} is not one of the domains {domains}"
            )
    if selection.pool == selection.target:
        raise ConfigError(
            f"config key 'selection.pool': {selection.pool!r} is also the target; "
            "expected a different domain to choose from"
        )
    if selection.embedding.type == "hf" and not selection.embedding.model:
        raise ConfigError(
            "config key 'selection.embedding.model': type hf needs a hub name or "
            "a local model directory"
        )
    for derived in selection.domains:
        if derived in domains:
            raise ConfigError(
                f"config key 'selection.sets': the derived domain {derived!r} is "
                "already a domain; rename the set"
            )
    names = [s.name for s in selection.sets]
    for name, chosen in users.items():
        if chosen not in names:
            raise ConfigError(
                f"config key 'grid.schedules.{name}.select': {chosen!r} is not "
                f"one of the selections {names}"
            )
        if "trunk" in schedules[name]:
            raise ConfigError(
                f"config key 'grid.schedules.{name}.select': a schedule on a "
                "trunk cannot train on a selection (its trunk trains on the "
                "whole pool)"
            )
    return selection


def embedding_params(selection: Selection) -> dict[str, Any]:
    """What rule selection_embed takes as params (plain data: a change reruns it, and only it)."""
    return {"embedding": vars(selection.embedding), "seed": selection.seed}
