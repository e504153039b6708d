"""Is a batched synthesis cheaper than the same mels one by one? In one process, alternating.

For mels of 1, 2 and 6.5 s (``--frames``) and batches of 2, 4 and 8, times ``vocoder(list)``
against ``[vocoder([mel]) for mel in list]``, best of ``--repeats`` each; the input of
choosing ``hifigan serve --max-batch-seconds``.

    python scripts/bench_batching.py --model ../shared/reference/official_lj_v2/generator_v2
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from hifigan import Vocoder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="a built-in name or checkpoint path")
    ap.add_argument("--backend", default="eager")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--frames", type=int, nargs="+", default=[86, 172, 560])
    ap.add_argument("--sizes", type=int, nargs="+", default=[2, 4, 8])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    vocoder = Vocoder.from_pretrained(args.model, backend=args.backend)
    rng = np.random.default_rng(0)
    seconds_per_frame = vocoder.hop_length / vocoder.sample_rate
    for frames in args.frames:
        for size in args.sizes:
            mels = [
                (rng.standard_normal((vocoder.n_mels, frames)) * 1.5 - 5.0).astype(np.float32)
                for _ in range(size)
            ]
            vocoder(mels[:1], check=False)  # warm-up
            single, batched = [], []
            for _ in range(args.repeats):
                start = time.perf_counter()
                for mel in mels:
                    vocoder([mel], check=False)
                single.append(time.perf_counter() - start)
                start = time.perf_counter()
                vocoder(mels, check=False)
                batched.append(time.perf_counter() - start)
            print(
                f"{size} x {frames * seconds_per_frame:.1f} s: one by one {min(single):.3f} s, "
                f"batched {min(batched):.3f} s, batching {min(single) / min(batched):.2f}x"
            )


if __name__ == "__main__":
    main()
