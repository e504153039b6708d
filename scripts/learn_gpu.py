"""Train V1 on Kathleen for a fixed wall time in each precision (bf16, then fp32) and report
steps/s and the validation mel-L1 curve of each.

Each run is ``hifigan train`` stopped by SIGINT after ``--minutes`` (it writes a checkpoint and
exits); steps/s is the run's steps over its training seconds (validation excluded).

    python scripts/learn_gpu.py --minutes 10                     # V1, batch 16, on cuda
    python scripts/learn_gpu.py --config debug --device cpu --minutes 1 --val-interval 20

For an alternating, like-for-like steps/s ratio, use
``python scripts/bench_train.py --device cuda --batch 16 --paths ours,ours-bf16``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

SHARED = Path(os.environ.get("HIFIGAN_SHARED", Path(__file__).resolve().parents[2] / "shared"))


def run(args: argparse.Namespace, precision: str, out: Path) -> dict:
    cmd = [
        sys.executable, "-m", "hifigan", "train",
        "--config", args.config,
        "--data", str(SHARED / "data" / "kathleen"),
        "--out", str(out),
        "--device", args.device,
        "--precision", precision,
        "--val-interval", str(args.val_interval),
        "--val-clips", str(args.val_clips),
        "--num-workers", str(args.num_workers),
        "--no-progress",
    ]  # fmt: skip
    print(" ".join(cmd), flush=True)
    proc = subprocess.Popen(cmd)
    try:
        proc.wait(timeout=args.minutes * 60)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)  # a checkpoint, then exit
        proc.wait()
    import torch

    latest = sorted((out / "checkpoints").glob("step_*.pt"))[-1]
    state = torch.load(latest, map_location="cpu", weights_only=True)["state"]
    curve = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    return {
        "steps": state["step"],
        "steps_per_s": state["step"] / state["train_seconds"],
        "curve": [(r["step"], r["val_mel_l1"]) for r in curve],
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--config", default="v1")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--precisions", default="bf16,fp32")
    ap.add_argument("--val-interval", type=int, default=500)
    ap.add_argument("--val-clips", type=int, default=20)
    ap.add_argument("--num-workers", type=int, default=4)
    args = ap.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for precision in args.precisions.split(","):
            results[precision] = run(args, precision, Path(tmp) / precision)
    for precision, r in results.items():
        print(f"\n{precision}: {r['steps']} steps, {r['steps_per_s']:.2f} steps/s")
        for step, val in r["curve"]:
            print(f"  step {step:6d}  val_mel_l1 {val:.4f}")
    if {"bf16", "fp32"} <= set(results):
        ratio = results["bf16"]["steps_per_s"] / results["fp32"]["steps_per_s"]
        print(f"\nbf16 / fp32 steps/s: x{ratio:.2f} ({args.config}, {args.device})")


if __name__ == "__main__":
    main()
