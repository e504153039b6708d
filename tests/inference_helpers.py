"""Small builders shared by the inference, streaming, export and bench tests."""

from __future__ import annotations

import pytest
import torch

from hifigan import Generator, HiFiGANConfig, Vocoder
from hifigan.precision import bf16_supported

#: bf16 runs through oneDNN's bf16 kernels, which CPUs without AVX-512 BW/VL/DQ, AVX-NE-CONVERT
#: or AMX lack (on those the backends refuse bf16 in one line: test_backends.py checks it)
needs_bf16 = pytest.mark.skipif(
    not bf16_supported("cpu"), reason="this CPU has no bf16 kernels (AVX-512 BW/VL/DQ or AMX)"
)


def random_generator(preset: str, seed: int = 0) -> tuple[Generator, HiFiGANConfig]:
    """A preset architecture with seeded random weights (weight norm folded)."""
    config = HiFiGANConfig.preset(preset)
    torch.manual_seed(seed)
    return Generator.from_config(config).remove_weight_norm().eval(), config


def random_vocoder(preset: str, seed: int = 0, **kwargs) -> Vocoder:
    generator, config = random_generator(preset, seed)
    return Vocoder(generator, config, **kwargs)


def log_mel(frames: int, *, batch: int | None = None, n_mels: int = 80, seed: int = 1):
    """A deterministic log-mel-like input: ``(n_mels, frames)`` or ``(batch, n_mels, frames)``."""
    rng = torch.Generator().manual_seed(seed)
    shape = (n_mels, frames) if batch is None else (batch, n_mels, frames)
    return torch.randn(*shape, generator=rng) * 2.0 - 5.0


def max_diff(a, b) -> float:
    return (torch.as_tensor(a) - torch.as_tensor(b)).abs().max().item()
