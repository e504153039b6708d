"""Multi-period (MPD) and multi-scale (MSD) discriminators (paper sections 2.2 and 2.3).

Every sub-discriminator takes one batch of waveforms ``(B, 1, T)`` and returns
``(logits, feature_maps)``: ``logits`` of shape ``(B, N)`` (the flattened output map) and the
list of activations after each layer (the last one is the output map itself), used by the
feature-matching loss. The multi-discriminators return lists of both, one entry per
sub-discriminator. Module names follow the authors' code so checkpoints map one to one.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import spectral_norm
from torch.nn.utils.parametrizations import weight_norm

from .config import HiFiGANConfig
from .generator import LRELU_SLOPE, same_padding

DiscriminatorOutput = tuple[list[Tensor], list[list[Tensor]]]


class SubDiscriminator(nn.Module):
    """Base class: a stack of convolutions with leaky ReLU and a final ``conv_post``.

    Subclasses build ``convs`` and ``conv_post`` and may override :meth:`prepare` to turn the
    ``(B, 1, T)`` waveform into the layout the convolutions expect.
    """

    convs: nn.ModuleList
    conv_post: nn.Module

    def prepare(self, x: Tensor) -> Tensor:
        return x

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """``(B, 1, T)`` -> ``(logits (B, N), feature maps)``."""
        x = self.prepare(x)
        fmaps = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), LRELU_SLOPE)
            fmaps.append(x)
        x = self.conv_post(x)
        fmaps.append(x)
        return torch.flatten(x, 1, -1), fmaps


class PeriodDiscriminator(SubDiscriminator):
    """Looks at every ``period``-th sample: ``(B, 1, T)`` is reflect-padded to a multiple of the
    period and viewed as ``(B, 1, T / period, period)``; 2-D convolutions with ``(k, 1)`` kernels
    then process each phase independently."""

    def __init__(
        self,
        period: int,
        channels: Sequence[int] = (32, 128, 512, 1024, 1024),
        kernel_size: int = 5,
        stride: int = 3,
    ) -> None:
        super().__init__()
        self.period = period
        pad = (same_padding(kernel_size), 0)
        layers, c_in = [], 1
        for i, c_out in enumerate(channels):
            s = (stride, 1) if i < len(channels) - 1 else 1
            layers.append(weight_norm(nn.Conv2d(c_in, c_out, (kernel_size, 1), s, padding=pad)))
            c_in = c_out
        self.convs = nn.ModuleList(layers)
        self.conv_post = weight_norm(nn.Conv2d(c_in, 1, (3, 1), 1, padding=(1, 0)))

    def prepare(self, x: Tensor) -> Tensor:
        b, c, t = x.shape
        if t % self.period:
            n_pad = self.period - t % self.period
            x = F.pad(x, (0, n_pad), "reflect")
            t += n_pad
        return x.view(b, c, t // self.period, self.period)

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """``(B, 1, T)`` -> ``(logits (B, N), feature maps (B, C, T', period))``."""
        if self.period > FOLD_MAX_PERIOD or x.device.type != "cpu" or not _cpu_bf16_autocast():
            return super().forward(x)
        # The same convolutions with the phases moved into the batch: (B * period, C, T')
        # 1-D convolutions. Under bf16 on a CPU, oneDNN ran a (k, 1) 2-D convolution over a
        # width of 2 or 3 far below its speed on the folded form (period 2: 1.6x slower forward
        # and backward); from period 5 on, folding was slower. The feature maps are returned
        # as views in the usual layout, so losses and callers see no difference.
        x = self.prepare(x)
        b, c, h, p = x.shape
        x = x.permute(0, 3, 1, 2).reshape(b * p, c, h)

        def unfold(y: Tensor) -> Tensor:
            return y.view(b, p, y.shape[1], y.shape[2]).permute(0, 2, 3, 1)

        fmaps = []
        for conv in self.convs:
            x = F.leaky_relu(_conv1d(conv, x), LRELU_SLOPE)
            fmaps.append(unfold(x))
        fmaps.append(unfold(_conv1d(self.conv_post, x)))
        return torch.flatten(fmaps[-1], 1, -1), fmaps


FOLD_MAX_PERIOD = 3  # see PeriodDiscriminator.forward


def _conv1d(conv: nn.Conv2d, x: Tensor) -> Tensor:
    """A ``(k, 1)`` 2-D convolution applied as a 1-D one to ``(N, C, T)``."""
    weight = conv.weight.squeeze(-1)  # weight norm computes it (once under parametrize.cached)
    return F.conv1d(x, weight, conv.bias, conv.stride[0], conv.padding[0], conv.dilation[0])


def _cpu_bf16_autocast() -> bool:
    try:
        return (
            torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
        )
    except TypeError:  # torch < 2.4
        return torch.is_autocast_cpu_enabled() and torch.get_autocast_cpu_dtype() == torch.bfloat16


class ScaleDiscriminator(SubDiscriminator):
    """MelGAN-style stack of strided, grouped 1-D convolutions on ``(B, 1, T)``."""

    KERNELS = (15, 41, 41, 41, 41, 41, 5)
    STRIDES = (1, 2, 2, 4, 4, 1, 1)

    def __init__(
        self,
        channels: Sequence[int] = (128, 128, 256, 512, 1024, 1024, 1024),
        groups: Sequence[int] = (1, 4, 16, 16, 16, 16, 1),
        use_spectral_norm: bool = False,
    ) -> None:
        super().__init__()
        norm = spectral_norm if use_spectral_norm else weight_norm
        layers, c_in = [], 1
        for c_out, k, s, g in zip(channels, self.KERNELS, self.STRIDES, groups):
            layers.append(norm(nn.Conv1d(c_in, c_out, k, s, groups=g, padding=(k - 1) // 2)))
            c_in = c_out
        self.convs = nn.ModuleList(layers)
        self.conv_post = norm(nn.Conv1d(c_in, 1, 3, 1, padding=1))


class MultiPeriodDiscriminator(nn.Module):
    """One :class:`PeriodDiscriminator` per period (2, 3, 5, 7, 11 in the paper)."""

    def __init__(
        self,
        periods: Sequence[int] = (2, 3, 5, 7, 11),
        channels: Sequence[int] = (32, 128, 512, 1024, 1024),
    ) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList(PeriodDiscriminator(p, channels) for p in periods)

    @classmethod
    def from_config(cls, config: HiFiGANConfig) -> MultiPeriodDiscriminator:
        d = config.discriminator
        return cls(d.periods, d.mpd_channels)

    def forward(self, y: Tensor) -> DiscriminatorOutput:
        """``(B, 1, T)`` -> (list of logits, list of feature-map lists), one per period."""
        logits, fmaps = [], []
        for d in self.discriminators:
            out, maps = d(y)
            logits.append(out)
            fmaps.append(maps)
        return logits, fmaps


class MultiScaleDiscriminator(nn.Module):
    """:class:`ScaleDiscriminator` on raw audio and on x2, x4, ... average-pooled audio.

    The first one uses spectral norm, the others weight norm, as in the paper.
    """

    def __init__(
        self,
        scales: int = 3,
        channels: Sequence[int] = (128, 128, 256, 512, 1024, 1024, 1024),
        groups: Sequence[int] = (1, 4, 16, 16, 16, 16, 1),
    ) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList(
            ScaleDiscriminator(channels, groups, use_spectral_norm=(i == 0)) for i in range(scales)
        )
        self.meanpools = nn.ModuleList(nn.AvgPool1d(4, 2, padding=2) for _ in range(scales - 1))

    @classmethod
    def from_config(cls, config: HiFiGANConfig) -> MultiScaleDiscriminator:
        d = config.discriminator
        return cls(d.msd_scales, d.msd_channels, d.msd_groups)

    def forward(self, y: Tensor) -> DiscriminatorOutput:
        """``(B, 1, T)`` -> (list of logits, list of feature-map lists), one per scale."""
        logits, fmaps = [], []
        for i, d in enumerate(self.discriminators):
            if i > 0:
                y = self.meanpools[i - 1](y)
            out, maps = d(y)
            logits.append(out)
            fmaps.append(maps)
        return logits, fmaps
