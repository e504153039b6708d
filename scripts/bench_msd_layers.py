"""The MSD's strided, grouped k=41 convolutions, one layer at a time: forward plus backward
(weight and input gradients) as the discriminator update runs them, in three formulations that
compute the same function:

* ``conv1d``: ``F.conv1d`` with stride and groups, as the model does;
* ``cl2d``: the same as a 2-D convolution over ``(B, C, 1, T)`` in channels-last layout;
* ``phase``: the stride folded into the channels (each of the ``s`` phases of the padded input
  becomes ``C`` more channels, the kernel is split the same way), so that oneDNN runs a
  stride-1 convolution with ``ceil(k / s)`` taps and ``s`` times the input channels.

Alternates the formulations in rounds and prints the median time per layer and GFLOP/s (the
useful FLOPs of the strided convolution, fwd + 2 bwd). Checks first that all three agree.

    python scripts/bench_msd_layers.py --threads 2 --precision bf16 --batch 4
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch import Tensor

from hifigan.discriminators import ScaleDiscriminator


def conv1d(x: Tensor, w: Tensor, stride: int, groups: int) -> Tensor:
    return F.conv1d(x, w, None, stride, (w.shape[-1] - 1) // 2, 1, groups)


def cl2d(x: Tensor, w: Tensor, stride: int, groups: int) -> Tensor:
    x4 = x.unsqueeze(2).contiguous(memory_format=torch.channels_last)
    w4 = w.unsqueeze(2).contiguous(memory_format=torch.channels_last)
    y = F.conv2d(x4, w4, None, (1, stride), (0, (w.shape[-1] - 1) // 2), 1, groups)
    return y.squeeze(2)


def phase(x: Tensor, w: Tensor, stride: int, groups: int) -> Tensor:
    """``conv1d`` with the stride folded into the channels."""
    b, c, t = x.shape
    c_out, c_in_g, k = w.shape
    s, pad = stride, (k - 1) // 2
    t_out = (t + 2 * pad - k) // s + 1
    taps = -(-k // s)
    length = max(t + 2 * pad, (t_out + taps - 1) * s)
    length = -(-length // s) * s
    xp = F.pad(x, (pad, length - t - pad))  # (B, C, L)
    xs = xp.view(b, c, length // s, s).transpose(2, 3).reshape(b, c * s, length // s)
    ws = F.pad(w, (0, taps * s - k)).view(c_out, c_in_g, taps, s).transpose(2, 3)
    ws = ws.reshape(c_out, c_in_g * s, taps)
    return F.conv1d(xs, ws, None, 1, 0, 1, groups)[..., :t_out]


FORMS = {"conv1d": conv1d, "cl2d": cl2d, "phase": phase}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precision", choices=("fp32", "bf16"), default="bf16")
    ap.add_argument("--batch", type=int, default=4, help="4: the joint D pass of batch 2")
    ap.add_argument("--segment", type=int, default=8192)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3, help="calls per form per round")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32
    d = ScaleDiscriminator()
    t = args.segment
    layers = []
    for conv, s in zip(d.convs, ScaleDiscriminator.STRIDES):
        if conv.groups > 1:
            layers.append(
                (conv.in_channels, conv.out_channels, conv.kernel_size[0], s, conv.groups, t)
            )
        t = (t - 1) // s + 1
    print(
        f"MSD grouped layers, batch {args.batch}, {args.precision}, {args.threads} threads; "
        f"fwd + bwd, median of {args.rounds} rounds x {args.repeats}"
    )
    for c_in, c_out, k, s, g, t in layers:
        gen = torch.Generator().manual_seed(0)
        x0 = torch.randn(args.batch, c_in, t, generator=gen).to(dtype)
        w0 = (torch.randn(c_out, c_in // g, k, generator=gen) * 0.05).to(dtype)
        t_out = (t - 1) // s + 1
        gy = torch.randn(args.batch, c_out, t_out, generator=gen).to(dtype)
        outs = {}
        for name, f in FORMS.items():  # also the warm-up of the timed call
            x, w = x0.clone().requires_grad_(), w0.clone().requires_grad_()
            y = f(x, w, s, g)
            y.backward(gy)
            outs[name] = (y.float(), x.grad.float(), w.grad.float())
        ref = outs["conv1d"]
        for name, out in outs.items():
            err = max(((a - b).abs().max() / b.abs().max()).item() for a, b in zip(out, ref))
            assert err < (2e-2 if dtype == torch.bfloat16 else 1e-4), (name, err)
        flops = 3 * 2 * args.batch * c_out * (c_in // g) * k * t_out
        times: dict[str, list[float]] = {n: [] for n in FORMS}
        for r in range(args.rounds):
            names = list(FORMS)
            for name in names[r % len(names) :] + names[: r % len(names)]:
                x, w = x0.clone().requires_grad_(), w0.clone().requires_grad_()
                start = time.perf_counter()
                for _ in range(args.repeats):
                    FORMS[name](x, w, s, g).backward(gy)
                times[name].append((time.perf_counter() - start) / args.repeats)
        line = f"{c_in}->{c_out} k{k} s{s} g{g} T{t}:"
        for name, ts in times.items():
            m = statistics.median(ts)
            line += f"  {name} {m * 1e3:.1f} ms ({flops / m / 1e9:.0f} GFLOP/s)"
        print(line)


if __name__ == "__main__":
    main()
