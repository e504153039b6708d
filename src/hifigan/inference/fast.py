"""The ``fast`` inference generator: the same function as :class:`~hifigan.generator.Generator`,
computed with fewer memory passes.

What it changes, all exact up to float rounding (measured in ``docs/inference.md``):

* weight norm folded; every convolution is a 2-D convolution on ``(B, C, 1, T)`` tensors in
  channels-last memory format, which oneDNN runs without reordering activations per layer;
* the leaky ReLU of a stage's input is computed once and shared by the residual blocks that all
  start with it;
* the ``1 / num_kernels`` of multi-receptive-field fusion is folded into the next layer's weights
  (leaky ReLU is positively homogeneous), so the mean costs no pass of its own;
* on CPU with oneDNN (``fuse``), a convolution and the residual addition after it run as one
  oneDNN call (``torch.ops.mkldnn._convolution_pointwise``, the fused operators torch.compile
  also uses), and in residual block 1 the leaky ReLU after the first convolution is fused into
  it; the residual stream is updated in place;
* the narrow float32 stages (see below), when oneDNN runs them, compute their residual blocks
  (and, in the last stage, ``conv_post``) on tiles of the time axis of about
  ``tile_elements`` values per tensor, each with a halo of the blocks' own receptive field and
  zero padding only at the true ends: the same numbers, but the tensors of a tile stay in the
  CPU cache instead of streaming tens of megabytes through memory per operation (those stages
  are memory-bound). Wider or bfloat16 stages run in one piece: on the Xeon of
  ``docs/inference.md`` tiling them made V3 and V1 in bf16 17% and 28% slower;
* on CPU, float32 stages with few channels (32 or fewer) run through
  a C kernel built for this CPU on first use (:mod:`~hifigan.inference.narrow`), which
  vectorises over time rather than over the few channels;
* optionally, the first ``reduced_stages`` upsampling stages run in bfloat16 or float16
  (``reduced_dtype``); ``conv_post`` and the output always stay float32, and by default so does
  the last, full-rate stage: it carries the waveform, and rounding it to 8 mantissa bits is
  audible (see :func:`default_reduced_stages`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..generator import LRELU_SLOPE, Generator, ResBlock1
from . import narrow as narrow_kernel

_POST_SLOPE = 0.01  # the authors' final leaky ReLU uses PyTorch's default slope
TILE_ELEMENTS = 2**19  # 2 MB of float32 per tensor of a tile: fits the L2/L3 caches


def mkldnn_fusion_available() -> bool:
    """Whether this torch build has oneDNN's fused convolution operators."""
    ops = getattr(torch.ops, "mkldnn", None)
    try:
        return bool(
            torch.backends.mkldnn.is_available()
            and ops is not None
            and hasattr(ops, "_convolution_pointwise")
            and hasattr(ops, "_convolution_pointwise_")
        )
    except (AttributeError, RuntimeError):
        return False


def default_reduced_stages(generator: Generator) -> int:
    """How many leading stages run in reduced precision by default.

    Every stage before the last one that has at least 32 channels. Measured with the authors'
    LJ_V1 and LJ_V2 weights (copy synthesis, ``scripts/bench_infer_quality.py``): running the
    last, full-rate stage in bfloat16 raises the mel L1 by 5-13%, and so does a 16-channel stage
    of V2; with this rule the cost is below 0.5% mel L1 and 0.01 PESQ.
    """
    channels = [up.out_channels for up in generator.ups]
    count = 0
    for c in channels[:-1]:
        if c < 32:
            break
        count += 1
    return count


class _Conv(nn.Module):
    """A 1-D convolution stored as a ``(1, k)`` 2-D one, for channels-last ``(B, C, 1, T)``.

    A convolution that pads by reflection (``padding_mode="reflect"``) pads its input
    explicitly and convolves without padding; ``pad`` is its padding either way.
    """

    def __init__(self, conv: nn.Conv1d | nn.ConvTranspose1d, *, scale: float, dtype) -> None:
        super().__init__()
        self.transposed = isinstance(conv, nn.ConvTranspose1d)
        weight = conv.weight.detach().float() * scale
        self.weight = nn.Parameter(weight.unsqueeze(2).to(dtype), requires_grad=False)
        self.bias = nn.Parameter(conv.bias.detach().to(dtype), requires_grad=False)
        self.pad = int(conv.padding[0])
        self.reflect = not self.transposed and conv.padding_mode == "reflect"
        self.padding = [0, 0 if self.reflect else self.pad]
        self.output_padding = [0, int(conv.output_padding[0])] if self.transposed else [0, 0]
        self.stride = [1, int(conv.stride[0])]
        self.dilation = [1, int(conv.dilation[0])]

    def _padded(self, x: Tensor) -> Tensor:
        if not self.reflect or not self.pad:
            return x
        return F.pad(x, (self.pad, self.pad, 0, 0), mode="reflect")

    def forward(self, x: Tensor) -> Tensor:
        if self.transposed:
            return F.conv_transpose2d(
                x,
                self.weight,
                self.bias,
                self.stride,
                self.padding,
                self.output_padding,
                dilation=self.dilation,
            )
        x = self._padded(x)
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation)

    def fused_lrelu(self, x: Tensor) -> Tensor:
        """``leaky_relu(conv(x), 0.1)`` in one oneDNN call."""
        return torch.ops.mkldnn._convolution_pointwise(
            self._padded(x), self.weight, self.bias, self.padding, self.stride, self.dilation, 1,
            "leaky_relu", [LRELU_SLOPE], "",
        )  # fmt: skip

    def fused_add(self, x: Tensor, residual: Tensor, *, inplace: bool) -> Tensor:
        """``conv(x) + residual`` in one oneDNN call (written into ``residual`` if ``inplace``)."""
        x = self._padded(x)
        args = (self.weight, self.bias, self.padding, self.stride, self.dilation, 1, "add", 1.0)
        if inplace:
            return torch.ops.mkldnn._convolution_pointwise_.binary(
                residual, x, *args, None, [], None
            )
        return torch.ops.mkldnn._convolution_pointwise.binary(x, residual, *args, None, [], None)


class FastGenerator(nn.Module):
    """Inference-only generator: mel ``(B, n_mels, frames)`` -> ``(B, 1, frames * hop_length)``
    float32.

    Args:
        generator: the source generator (weight norm folded or not; it is not modified).
        reduced_stages: how many leading upsampling stages (with ``conv_pre``) run in
            ``reduced_dtype``; 0 for float32 throughout.
        reduced_dtype: ``torch.bfloat16`` or ``torch.float16``.
        fuse: use oneDNN's fused convolutions (CPU only; default: when available). Plain
            operators are used on other devices and under ``torch.compile``.
        tile_elements: values per tensor in one tile of a narrow float32 stage that oneDNN
            runs (the tile length is this divided by the stage's channels, at least 1024);
            ``None`` computes each stage in one piece.
        narrow: run the float32 stages with at most
            :data:`~hifigan.inference.narrow.NARROW_CHANNELS` channels through the C kernel of
            :mod:`~hifigan.inference.narrow` on CPU (default: when the C compiler builds it;
            ``True`` raises if it does not). Not used on other devices or under
            ``torch.compile``.
    """

    def __init__(
        self,
        generator: Generator,
        *,
        reduced_stages: int = 0,
        reduced_dtype: torch.dtype = torch.bfloat16,
        fuse: bool | None = None,
        tile_elements: int | None = TILE_ELEMENTS,
        narrow: bool | None = None,
    ) -> None:
        super().__init__()
        source = generator  # with weight norm, .weight computes the folded weight
        n = len(source.ups)
        if not 0 <= reduced_stages <= n:
            raise ValueError(f"reduced_stages must be in [0, {n}], got {reduced_stages}")
        self.num_kernels = source.num_kernels
        self.resblock1 = isinstance(source.resblocks[0], ResBlock1)
        self.stage_dtypes = [
            reduced_dtype if i < reduced_stages else torch.float32 for i in range(n)
        ]
        self.fuse = mkldnn_fusion_available() if fuse is None else fuse
        mean = 1.0 / self.num_kernels
        self.conv_pre = _Conv(source.conv_pre, scale=1.0, dtype=self.stage_dtypes[0])
        self.ups = nn.ModuleList(
            _Conv(up, scale=1.0 if i == 0 else mean, dtype=self.stage_dtypes[i])
            for i, up in enumerate(source.ups)
        )
        self.resblocks = nn.ModuleList()
        for j, block in enumerate(source.resblocks):
            dtype = self.stage_dtypes[j // self.num_kernels]
            if self.resblock1:
                convs = [c for pair in zip(block.convs1, block.convs2) for c in pair]
            else:
                convs = list(block.convs)
            self.resblocks.append(nn.ModuleList(_Conv(c, scale=1.0, dtype=dtype) for c in convs))
        self.conv_post = _Conv(source.conv_post, scale=mean, dtype=torch.float32)
        self.tile_elements = tile_elements
        self.halos = [self._halo(i) for i in range(n)]
        # the float32 stages with few channels: the kernel's, or else oneDNN's in tiles
        self.narrow_stages = [
            self.stage_dtypes[i] == torch.float32
            and self.ups[i].weight.shape[1] <= narrow_kernel.NARROW_CHANNELS
            for i in range(n)
        ]
        self.narrow = self._narrow_runners(narrow)
        self.eval()

    def _narrow_runners(self, wanted: bool | None) -> list[narrow_kernel.NarrowStageRunner | None]:
        """One kernel runner per stage that qualifies (float32, few channels), else ``None``."""
        n = len(self.ups)
        stages = [i for i in range(n) if self.narrow_stages[i]]
        runners: list[narrow_kernel.NarrowStageRunner | None] = [None] * n
        if wanted is False or not stages or self.conv_post.reflect:
            return runners  # the kernel pads with zeros only
        kernel = narrow_kernel.load()
        if kernel is None:
            if wanted:
                raise RuntimeError("the narrow-stage kernel could not be built (no C compiler?)")
            return runners

        def spec(conv: _Conv) -> tuple[Tensor, Tensor, int, int]:
            return conv.weight.squeeze(2), conv.bias, conv.dilation[1], conv.padding[1]

        for i in stages:
            blocks = self._stage_blocks(i)
            post = spec(self.conv_post) if i == n - 1 else None
            runners[i] = narrow_kernel.NarrowStageRunner(
                kernel,
                [spec(conv) for block in blocks for conv in block],
                nblocks=len(blocks),
                resblock1=self.resblock1,
                post=post,
                past=self.halos[i][0],
                future=self.halos[i][1],
                slope=LRELU_SLOPE,
                post_slope=_POST_SLOPE,
            )
        return runners

    def _halo(self, stage: int) -> tuple[int, int]:
        """(past, future) positions that a stage's output (with ``conv_post`` after the last
        stage) depends on around each position of its input."""
        past = future = 0
        for convs in self._stage_blocks(stage):
            p = sum(c.pad for c in convs)
            f = sum(c.dilation[1] * (c.weight.shape[-1] - 1) - c.pad for c in convs)
            past, future = max(past, p), max(future, f)
        if stage == len(self.ups) - 1:
            post = self.conv_post
            past += post.pad
            future += post.dilation[1] * (post.weight.shape[-1] - 1) - post.pad
        return past, future

    def _stage_blocks(self, stage: int) -> nn.ModuleList:
        return self.resblocks[stage * self.num_kernels : (stage + 1) * self.num_kernels]

    def _resblock(self, convs: nn.ModuleList, x: Tensor, first_input: Tensor, fuse: bool) -> Tensor:
        """One residual block on ``x``; ``first_input`` is ``leaky_relu(x)``, shared."""
        step = 2 if self.resblock1 else 1
        y = x
        for i in range(0, len(convs), step):
            t = first_input if i == 0 else F.leaky_relu(y, LRELU_SLOPE)
            if self.resblock1:
                h = convs[i].fused_lrelu(t) if fuse else F.leaky_relu(convs[i](t), LRELU_SLOPE)
                last = convs[i + 1]
            else:
                h, last = t, convs[i]
            if fuse:
                y = last.fused_add(h, y, inplace=i > 0)  # never overwrite the shared x
            elif i > 0:
                y += last(h)
            else:
                y = last(h) + y
        return y

    def _stage(self, stage: int, x: Tensor, fuse: bool) -> Tensor:
        """Multi-receptive-field fusion on the upsampled ``x`` (times ``num_kernels``: the mean's
        factor lives in the next layer's weights); after the last stage, also ``conv_post``."""
        shared = F.leaky_relu(x, LRELU_SLOPE)
        blocks = self._stage_blocks(stage)
        total = self._resblock(blocks[0], x, shared, fuse)
        for block in blocks[1:]:
            total += self._resblock(block, x, shared, fuse)
        if stage < len(self.ups) - 1:
            return total
        total = F.leaky_relu(total.float(), _POST_SLOPE, inplace=True)
        return torch.tanh(self.conv_post(total))

    def _tiled_stage(self, stage: int, x: Tensor, fuse: bool) -> Tensor:
        """:meth:`_stage` tile by tile along time; exact (each tile carries its halo)."""
        length = x.shape[-1]
        tile = max(1024, self.tile_elements // x.shape[1]) if self.tile_elements else length
        if (
            length <= tile
            or not self.narrow_stages[stage]
            or x.device.type != "cpu"
            or torch.compiler.is_compiling()
        ):
            return self._stage(stage, x, fuse)
        past, future = self.halos[stage]
        out = None
        for start in range(0, length, tile):
            end = min(length, start + tile)
            lo, hi = max(0, start - past), min(length, end + future)
            y = self._stage(stage, x[..., lo:hi], fuse)
            if out is None:
                shape = (*y.shape[:-1], length)
                out = torch.empty(shape, dtype=y.dtype, device=y.device)
                out = out.contiguous(memory_format=torch.channels_last)
            out[..., start:end] = y[..., start - lo : end - lo]
        return out

    def forward(self, mel: Tensor) -> Tensor:
        """``(B, n_mels, frames)`` -> ``(B, 1, frames * hop_length)`` float32."""
        on_cpu = mel.device.type == "cpu" and not torch.compiler.is_compiling()
        fuse = self.fuse and on_cpu
        x = mel.to(self.stage_dtypes[0]).unsqueeze(2).contiguous(memory_format=torch.channels_last)
        x = self.conv_pre(x)
        for i, up in enumerate(self.ups):
            x = F.leaky_relu(x.to(self.stage_dtypes[i]), LRELU_SLOPE, inplace=True)
            x = self._run_stage(i, up(x), fuse, on_cpu)
        return x.squeeze(2)

    def _run_stage(self, stage: int, x: Tensor, fuse: bool, on_cpu: bool) -> Tensor:
        """Stage ``stage`` on its upsampled input ``(B, C, 1, T)``: the narrow-stage kernel
        where it applies, else oneDNN tile by tile."""
        runner = self.narrow[stage] if on_cpu else None
        if runner is None or not runner.usable:
            return self._tiled_stage(stage, x, fuse)
        y = runner(x, torch.get_num_threads())
        return torch.tanh_(y) if stage == len(self.ups) - 1 else y


__all__ = ["FastGenerator", "default_reduced_stages", "mkldnn_fusion_available"]
