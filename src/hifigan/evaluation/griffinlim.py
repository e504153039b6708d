"""A Griffin-Lim "vocoder": the baseline every report shows beside the trained models.

It inverts the same log-mel the generator gets: ``exp`` undoes the log, the pseudo-inverse of
the Slaney filterbank (negative values set to zero) gives a linear magnitude, and Griffin-Lim
(Perraudin et al.'s fast variant, momentum 0.99, seeded random initial phase) finds a signal
with that magnitude. Torch only.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..config import HiFiGANConfig, MelConfig
from ..errors import InputError
from ..mel import MelSpectrogram


class GriffinLim:
    """Mel-to-waveform by Griffin-Lim, with the interface of :class:`hifigan.Vocoder`
    (``__call__(mel)``, ``mel(audio)``, ``copy_synthesis(audio)``, ``sample_rate``).

    Args:
        mel_config: the mel parameters (default: the v1 preset's, 22.05 kHz, fmax 8 kHz).
        iterations: Griffin-Lim iterations (32: the baseline of the reported comparisons).
        momentum: fast Griffin-Lim momentum (0 gives the original algorithm).
        seed: seed of the random initial phase.
    """

    def __init__(
        self,
        mel_config: MelConfig | None = None,
        *,
        iterations: int = 32,
        momentum: float = 0.99,
        seed: int = 0,
    ) -> None:
        self.mel_config = mel_config or HiFiGANConfig.preset("v1").mel
        self.iterations = iterations
        self.momentum = momentum
        self.seed = seed
        self.mel_transform = MelSpectrogram.from_config(self.mel_config)
        basis = self.mel_transform.mel_basis.double()
        self.inverse_basis = torch.linalg.pinv(basis).float()  # (freq, n_mels)
        self.window = torch.hann_window(self.mel_config.win_length)

    @property
    def sample_rate(self) -> int:
        return self.mel_config.sample_rate

    @property
    def hop_length(self) -> int:
        return self.mel_config.hop_length

    @property
    def n_mels(self) -> int:
        return self.mel_config.n_mels

    @torch.inference_mode()
    def mel(self, audio: Tensor | np.ndarray) -> Tensor:
        """``(samples,)`` 22.05 kHz audio -> ``(n_mels, frames)`` log-mel (the generator input)."""
        x = torch.as_tensor(np.asarray(audio, dtype=np.float32))
        if x.shape[-1] < self.mel_transform.min_samples:
            raise InputError(f"audio is too short: {x.shape[-1]} samples")
        return self.mel_transform(x)

    def _stft_options(self) -> dict:
        c = self.mel_config
        return {
            "n_fft": c.n_fft,
            "hop_length": c.hop_length,
            "win_length": c.win_length,
            "window": self.window,
            "center": True,
        }

    def _stft(self, audio: Tensor) -> Tensor:
        return torch.stft(audio, **self._stft_options(), return_complex=True)

    def _istft(self, spec: Tensor, length: int) -> Tensor:
        return torch.istft(spec, **self._stft_options(), length=length)

    @torch.inference_mode()
    def __call__(self, mel: Tensor | np.ndarray) -> Tensor:
        """``(n_mels, frames)`` log-mel -> ``(frames * hop_length,)`` float32 waveform."""
        mel = torch.as_tensor(np.asarray(mel, dtype=np.float32))
        if mel.dim() != 2 or mel.shape[0] != self.n_mels:
            raise InputError(f"mel must have shape ({self.n_mels}, frames), got {tuple(mel.shape)}")
        c = self.mel_config
        magnitude = (self.inverse_basis @ torch.exp(mel)).clamp(min=0.0)
        frames = mel.shape[1]
        length = frames * c.hop_length
        generator = torch.Generator().manual_seed(self.seed)
        phase = torch.rand(magnitude.shape, generator=generator) * 2 * torch.pi
        spec = magnitude * torch.exp(1j * phase)
        previous = torch.zeros_like(spec)
        for _ in range(self.iterations):
            rebuilt = self._stft(self._istft(spec, length))[:, :frames]
            accelerated = rebuilt - previous * (self.momentum / (1 + self.momentum))
            previous = rebuilt
            spec = magnitude * accelerated / accelerated.abs().clamp(min=1e-16)
        audio = self._istft(spec, length)
        # our mel frame t is centred on sample t * hop_length + (n_fft / 2 - pad), torch.stft's on
        # t * hop_length: shift by that offset so the output lines up with the analysed audio
        offset = c.n_fft // 2 - (c.n_fft - c.hop_length) // 2
        audio = torch.cat([torch.zeros(offset), audio[: length - offset]])
        return audio.clamp(-1.0, 1.0)

    def copy_synthesis(self, audio: Tensor | np.ndarray) -> Tensor:
        """Re-synthesize ``(samples,)`` audio through its own mel."""
        return self(self.mel(audio))
