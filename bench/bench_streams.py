"""Benchmark: building a training stream of ~10^6 sequences, per schedule family.

Requirement (issue): building a stream of 10^6 sequences (about 1B tokens at sequence length
1024) for any family takes at most 1 second and 200 MB of memory: vectorised numpy, no Python
loop per position.

For each case the parent runs this script again in a fresh subprocess (hidden `--one CASE`), so
memory figures are not polluted by earlier cases. The child:

1. builds the inputs, resets the resident high-water mark to the current RSS (Linux:
   /proc/self/clear_refs), reads `ru_maxrss`, builds the stream once (cold, the way a Snakemake
   job builds it) and reads `ru_maxrss` again: `peak_rss_delta_mb` is the growth of the process's
   resident high-water mark caused by the build, `peak_rss_mb` the absolute high-water mark;
2. builds it `--repeats` more times, timed with `time.perf_counter`: `median_s`, `min_s`;
3. builds it once under `tracemalloc`: `tracemalloc_peak_mb` is the peak of Python-heap and
   numpy array allocations made during the build (numpy reports its data buffers to
   tracemalloc), the result arrays included.

A case passes when median_s <= 1 s and both memory figures are <= 200 MB. Writing the stream to
Arrow IPC (`stream_table` + `write_arrow`, into a temp dir) is timed separately for one case.

    .venv/bin/python bench/bench_streams.py [--sequences 1000000] [--repeats 5]
        [--out bench/results/streams.json] [--cases shuffled ramp ...]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from machine import MB, machine_info, machine_line, maxrss_mb, reset_peak_rss, vmhwm_mb

ROOT = Path(__file__).resolve().parents[1]
TIME_LIMIT_S = 1.0
MEMORY_LIMIT_MB = 200.0
ARROW_CASE = "shuffled"  # the case whose stream is also written to Arrow

STAGES = {
    "family": "stages",
    "phases": [
        {"fraction": 0.7, "shares": {"d1": 0.05, "d2": 0.95}},
        {"fraction": 0.3, "shares": {"d1": 0.4, "d2": 0.6}},
    ],
}


def cases(sequences: int) -> dict[str, dict[str, Any]]:
    """Every benchmark case: inputs to `build_order` giving ~`sequences` positions.

    fixed_data: D2 has sequences / 1.12 blocks and D1 4/9 of that (400k : 900k), ratio 0.12,
    so D2 + 0.12 * D2 = `sequences`. fixed_tokens: total_blocks = `sequences`.
    """
    d2 = round(sequences / 1.12)
    natural = {"d1": round(d2 * 4 / 9), "d2": d2}
    # D1 small enough to repeat: 2% / 30% of the run's length, ratio 0.05 -> 15k D1 at 1e6.
    small = {"d1": round(sequences * 0.02), "d2": round(sequences * 0.3)}
    data = {"kind": "fixed_data", "total_blocks": None, "max_epochs": None}
    tokens = {"kind": "fixed_tokens", "total_blocks": sequences, "max_epochs": None}
    end_window = {"family": "end_window", "window": 0.2, "d1_factor": 3}
    specs = {
        "shuffled": {"family": "shuffled"},
        "sequential": {"family": "sequential", "order": ["d2", "d1"]},
        "end_window": end_window,
        "ramp": {"family": "ramp", "start": 0.0, "end": None, "shape": "cosine"},
        "placement": {"family": "placement", "a": 8, "b": 1},
    }
    out = {
        name: {"train_blocks": natural, "ratio": 0.12, "spec": spec, "budget": data}
        for name, spec in specs.items()
    }
    out["stages"] = {"train_blocks": natural, "ratio": 0.12, "spec": STAGES, "budget": tokens}
    out["end_window_repeats"] = {
        "train_blocks": small,
        "ratio": 0.05,
        "spec": end_window,
        "budget": tokens,
    }
    return out


# --- child: one case in a fresh process -------------------------------------------------------


def run_one(name: str, case: dict[str, Any], repeats: int, arrow: bool) -> dict[str, Any]:
    """Measure one case (memory first, in a process that has built nothing yet)."""
    import numpy as np

    from curriculab.streams.build import build_order
    from curriculab.streams.schedules import BudgetSpec

    budget = BudgetSpec(**case["budget"])
    args = (case["train_blocks"], "d1", case["ratio"], name, case["spec"], 0, budget)

    peak_reset = reset_peak_rss()
    rss_before, hwm_before = maxrss_mb(), vmhwm_mb()
    start = time.perf_counter()
    names, order = build_order(*args)
    cold_s = time.perf_counter() - start
    rss_after, hwm_after = maxrss_mb(), vmhwm_mb()

    n = len(order.domains)
    d1 = names.index("d1")
    result: dict[str, Any] = {
        "case": name,
        "family": case["spec"]["family"],
        "budget": budget.kind,
        "train_blocks": case["train_blocks"],
        "ratio": case["ratio"],
        "spec": case["spec"],
        "sequences": n,
        "d1_sequences": int(np.count_nonzero(order.domains == d1)),
        "max_epoch": {
            nm: int(order.epochs[order.domains == k].max()) for k, nm in enumerate(names)
        },
        "result_arrays_mb": sum(a.nbytes for a in (order.domains, order.blocks, order.epochs)) / MB,
        "cold_s": cold_s,
        "rss_before_mb": rss_before,
        "peak_rss_mb": rss_after,
        "peak_rss_delta_mb": max(rss_after - rss_before, 0.0),
        "peak_rss_reset_before_build": peak_reset,
        "vmhwm_delta_mb": None if hwm_before is None else max(hwm_after - hwm_before, 0.0),
    }
    del order

    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        names, order = build_order(*args)
        times.append(time.perf_counter() - start)
        del order
    result.update(times_s=times, median_s=statistics.median(times), min_s=min(times))

    tracemalloc.start()
    names, order = build_order(*args)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    result["tracemalloc_peak_mb"] = traced_peak / MB

    result["pass_time"] = result["median_s"] <= TIME_LIMIT_S
    result["pass_memory"] = max(result["peak_rss_delta_mb"], result["tracemalloc_peak_mb"]) <= (
        MEMORY_LIMIT_MB
    )
    result["pass"] = result["pass_time"] and result["pass_memory"]

    if arrow:
        result["arrow"] = time_arrow(names, order, repeats)
    return result


def time_arrow(names: list[str], order: Any, repeats: int) -> dict[str, Any]:
    """Time stream_table (numpy -> Arrow) and write_arrow (IPC file in a temp dir)."""
    from curriculab.io import write_arrow
    from curriculab.streams.stream_file import stream_table

    table_s, write_s = [], []
    with tempfile.TemporaryDirectory(prefix="bench_streams_") as tmp:
        path = Path(tmp) / "stream.arrow"
        for _ in range(repeats + 1):  # the first (cold: pyarrow's lazy set-up) is reported apart
            start = time.perf_counter()
            table = stream_table(names, order)
            table_s.append(time.perf_counter() - start)
            start = time.perf_counter()
            write_arrow(table, path)
            write_s.append(time.perf_counter() - start)
            del table
        size = path.stat().st_size
        tmp_dir = tmp
    total = [a + b for a, b in zip(table_s, write_s, strict=True)]
    cold, table_s, write_s, total = total[0], table_s[1:], write_s[1:], total[1:]
    return {
        "sequences": len(order.domains),
        "file_mb": size / MB,
        "temp_dir": str(Path(tmp_dir).parent),
        "table_median_s": statistics.median(table_s),
        "write_median_s": statistics.median(write_s),
        "median_s": statistics.median(total),
        "min_s": min(total),
        "cold_s": cold,
        "times_s": total,
    }


# --- parent: machine info, subprocesses, table, JSON ------------------------------------------


def source_hashes() -> dict[str, str]:
    """sha256 (12 hex) of the measured source files, to tie figures to a code version."""
    files = ["build.py", "schedules.py", "stream_file.py"]
    base = ROOT / "src" / "curriculab" / "streams"
    return {f: hashlib.sha256((base / f).read_bytes()).hexdigest()[:12] for f in files}


def run_child(name: str, args: argparse.Namespace, arrow: bool) -> dict[str, Any]:
    """Run one case in a fresh interpreter; its result is the last line of its stdout.

    Linux starts a child's ru_maxrss at the parent's high-water mark (getrusage takes the max
    with the mark inherited at exec), so the parent must stay smaller than a child's baseline:
    it imports neither numpy nor pyarrow.
    """
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--one",
        name,
        "--sequences",
        str(args.sequences),
        "--repeats",
        str(args.repeats),
    ]
    if arrow:
        cmd.append("--arrow")
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"case {name!r} failed (exit {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def table(results: list[dict[str, Any]]) -> str:
    head = (
        f"| {'case':<18} | {'budget':<12} | {'sequences':>9} | {'median s':>8} | {'min s':>6} | "
        f"{'cold s':>6} | {'RSS Δ MB':>8} | {'RSS peak MB':>11} | {'tracemalloc MB':>14} | pass |"
    )
    rule = "|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|"
    rows = [head, rule]
    for r in results:
        verdict = "yes" if r["pass"] else "NO"
        rows.append(
            f"| {r['case']:<18} | {r['budget']:<12} | {r['sequences']:>9,} | "
            f"{r['median_s']:>8.3f} | {r['min_s']:>6.3f} | {r['cold_s']:>6.3f} | "
            f"{r['peak_rss_delta_mb']:>8.1f} | {r['peak_rss_mb']:>11.1f} | "
            f"{r['tracemalloc_peak_mb']:>14.1f} | {verdict:<4} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sequences", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "streams.json")
    parser.add_argument("--cases", nargs="+", help="run only these cases (default: all)")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # child mode: one case, JSON on stdout
    parser.add_argument("--arrow", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    all_cases = cases(args.sequences)
    if args.one:
        result = run_one(args.one, all_cases[args.one], args.repeats, args.arrow)
        print(json.dumps(result))
        return

    selected = args.cases or list(all_cases)
    unknown = sorted(set(selected) - set(all_cases))
    if unknown:
        parser.error(f"unknown cases {unknown}; expected some of {list(all_cases)}")

    machine = machine_info()
    print(f"machine: {machine_line(machine)}", flush=True)
    results = []
    for name in selected:
        results.append(run_child(name, args, arrow=name == ARROW_CASE))
        r = results[-1]
        print(
            f"  {name}: {r['sequences']:,} sequences, median {r['median_s']:.3f} s, "
            f"RSS Δ {r['peak_rss_delta_mb']:.1f} MB, tracemalloc {r['tracemalloc_peak_mb']:.1f} MB",
            flush=True,
        )

    print()
    print(table(results))
    arrow = next((r["arrow"] | {"case": r["case"]} for r in results if "arrow" in r), None)
    if arrow:
        print(
            f"\nArrow write ({arrow['case']}, {arrow['sequences']:,} rows, "
            f"{arrow['file_mb']:.1f} MB file in {arrow['temp_dir']}): "
            f"median {arrow['median_s']:.3f} s "
            f"(stream_table {arrow['table_median_s']:.3f} s + write_arrow "
            f"{arrow['write_median_s']:.3f} s), min {arrow['min_s']:.3f} s, "
            f"cold {arrow['cold_s']:.3f} s"
        )
    failing = [r["case"] for r in results if not r["pass"]]
    print(f"\nover the limits ({TIME_LIMIT_S:g} s, {MEMORY_LIMIT_MB:g} MB): {failing or 'none'}")

    payload = {
        "benchmark": "streams.build_order",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": shlex.join([sys.executable, *sys.argv]),
        "cwd": os.getcwd(),
        "machine": machine,
        "machine_line": machine_line(machine),
        "source_sha256": source_hashes(),
        "limits": {"time_s": TIME_LIMIT_S, "memory_mb": MEMORY_LIMIT_MB},
        "settings": {"sequences": args.sequences, "repeats": args.repeats, "seed": 0},
        "metrics": {
            "median_s, min_s": "wall seconds (time.perf_counter) of build_order over the "
            "warm repeats in one process",
            "cold_s": "the first build in a fresh process (as a Snakemake job runs it)",
            "peak_rss_delta_mb": "growth of ru_maxrss (resident high-water mark) across the "
            "first build in a fresh process; the mark is first reset to the current RSS "
            "(/proc/self/clear_refs) so the imports' transient peak cannot hide the build's",
            "vmhwm_delta_mb": "the same growth read from /proc/self/status VmHWM (cross-check; "
            "immune to the parent's inherited ru_maxrss)",
            "peak_rss_mb": "absolute ru_maxrss after that build (interpreter, numpy and "
            "curriculab imports included)",
            "tracemalloc_peak_mb": "tracemalloc peak during one build: numpy buffers and "
            "Python objects allocated by it, result arrays included",
            "pass": "median_s <= time_s and both memory figures <= memory_mb",
        },
        "results": results,
        "arrow_write": arrow,
        "over_limits": failing,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
