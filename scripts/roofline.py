"""Roofline of the ``fast`` CPU generator: where the time goes, stage by stage, against this
machine's limits.

In one run: the fp32 and bf16 matrix-multiply peaks (GFLOP/s, the best of ``torch.mm`` and two
large channels-last convolutions) and the memory bandwidth (a large copy, GB/s); then, for each
preset and precision, each stage of the ``fast`` generator (``conv_pre``, every upsampling
layer, every multi-receptive-field fusion with ``conv_post`` in the last one; its kernel is
oneDNN's or our narrow-stage one) timed inside a
whole forward pass, with its FLOPs (multiply-adds x 2 of its convolutions) and its least memory
traffic (input, output and weights once: what tiling aims at). A stage's limit is the larger of
FLOPs / peak (compute-bound) and bytes / bandwidth (memory-bound); the table gives the share of
that limit the stage reaches.

    python scripts/roofline.py --preset v1 v2 v3 --precision fp32 bf16 --seconds 10 --threads 2

Figures are only meaningful on an otherwise idle machine (check ``uptime``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import defaultdict
from collections.abc import Callable

import torch
import torch.nn.functional as F

from hifigan.allocator import keep_freed_memory
from hifigan.config import HiFiGANConfig
from hifigan.generator import Generator
from hifigan.inference.fast import FastGenerator, default_reduced_stages

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
ELEMENT_BYTES = {torch.float32: 4, torch.bfloat16: 2}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", nargs="+", default=["v1", "v2", "v3"])
    p.add_argument("--precision", nargs="+", default=["fp32", "bf16"], choices=list(DTYPES))
    p.add_argument("--seconds", type=float, default=10.0, help="audio per forward pass")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--json", default=None, help="also write the figures to this file")
    return p.parse_args()


def best_over(fn: Callable[[], object], seconds: float) -> float:
    """Fastest call of ``fn`` over at least ``seconds`` of calls (the clock settles first)."""
    fn()
    best, start = float("inf"), time.perf_counter()
    while time.perf_counter() - start < seconds:
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def machine_limits(seconds: float = 1.0) -> dict[str, float]:
    """fp32 / bf16 matrix-multiply peaks (GFLOP/s) and copy bandwidth (GB/s, read + write).

    A peak is the best of ``torch.mm`` and two large channels-last convolutions (the fast
    generator's own layout): torch hands fp32 ``mm`` to MKL, which on some AMD processors takes
    a path at half of what oneDNN's convolutions reach, so ``mm`` alone would put stages above
    100% of the limit.
    """
    n, t = 2048, 8192
    limits = {}
    for name, dtype in DTYPES.items():
        a, b = torch.rand(n, n).to(dtype), torch.rand(n, n).to(dtype)
        best = 2 * n**3 / best_over(lambda a=a, b=b: torch.mm(a, b), seconds)
        for c, k in ((512, 3), (256, 7)):  # shapes of the generators' own convolutions
            x = torch.rand(1, c, 1, t).to(dtype).contiguous(memory_format=torch.channels_last)
            w = torch.rand(c, c, 1, k).to(dtype).contiguous(memory_format=torch.channels_last)
            conv = best_over(lambda x=x, w=w, k=k: F.conv2d(x, w, padding=(0, k // 2)), seconds)
            best = max(best, 2 * c * c * k * t / conv)
        limits[f"{name}_gflops"] = best / 1e9
    src, dst = torch.rand(64 * 2**20), torch.empty(64 * 2**20)  # 256 MB each
    limits["bandwidth_gbs"] = 2 * src.numel() * 4 / best_over(lambda: dst.copy_(src), seconds) / 1e9
    return limits


def conv_flops(conv, t_out: int) -> float:
    """2 x multiply-adds of one ``_Conv`` producing ``t_out`` positions per batch item."""
    w = conv.weight  # (out, in, 1, k); transposed: (in, out, 1, k) at the input rate
    k = w.shape[-1]
    if conv.transposed:
        return 2.0 * w.shape[0] * w.shape[1] * k * t_out / conv.stride[1]
    return 2.0 * w.shape[0] * w.shape[1] * k * t_out


def stage_costs(fast: FastGenerator, frames: int) -> list[dict]:
    """Per stage: name, dtype, FLOPs and least bytes (input + output + weights)."""
    costs = []
    c_pre = fast.conv_pre.weight
    el = ELEMENT_BYTES[fast.stage_dtypes[0]]
    costs.append(
        {
            "stage": "conv_pre",
            "dtype": fast.stage_dtypes[0],
            "kernel": "oneDNN",
            "flops": conv_flops(fast.conv_pre, frames),
            "bytes": el * (c_pre.shape[1] * frames + c_pre.shape[0] * frames + c_pre.numel()),
        }
    )
    t = frames
    for i, up in enumerate(fast.ups):
        dtype, el = fast.stage_dtypes[i], ELEMENT_BYTES[fast.stage_dtypes[i]]
        c_in, c_out = up.weight.shape[0], up.weight.shape[1]
        t_out = t * up.stride[1]
        weights = up.weight.numel()
        costs.append(
            {
                "stage": f"ups.{i}",
                "dtype": dtype,
                "kernel": "oneDNN",
                "flops": conv_flops(up, t_out),
                "bytes": el * (c_in * t + c_out * t_out + weights),
            }
        )
        flops = sum(conv_flops(c, t_out) for block in fast._stage_blocks(i) for c in block)
        weights = sum(c.weight.numel() for block in fast._stage_blocks(i) for c in block)
        out_bytes = el * c_out * t_out
        if i == len(fast.ups) - 1:
            flops += conv_flops(fast.conv_post, t_out)
            out_bytes = 4 * t_out
        costs.append(
            {
                "stage": f"mrf.{i}" + (" + conv_post" if i == len(fast.ups) - 1 else ""),
                "dtype": dtype,
                "kernel": "ours" if fast.narrow[i] is not None else "oneDNN",
                "flops": flops,
                "bytes": el * (c_out * t_out + weights) + out_bytes,
            }
        )
        t = t_out
    return costs


def time_stages(fast: FastGenerator, mel: torch.Tensor, repeats: int) -> list[float]:
    """Median seconds of each stage (in :func:`stage_costs`' order) within whole passes."""
    seconds: dict[str, list[float]] = defaultdict(list)

    def timed(fn: Callable, key: Callable[..., str]) -> Callable:
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            out = fn(*args, **kwargs)
            seconds[key(*args)].append(time.perf_counter() - start)
            return out

        return wrapper

    fast.conv_pre.forward = timed(fast.conv_pre.forward, lambda *a: "conv_pre")
    for i, up in enumerate(fast.ups):
        up.forward = timed(up.forward, lambda *a, i=i: f"ups.{i}")
    fast._run_stage = timed(fast._run_stage, lambda stage, *a: f"mrf.{stage}")
    with torch.inference_mode():
        fast(mel)
        seconds.clear()
        for _ in range(repeats):
            fast(mel)
    keys = ["conv_pre"] + [k for i in range(len(fast.ups)) for k in (f"ups.{i}", f"mrf.{i}")]
    return [statistics.median(seconds[k]) for k in keys]


def roofline(preset: str, precision: str, limits: dict, args: argparse.Namespace) -> list[dict]:
    config = HiFiGANConfig.preset(preset)
    torch.manual_seed(0)
    generator = Generator.from_config(config)
    reduced = default_reduced_stages(generator) if precision == "bf16" else 0
    fast = FastGenerator(generator, reduced_stages=reduced, reduced_dtype=torch.bfloat16)
    frames = round(args.seconds * config.mel.sample_rate / config.mel.hop_length)
    mel = -6.0 + 2.0 * torch.rand(1, config.mel.n_mels, frames)
    rows = []
    for cost, seconds in zip(stage_costs(fast, frames), time_stages(fast, mel, args.repeats)):
        peak = limits["bf16_gflops" if cost["dtype"] == torch.bfloat16 else "fp32_gflops"]
        compute, memory = (
            cost["flops"] / (peak * 1e9),
            cost["bytes"] / (limits["bandwidth_gbs"] * 1e9),
        )
        rows.append(
            {
                "model": preset,
                "precision": precision,
                "stage": cost["stage"],
                "dtype": "bf16" if cost["dtype"] == torch.bfloat16 else "fp32",
                "kernel": cost["kernel"],
                "ms": 1000 * seconds,
                "gflop": cost["flops"] / 1e9,
                "mb": cost["bytes"] / 1e6,
                "gflops": cost["flops"] / seconds / 1e9,
                "bound": "compute" if compute >= memory else "memory",
                "of_limit": max(compute, memory) / seconds,
            }
        )
    return rows


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    keep_freed_memory()  # as every CPU Vocoder does
    limits = machine_limits()
    print(
        f"threads {args.threads}: fp32 peak {limits['fp32_gflops']:.0f} GFLOP/s, bf16 peak "
        f"{limits['bf16_gflops']:.0f} GFLOP/s, copy bandwidth {limits['bandwidth_gbs']:.1f} GB/s"
    )
    print(f"{args.seconds:g} s of audio per pass, batch 1; median of {args.repeats} passes")
    print(
        "| model | precision | stage | dtype | kernel | ms | GFLOP | MB | GFLOP/s | bound "
        "| of limit |"
    )
    print("|---|---|---|---|---|---:|---:|---:|---:|---|---:|")
    everything = []
    for preset in args.preset:
        for precision in args.precision:
            rows = roofline(preset, precision, limits, args)
            total_ms = sum(r["ms"] for r in rows)
            total_gflop = sum(r["gflop"] for r in rows)
            for r in rows:
                print(
                    f"| {r['model']} | {r['precision']} | {r['stage']} | {r['dtype']} | "
                    f"{r['kernel']} | "
                    f"{r['ms']:.1f} | {r['gflop']:.2f} | {r['mb']:.1f} | {r['gflops']:.0f} | "
                    f"{r['bound']} | {100 * r['of_limit']:.0f}% |"
                )
            print(
                f"| {preset} | {precision} | **total** | | | {total_ms:.1f} | "
                f"{total_gflop:.2f} | | {total_gflop / total_ms * 1000:.0f} | | |"
            )
            everything.extend(rows)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"limits": limits, "threads": args.threads, "rows": everything}, f, indent=1)


if __name__ == "__main__":
    main()
