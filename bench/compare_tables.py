"""Not a benchmark: the check that a change meant to leave results alone (a move, a rename) did.

Compares two runs' `results/analysis/` byte for byte; a table that differs is compared again
without its run-time columns (wall-clock seconds and tokens/s differ between any two runs,
even of the same commit). Exits 1 if anything else differs.

    python bench/compare_tables.py /tmp/study_before/results/analysis results/analysis
"""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl

RUN_TIME = {"tokens_per_second", "wall_seconds", "train_seconds"}


def read(path: Path) -> pl.DataFrame | None:
    if path.suffix == ".csv":
        return pl.read_csv(path)
    if path.suffix == ".parquet":
        return pl.read_parquet(path)
    return None


def compare(a: Path, b: Path) -> int:
    """Files that differ beyond their run-time columns (printed as found)."""
    names = sorted({p.name for p in a.iterdir()} | {p.name for p in b.iterdir()})
    identical = differ = 0
    for name in names:
        left, right = a / name, b / name
        if not (left.exists() and right.exists()):
            print(f"only in one: {name}")
            differ += 1
        elif left.read_bytes() == right.read_bytes():
            identical += 1
        else:
            x, y = read(left), read(right)
            same_columns = x is not None and y is not None and x.columns == y.columns
            kept = [c for c in x.columns if c not in RUN_TIME] if same_columns else []
            if same_columns and x.select(kept).equals(y.select(kept)):
                print(f"{name}: equal but for {sorted(set(x.columns) & RUN_TIME)}")
                continue
            print(f"DIFFERS: {name}")
            differ += 1
    print(f"{identical} of {len(names)} files byte-identical; {differ} differ beyond run time")
    return differ


if __name__ == "__main__":
    sys.exit(1 if compare(Path(sys.argv[1]), Path(sys.argv[2])) else 0)
