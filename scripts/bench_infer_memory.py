"""Peak memory of long-input synthesis: blocked (the default) against one unchunked call.

Each variant runs in a fresh Python process that loads V1, builds the mel of ``--minutes`` of
audio, synthesizes it and reports its own peak RSS (``getrusage(RUSAGE_SELF).ru_maxrss``); a
``setup`` process that stops before synthesis shows the fixed cost (torch, model, mel, output).
The blocked outputs are compared with the unchunked one (must agree within 1e-4).

    python scripts/bench_infer_memory.py                    # 2 minutes (unchunked V1 ~2 GB)
    python scripts/bench_infer_memory.py --minutes 10       # 10 minutes: unchunked
                                                            # needs ~10 GB and ~4 min at 2.8x RT
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from infer_common import add_json_argument, load_model, write_json

VARIANTS = {
    "setup": {},
    "eager unchunked": {"backend": "eager", "block_frames": 10**9},
    "eager blocks (default)": {"backend": "eager"},
    "fast blocks (default)": {"backend": "fast"},
}


def child(variant: str, minutes: float, threads: int, out: str) -> None:
    import torch

    from hifigan import Vocoder
    from hifigan.inference.benchmark import bench_mel

    torch.set_num_threads(threads)
    generator, config, _ = load_model("v1")
    mel = bench_mel(config, seconds=60 * minutes)[0]
    start = time.perf_counter()
    if variant != "setup":
        audio = Vocoder(generator, config, **VARIANTS[variant])(mel)
        np.save(out, audio.numpy())
    seconds = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"peak_rss_mb": peak_kib / 1024, "seconds": seconds}))


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--minutes", type=float, default=2.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", default=None, help=argparse.SUPPRESS)
    add_json_argument(ap)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.minutes, args.threads, args.out)
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        outputs = {}
        for variant in args.variants:
            out = str(Path(tmp) / f"{len(outputs)}.npy")
            cmd = [sys.executable, __file__, "--child", variant, "--out", out]
            cmd += ["--minutes", str(args.minutes), "--threads", str(args.threads)]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                print(f"{variant}: failed (exit {done.returncode})\n{done.stderr[-2000:]}")
                continue
            result = json.loads(done.stdout.strip().splitlines()[-1])
            if variant != "setup":
                outputs[variant] = out
            rows.append({"variant": variant, "minutes": args.minutes, **result})
        reference = outputs.get("eager unchunked")
        for row in rows:
            path = outputs.get(row["variant"])
            if reference and path and path != reference:
                row["max_abs_diff_vs_unchunked"] = float(
                    np.abs(np.load(path) - np.load(reference)).max()
                )
    print(f"V1, {args.minutes:g} min of audio, {args.threads} threads, one process per variant")
    print(f"{'variant':24} {'peak RSS':>10} {'synthesis':>10} {'max |diff|':>11}")
    for row in rows:
        diff = row.get("max_abs_diff_vs_unchunked")
        print(
            f"{row['variant']:24} {row['peak_rss_mb']:7.0f} MB {row['seconds']:8.1f} s "
            f"{'' if diff is None else f'{diff:11.1e}'}"
        )
    write_json(args.json, rows)


if __name__ == "__main__":
    main()
