"""Speed of the inference backends against eager fp32, as ratios measured in one run.

For each model, every backend/precision is called once per repeat, round-robin, on the same
mel (``--seconds`` of audio, batch 1, ``--threads`` threads); the reported ratio is the median
over repeats of ``eager time / backend time`` within the same repeat, which cancels most of a
shared machine's load drift. Targets (2 threads, 10 s): fast fp32 >= 1.15x (V1),
1.6x (V2), 2.0x (V3); bf16 >= 1.9x (V1), 2.8x (V3).

    python scripts/bench_infer_speed.py                        # V1 V2 V3, eager/fast/bf16
    python scripts/bench_infer_speed.py --models v3 --cases fast:fp32 compiled:fp32 onnx:fp32
    python scripts/bench_infer_speed.py --json out.json
"""

from __future__ import annotations

import argparse
import os
import statistics

import torch
from infer_common import add_json_argument, load_model, write_json

from hifigan.inference.benchmark import BenchCase, run_benchmark

TARGETS = {
    ("v1", "fast", "fp32"): 1.15,
    ("v2", "fast", "fp32"): 1.6,
    ("v3", "fast", "fp32"): 2.0,
    ("v1", "fast", "bf16"): 1.9,
    ("v3", "fast", "bf16"): 2.8,
}


def speedups(name: str, cases: list[tuple[str, str]], args: argparse.Namespace) -> list[dict]:
    """Time eager fp32 and ``cases`` for model ``name``; one row per case with its speed-up."""
    generator, config, source = load_model(name)
    timed = run_benchmark(
        {name: (generator, config)},
        [
            BenchCase(name, backend, precision, "cpu", args.threads)
            for backend, precision in [("eager", "fp32"), *cases]
        ],
        seconds=args.seconds,
        repeats=args.repeats,
    )
    by_case = {(r.backend, r.precision): r for r in timed}
    eager = by_case[("eager", "fp32")]
    rows = []
    for backend, precision in cases:
        r = by_case.get((backend, precision))
        if r is None:
            continue
        ratios = [e / t for e, t in zip(eager.times, r.times)]
        rows.append(
            {
                "model": name,
                "weights": source,
                "backend": backend,
                "precision": precision,
                "eager_x_realtime": eager.x_realtime,
                "x_realtime": r.x_realtime,
                "speedup_median": statistics.median(ratios),
                "speedup_min": min(ratios),
                "speedup_max": max(ratios),
                "target": TARGETS.get((name, backend, precision)),
            }
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--models", nargs="+", default=["v1", "v2", "v3"])
    ap.add_argument(
        "--cases",
        nargs="+",
        default=["fast:fp32", "fast:bf16"],
        help="backend:precision pairs compared with eager:fp32",
    )
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=7)
    add_json_argument(ap)
    args = ap.parse_args()

    cases = [tuple(c.split(":")) for c in args.cases]
    load_before = os.getloadavg()[0]
    rows = [row for name in args.models for row in speedups(name, cases, args)]
    load_after = os.getloadavg()[0]
    print(
        f"{'model':6} {'case':12} {'eager xRT':>9} {'xRT':>7} {'speedup':>8} "
        f"{'(min-max)':>13} {'target':>7}"
    )
    for row in rows:
        target = f"{row['target']:.2f}" if row["target"] else "-"
        print(
            f"{row['model']:6} {row['backend'] + ':' + row['precision']:12} "
            f"{row['eager_x_realtime']:9.2f} {row['x_realtime']:7.2f} "
            f"{row['speedup_median']:7.2f}x ({row['speedup_min']:.2f}-{row['speedup_max']:.2f})"
            f" {target:>7}"
        )
    print(
        f"\n{args.seconds:g} s of audio, batch 1, {args.threads} threads, median of "
        f"{args.repeats} alternating repeats; torch {torch.__version__}; "
        f"load average {load_before:.2f} before, {load_after:.2f} after"
    )
    write_json(args.json, rows)


if __name__ == "__main__":
    main()
