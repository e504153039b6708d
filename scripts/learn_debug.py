"""Learning on real speech: the ``debug`` preset on 40 training clips of Kathleen, validated on
5 held-out clips, for 300 steps on the CPU. Prints the validation mel-L1 curve, the drop from
step 0 and the wall time of the whole run (data preparation and validations included).

    python scripts/learn_debug.py --threads 2

Target: the validation mel L1 falls by at least 30% within 300 steps, and the run
takes under 6 minutes on 2 quiet CPU cores. Exits with status 1 when either is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHARED = Path(os.environ.get("HIFIGAN_SHARED", Path(__file__).resolve().parents[2] / "shared"))
KATHLEEN = SHARED / "data" / "kathleen"


def pick(lines: list[str], n: int) -> list[str]:
    """``n`` lines spread evenly over the list (the filelists hold several takes per prompt)."""
    step = len(lines) / n
    return [lines[int(i * step)] for i in range(n)]


def write_lists(folder: Path, n_train: int, n_val: int) -> tuple[Path, Path]:
    """Filelists with ``n_train`` clips of Kathleen's train.txt and ``n_val`` of eval.txt
    (also used by ``tests/train/test_learning.py``)."""
    lists = []
    for name, n in (("train.txt", n_train), ("eval.txt", n_val)):
        lines = [x for x in (KATHLEEN / name).read_text().splitlines() if x.strip()]
        path = folder / name
        path.write_text("\n".join(pick(lines, n)) + "\n")
        lists.append(path)
    return lists[0], lists[1]


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--train-clips", type=int, default=40)
    ap.add_argument("--val-clips", type=int, default=5)
    ap.add_argument("--config", default="debug")
    ap.add_argument("--out", type=Path, default=None, help="run folder (default: temporary)")
    ap.add_argument("extra", nargs="*", help="more options for hifigan train (after --)")
    args = ap.parse_args()
    if not KATHLEEN.is_dir():
        print(f"{KATHLEEN} is absent (set HIFIGAN_SHARED)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        train_list, val_list = write_lists(Path(tmp), args.train_clips, args.val_clips)
        out = args.out or Path(tmp) / "run"
        cmd = [
            sys.executable, "-m", "hifigan", "train",
            "--config", args.config,
            "--data", str(KATHLEEN),
            "--train-list", str(train_list),
            "--val-list", str(val_list),
            "--out", str(out),
            "--max-steps", str(args.steps),
            "--threads", str(args.threads),
            "--device", "cpu",
            "--no-progress",
            *args.extra,
        ]  # fmt: skip
        print(" ".join(cmd), flush=True)
        start = time.perf_counter()
        subprocess.run(cmd, check=True)
        wall = time.perf_counter() - start
        records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    print("\nstep  val_mel_l1")
    for r in records:
        print(f"{r['step']:4d}  {r['val_mel_l1']:.4f}")
    first, best = records[0]["val_mel_l1"], min(r["val_mel_l1"] for r in records)
    last = records[-1]["val_mel_l1"]
    drop = 1 - best / first
    print(
        f"\nval mel L1: step 0 {first:.4f}, step {records[-1]['step']} {last:.4f}, best {best:.4f} "
        f"(drop {100 * drop:.1f}%, final drop {100 * (1 - last / first):.1f}%)"
    )
    print(
        f"wall time {wall:.0f} s for {args.steps} steps ({args.threads} threads, "
        f"{args.train_clips} train / {args.val_clips} validation clips)"
    )
    ok = drop >= 0.30 and wall < 360
    print("target (>= 30% drop, < 6 min):", "met" if ok else "MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
