"""The HiFi-GAN generator (paper section 2.1).

``conv_pre`` (kernel 7) -> for each upsampling stage: leaky ReLU 0.1, transposed convolution,
multi-receptive-field fusion (the mean of one residual block per kernel size) -> leaky ReLU 0.01
(the authors' code uses PyTorch's default slope here) -> ``conv_post`` (kernel 7) -> tanh.

Module and parameter names follow the authors' code so that their checkpoints map one to one
(see :mod:`hifigan.checkpoint`). Weight norm is applied with ``torch.nn.utils.parametrizations``
for training and folded away by :meth:`Generator.remove_weight_norm` for inference.

Initialisation: the authors' code draws ``normal(0, 0.01)`` into ``module.weight`` *after*
registering weight norm, which the first forward pass overwrites from ``weight_g``/``weight_v``;
their effective initialisation is therefore PyTorch's default, which is what we use.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm

from .config import HiFiGANConfig

LRELU_SLOPE = 0.1


def same_padding(kernel_size: int, dilation: int = 1) -> int:
    """Padding that keeps the length of a stride-1 convolution unchanged."""
    return (kernel_size * dilation - dilation) // 2


def remove_all_weight_norm(module: nn.Module) -> None:
    """Fold every weight-norm parametrization of ``module`` into a plain ``weight``."""
    for m in module.modules():
        if parametrize.is_parametrized(m, "weight"):
            parametrize.remove_parametrizations(m, "weight", leave_parametrized=True)


def same_conv(
    c_in: int, c_out: int, kernel_size: int, dilation: int = 1, padding_mode: str = "zeros"
) -> nn.Conv1d:
    """A weight-normed, length-preserving convolution ``(B, c_in, T) -> (B, c_out, T)``;
    ``padding_mode`` ``reflect`` pads by reflection instead of zeros (SpeechBrain's choice)."""
    return weight_norm(
        nn.Conv1d(
            c_in,
            c_out,
            kernel_size,
            dilation=dilation,
            padding=same_padding(kernel_size, dilation),
            padding_mode=padding_mode,
        )
    )


def dilated_convs(
    channels: int, kernel_size: int, dilations: Sequence[int], padding_mode: str = "zeros"
) -> nn.ModuleList:
    """One weight-normed, length-preserving convolution per dilation, ``(B, C, T) -> (B, C, T)``."""
    return nn.ModuleList(
        same_conv(channels, channels, kernel_size, d, padding_mode) for d in dilations
    )


class ResBlock1(nn.Module):
    """Residual block type 1: per dilation, (leaky ReLU, dilated conv, leaky ReLU, conv) + skip.

    ``(B, C, T) -> (B, C, T)``.
    """

    def __init__(
        self,
        channels: int,
        kernel_size: int,
        dilations: Sequence[int],
        padding_mode: str = "zeros",
    ) -> None:
        super().__init__()
        self.convs1 = dilated_convs(channels, kernel_size, dilations, padding_mode)
        self.convs2 = nn.ModuleList(
            same_conv(channels, channels, kernel_size, 1, padding_mode) for _ in dilations
        )

    def forward(self, x: Tensor) -> Tensor:
        for c1, c2 in zip(self.convs1, self.convs2):
            xt = c1(F.leaky_relu(x, LRELU_SLOPE))
            xt = c2(F.leaky_relu(xt, LRELU_SLOPE))
            x = xt + x
        return x


class ResBlock2(nn.Module):
    """Residual block type 2 (V3): per dilation, (leaky ReLU, dilated conv) + skip.

    ``(B, C, T) -> (B, C, T)``.
    """

    def __init__(
        self,
        channels: int,
        kernel_size: int,
        dilations: Sequence[int],
        padding_mode: str = "zeros",
    ) -> None:
        super().__init__()
        self.convs = dilated_convs(channels, kernel_size, dilations, padding_mode)

    def forward(self, x: Tensor) -> Tensor:
        for c in self.convs:
            x = c(F.leaky_relu(x, LRELU_SLOPE)) + x
        return x


class Generator(nn.Module):
    """Mel-spectrogram ``(B, n_mels, frames)`` -> waveform ``(B, 1, frames * hop_length)``,
    in [-1, 1].

    ``conv_padding_mode``, ``upsample_paddings`` and ``upsample_output_paddings`` describe other
    toolkits' variants of the same network (see :class:`~hifigan.config.GeneratorConfig`).
    """

    def __init__(
        self,
        *,
        n_mels: int = 80,
        resblock: int = 1,
        upsample_rates: Sequence[int] = (8, 8, 2, 2),
        upsample_kernel_sizes: Sequence[int] = (16, 16, 4, 4),
        upsample_initial_channel: int = 512,
        resblock_kernel_sizes: Sequence[int] = (3, 7, 11),
        resblock_dilation_sizes: Sequence[Sequence[int]] = ((1, 3, 5), (1, 3, 5), (1, 3, 5)),
        conv_padding_mode: str = "zeros",
        upsample_paddings: Sequence[int] = (),
        upsample_output_paddings: Sequence[int] = (),
    ) -> None:
        super().__init__()
        self.n_mels = n_mels
        self.num_kernels = len(resblock_kernel_sizes)
        self.conv_padding_mode = conv_padding_mode
        block = ResBlock1 if resblock == 1 else ResBlock2
        ch = upsample_initial_channel
        pads = list(upsample_paddings) or [
            (k - u) // 2 for u, k in zip(upsample_rates, upsample_kernel_sizes)
        ]
        outs = list(upsample_output_paddings) or [0] * len(pads)
        self.conv_pre = same_conv(n_mels, ch, 7, 1, conv_padding_mode)
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        for i, (u, k) in enumerate(zip(upsample_rates, upsample_kernel_sizes)):
            c_in, c_out = ch // 2**i, ch // 2 ** (i + 1)
            self.ups.append(
                weight_norm(
                    nn.ConvTranspose1d(c_in, c_out, k, u, padding=pads[i], output_padding=outs[i])
                )
            )
            for rk, rd in zip(resblock_kernel_sizes, resblock_dilation_sizes):
                self.resblocks.append(block(c_out, rk, rd, conv_padding_mode))
        self.conv_post = same_conv(ch // 2 ** len(self.ups), 1, 7, 1, conv_padding_mode)

    @classmethod
    def from_config(cls, config: HiFiGANConfig) -> Generator:
        g = config.generator
        return cls(
            n_mels=config.mel.n_mels,
            resblock=g.resblock,
            upsample_rates=g.upsample_rates,
            upsample_kernel_sizes=g.upsample_kernel_sizes,
            upsample_initial_channel=g.upsample_initial_channel,
            resblock_kernel_sizes=g.resblock_kernel_sizes,
            resblock_dilation_sizes=g.resblock_dilation_sizes,
            conv_padding_mode=g.conv_padding_mode,
            upsample_paddings=g.upsample_paddings,
            upsample_output_paddings=g.upsample_output_paddings,
        )

    @property
    def has_weight_norm(self) -> bool:
        return parametrize.is_parametrized(self.conv_pre, "weight")

    def forward(self, mel: Tensor) -> Tensor:
        """``(B, n_mels, frames)`` -> ``(B, 1, frames * hop_length)``, hop_length the product of
        the upsample rates."""
        x = self.conv_pre(mel)
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, LRELU_SLOPE))
            blocks = self.resblocks[i * self.num_kernels : (i + 1) * self.num_kernels]
            xs = blocks[0](x)
            for block in blocks[1:]:
                xs = xs + block(x)
            x = xs / self.num_kernels
        x = self.conv_post(F.leaky_relu(x))  # default slope 0.01, as in the authors' code
        return torch.tanh(x)

    def remove_weight_norm(self) -> Generator:
        """Fold weight norm into plain weights (for inference); returns ``self``."""
        remove_all_weight_norm(self)
        return self
