"""The small-channel convolutions of V2's last two stages (16 and 8 channels), one layer at a
time, forward only, float32, in formulations that compute the same function:

* ``cl2d``: a ``(1, k)`` 2-D convolution on channels-last ``(B, C, 1, T)``, as ``fast`` runs it;
* ``nchw2d``: the same 2-D convolution on contiguous ``(B, C, 1, T)``;
* ``ncw``: ``F.conv1d`` on contiguous ``(B, C, T)``;
* ``taps``: one matrix product per tap on contiguous ``(C, T)`` rows: a time shift is a view,
  so each tap is ``out += W_k @ x[:, shift_k]`` without copying the input.

Each layer runs on one tile of the length ``FastGenerator`` uses for that channel count. Checks
that the formulations agree, alternates them in rounds and prints the median time per layer and
GFLOP/s.

    python scripts/bench_small_channels.py --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch import Tensor

from hifigan.inference.fast import TILE_ELEMENTS


def cl2d(x: Tensor, w: Tensor, d: int) -> Tensor:
    return F.conv2d(x, w, None, 1, (0, d * (w.shape[-1] - 1) // 2), (1, d))


nchw2d = cl2d  # the same call; only the memory layout of its inputs differs (see ``inputs``)


def ncw(x: Tensor, w: Tensor, d: int) -> Tensor:
    return F.conv1d(x, w, None, 1, d * (w.shape[-1] - 1) // 2, d)


def taps(x: Tensor, w: Tensor, d: int) -> Tensor:
    """``x``: ``(C, T + pad)`` already padded; ``w``: ``(k, C_out, C)``."""
    k = w.shape[0]
    t = x.shape[-1] - d * (k - 1)
    out = torch.mm(w[0], x[:, :t])
    for j in range(1, k):
        out.addmm_(w[j], x[:, j * d : j * d + t])
    return out


def inputs(form: str, x: Tensor, w: Tensor, d: int) -> tuple[Tensor, Tensor]:
    """``x``: ``(1, C, T)``, ``w``: ``(C_out, C, k)`` in the layout ``form`` wants."""
    if form == "cl2d":
        return (
            x.unsqueeze(2).contiguous(memory_format=torch.channels_last),
            w.unsqueeze(2).contiguous(memory_format=torch.channels_last),
        )
    if form == "nchw2d":
        return x.unsqueeze(2).contiguous(), w.unsqueeze(2).contiguous()
    if form == "ncw":
        return x.contiguous(), w.contiguous()
    pad = d * (w.shape[-1] - 1) // 2
    return F.pad(x[0], (pad, pad)).contiguous(), w.permute(2, 0, 1).contiguous()


FORMS = {"cl2d": cl2d, "nchw2d": nchw2d, "ncw": ncw, "taps": taps}


def flatten(y: Tensor) -> Tensor:
    """Any form's output (batch 1) as ``(C, T)``."""
    return y.reshape(-1, y.shape[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--channels", type=int, nargs="+", default=[16, 8])
    parser.add_argument("--kernels", type=int, nargs="+", default=[3, 7, 11])
    parser.add_argument("--dilations", type=int, nargs="+", default=[1, 3, 5])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, threads {args.threads}")
    print("| C | k | d | T | " + " | ".join(f"{f} ms (GFLOP/s)" for f in FORMS) + " |")
    print("|---|---|---|---|" + "---|" * len(FORMS))
    totals = dict.fromkeys(FORMS, 0.0)
    for c in args.channels:
        t = max(1024, TILE_ELEMENTS // c)
        for k in args.kernels:
            for d in args.dilations:
                x = torch.randn(1, c, t)
                w = torch.randn(c, c, k) / (c * k) ** 0.5
                prepared = {f: inputs(f, x, w, d) for f in FORMS}
                ref = flatten(ncw(x, w, d))
                for f, fn in FORMS.items():
                    err = (flatten(fn(*prepared[f], d)) - ref).abs().max().item()
                    assert err < 1e-4, f"{f} differs by {err}"
                times: dict[str, list[float]] = {f: [] for f in FORMS}
                for _ in range(args.rounds):
                    for f, fn in FORMS.items():
                        start = time.perf_counter()
                        for _ in range(5):
                            fn(*prepared[f], d)
                        times[f].append((time.perf_counter() - start) / 5)
                flops = 2 * c * c * k * t
                cells = []
                for f in FORMS:
                    m = statistics.median(times[f])
                    totals[f] += m
                    cells.append(f"{m * 1e3:.3f} ({flops / m / 1e9:.0f})")
                print(f"| {c} | {k} | {d} | {t} | " + " | ".join(cells) + " |")
    print("| total | | | | " + " | ".join(f"{totals[f] * 1e3:.2f}" for f in FORMS) + " |")


if __name__ == "__main__":
    main()
