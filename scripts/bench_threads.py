"""The thread rule on a busy machine: ``hifigan.auto_threads()`` against a fixed count.

For each condition (nothing else running; ``--busy`` cores kept busy by ``yes``), the rule's
thread count and the fixed ``--threads`` alternate in one process over ``--rounds`` rounds;
V2 and V3 with random weights, eager and fast, ``--seconds`` of audio, batch 1. Prints the
median x real time of each.

    python scripts/bench_threads.py --threads 2 --busy 1
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time

import torch

from hifigan import Vocoder, auto_threads
from hifigan.config import HiFiGANConfig
from hifigan.generator import Generator


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2, help="the fixed count to compare with")
    ap.add_argument("--busy", type=int, default=1, help="cores to keep busy in the second run")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    torch.manual_seed(0)
    vocoders = {}
    for preset in ("v2", "v3"):
        config = HiFiGANConfig.preset(preset)
        frames = round(args.seconds * config.mel.sample_rate / config.mel.hop_length)
        mel = -6.0 + 2.0 * torch.rand(config.mel.n_mels, frames)
        for backend in ("eager", "fast"):
            vocoder = Vocoder(Generator.from_config(config), config, backend=backend)
            vocoders[f"{preset} {backend}"] = (vocoder, mel)
    for busy in (0, args.busy):
        hogs = [subprocess.Popen(["yes"], stdout=subprocess.DEVNULL) for _ in range(busy)]
        try:
            time.sleep(1.0)
            rule = auto_threads()
            speeds: dict[tuple[str, str], list[float]] = {}
            for r in range(args.rounds):
                arms = [("fixed", args.threads), ("rule", rule)]
                for arm, threads in arms if r % 2 == 0 else arms[::-1]:
                    torch.set_num_threads(threads)
                    for name, (vocoder, mel) in vocoders.items():
                        vocoder(mel, check=False)  # warm-up at this thread count
                        start = time.perf_counter()
                        vocoder(mel, check=False)
                        speed = args.seconds / (time.perf_counter() - start)
                        speeds.setdefault((name, arm), []).append(speed)
        finally:
            for hog in hogs:
                hog.kill()
        print(f"{busy} core(s) busy: auto_threads() = {rule}")
        for name in vocoders:
            fixed = statistics.median(speeds[(name, "fixed")])
            chosen = statistics.median(speeds[(name, "rule")])
            print(
                f"  {name:9s} {args.threads} threads {fixed:6.1f}x RT   "
                f"rule ({rule}) {chosen:6.1f}x RT"
            )


if __name__ == "__main__":
    main()
