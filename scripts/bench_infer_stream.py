"""Streaming: exactness against offline synthesis, algorithmic latency and compute per chunk.

For each model and chunk size, the mel of ``--seconds`` of audio is pushed through
``Vocoder.streamer()`` chunk by chunk; every push is timed. Reported: the largest difference of
the concatenated stream from offline synthesis (must be < 1e-4), the latency (frames held back x
hop / sample rate), the median and 95th-percentile compute time per chunk, and the real-time
factor of streaming (audio duration / total compute).

    python scripts/bench_infer_stream.py                              # V1 V2 V3, chunks 1 7 32
    python scripts/bench_infer_stream.py --models v2 --backend fast --chunks 1 4 16 64
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from infer_common import add_json_argument, load_model, write_json

from hifigan import Vocoder
from hifigan.inference.benchmark import bench_mel


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--models", nargs="+", default=["v1", "v2", "v3"])
    ap.add_argument("--backend", default="eager", help="eager, fast, compiled or onnx")
    ap.add_argument("--chunks", nargs="+", type=int, default=[1, 7, 32])
    ap.add_argument("--seconds", type=float, default=4.0, help="audio per stream (default 4)")
    ap.add_argument("--threads", type=int, default=2)
    add_json_argument(ap)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    print(
        f"{'model':6} {'chunk':>5} {'max |diff|':>10} {'latency':>14} {'chunk audio':>11} "
        f"{'compute/chunk median':>20} {'p95':>8} {'x real time':>11}"
    )
    for name in args.models:
        generator, config, _ = load_model(name)
        vocoder = Vocoder(generator, config, backend=args.backend)
        mel = bench_mel(config, seconds=args.seconds)[0]
        offline = vocoder(mel)
        hop_length, rate = vocoder.hop_length, vocoder.sample_rate
        for chunk in args.chunks:
            stream = vocoder.streamer()
            pieces, seconds = [], []
            for start in range(0, mel.shape[1], chunk):
                t0 = time.perf_counter()
                pieces.append(stream.push(mel[:, start : start + chunk]))
                seconds.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            pieces.append(stream.finish())
            finish = time.perf_counter() - t0
            audio = torch.cat(pieces, dim=1)[0]
            diff = (audio - offline).abs().max().item()
            ms = np.array(seconds) * 1000
            row = {
                "model": name,
                "backend": args.backend,
                "chunk_frames": chunk,
                "max_abs_diff": diff,
                "latency_frames": vocoder.latency_frames,
                "latency_ms": 1000 * vocoder.latency_seconds,
                "chunk_audio_ms": 1000 * chunk * hop_length / rate,
                "compute_ms_median": float(np.median(ms)),
                "compute_ms_p95": float(np.percentile(ms, 95)),
                "x_realtime": (mel.shape[1] * hop_length / rate) / (sum(seconds) + finish),
            }
            rows.append(row)
            print(
                f"{name:6} {chunk:5d} {diff:10.2e} "
                f"{row['latency_frames']:3d} fr {row['latency_ms']:5.0f} ms "
                f"{row['chunk_audio_ms']:8.1f} ms {row['compute_ms_median']:17.1f} ms "
                f"{row['compute_ms_p95']:5.1f} ms {row['x_realtime']:11.2f}"
            )
    print(
        f"\nbackend {args.backend}, {args.threads} threads, {args.seconds:g} s of audio per stream"
    )
    write_json(args.json, rows)


if __name__ == "__main__":
    main()
