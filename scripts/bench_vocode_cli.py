"""Wall time of ``hifigan vocode`` for one clip with several checkpoints, alternating.

Each repeat runs every model once, in turn, as a fresh process (model loading, mel and
synthesis included), and the median per model is printed.

    python scripts/bench_vocode_cli.py --threads 2 --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hifigan.pretrained import get_model, weight_file

SHARED = Path(__file__).resolve().parents[2] / "shared"


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--clip", type=Path, default=SHARED / "data/ljspeech/wavs/LJ001-0001.flac")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()

    models = {"LJ_V2": [str(SHARED / "reference/official_lj_v2/generator_v2")]}
    lj_v1 = weight_file(get_model("lj-v1"))
    if lj_v1 is not None and lj_v1.is_file():
        models["LJ_V1"] = [str(lj_v1), "--config", "v1"]
    times: dict[str, list[float]] = {name: [] for name in models}
    with tempfile.TemporaryDirectory() as out:
        for _ in range(args.repeats):
            for name, model in models.items():
                cmd = [
                    sys.executable,
                    "-m",
                    "hifigan",
                    "vocode",
                    str(args.clip),
                    "-o",
                    out,
                    "--overwrite",  # every run writes the same file
                    "--threads",
                    str(args.threads),
                    "--checkpoint",
                    *model,
                ]
                start = time.perf_counter()
                subprocess.run(cmd, check=True, capture_output=True)
                times[name].append(time.perf_counter() - start)
    for name, t in times.items():
        print(
            f"{name}: median {statistics.median(t):.2f} s over {len(t)} runs "
            f"(min {min(t):.2f}, max {max(t):.2f}), threads={args.threads}, clip={args.clip.name}"
        )


if __name__ == "__main__":
    main()
