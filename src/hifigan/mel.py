"""The log-mel spectrogram used everywhere: data, losses, CLI and evaluation.

Matches the authors' ``mel_spectrogram``: reflect-pad ``(n_fft - hop) / 2`` on each side, STFT
with ``center=False`` and a periodic Hann window, magnitude ``sqrt(re^2 + im^2 + 1e-9)``, a Slaney
mel filterbank (librosa's default), and ``log(max(x, 1e-5))``. The filterbank and window are
buffers of the module, computed once, and follow it to any device.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .config import MelConfig


def _hz_to_mel(freq: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above."""
    freq = np.asarray(freq, dtype=np.float64)
    f_sp = 200.0 / 3
    mels = freq / f_sp
    min_log_hz, logstep = 1000.0, np.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp
    log_region = freq >= min_log_hz
    mels = np.where(
        log_region, min_log_mel + np.log(np.maximum(freq, 1e-10) / min_log_hz) / logstep, mels
    )
    return mels


def _mel_to_hz(mels: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_hz_to_mel`."""
    mels = np.asarray(mels, dtype=np.float64)
    f_sp = 200.0 / 3
    min_log_hz, logstep = 1000.0, np.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp
    return np.where(
        mels >= min_log_mel, min_log_hz * np.exp(logstep * (mels - min_log_mel)), f_sp * mels
    )


def mel_filterbank(
    sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float | None
) -> np.ndarray:
    """Slaney-normalised triangular mel filterbank (the same as ``librosa.filters.mel``).

    Returns:
        float32 array of shape ``(n_mels, n_fft // 2 + 1)``.
    """
    fmax = sample_rate / 2 if fmax is None else fmax
    fft_freqs = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper)).astype(np.float32)
    # Slaney normalisation: each triangle has unit area in Hz.
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None].astype(np.float32)
    return weights


class MelSpectrogram(nn.Module):
    """Waveform to natural-log mel-spectrogram.

    Input ``(samples,)`` or ``(batch, samples)``; output ``(n_mels, frames)`` or
    ``(batch, n_mels, frames)`` with ``frames = (samples + n_fft - hop - n_fft) // hop + 1``
    (``samples / hop`` when ``samples`` is a multiple of ``hop``). Always computed in float32,
    also under autocast.
    """

    def __init__(
        self,
        *,
        sample_rate: int = 22050,
        n_fft: int = 1024,
        hop_length: int = 256,
        win_length: int = 1024,
        n_mels: int = 80,
        fmin: float = 0.0,
        fmax: float | None = 8000.0,
    ) -> None:
        super().__init__()
        self.sample_rate = sample_rate
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.win_length = win_length
        self.n_mels = n_mels
        self.pad = (n_fft - hop_length) // 2
        basis = mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax)
        self.register_buffer("mel_basis", torch.from_numpy(basis), persistent=False)
        self.register_buffer("window", torch.hann_window(win_length), persistent=False)

    @classmethod
    def from_config(cls, config: MelConfig, *, for_loss: bool = False) -> MelSpectrogram:
        """The generator-input mel (``fmax``), or with ``for_loss`` the loss mel (``fmax_loss``)."""
        return cls(
            sample_rate=config.sample_rate,
            n_fft=config.n_fft,
            hop_length=config.hop_length,
            win_length=config.win_length,
            n_mels=config.n_mels,
            fmin=config.fmin,
            fmax=config.fmax_loss if for_loss else config.fmax,
        )

    @property
    def min_samples(self) -> int:
        """The shortest input that gives one frame (reflect padding needs more than ``pad``)."""
        return max(self.n_fft - 2 * self.pad, self.pad + 1)

    def num_frames(self, num_samples: int) -> int:
        """Frames produced for an input of ``num_samples`` samples."""
        return (num_samples + 2 * self.pad - self.n_fft) // self.hop_length + 1

    def forward(self, audio: Tensor) -> Tensor:
        """``(B, samples)`` or ``(samples,)`` float audio -> ``(B, n_mels, frames)`` log-mel."""
        squeeze = audio.dim() == 1
        if squeeze:
            audio = audio.unsqueeze(0)
        with torch.autocast(device_type=audio.device.type, enabled=False):
            x = F.pad(audio.float().unsqueeze(1), (self.pad, self.pad), mode="reflect").squeeze(1)
            spec = torch.stft(
                x,
                self.n_fft,
                hop_length=self.hop_length,
                win_length=self.win_length,
                window=self.window,
                center=False,
                normalized=False,
                onesided=True,
                return_complex=True,
            )
            magnitude = torch.sqrt(torch.view_as_real(spec).pow(2).sum(-1) + 1e-9)
            mel = torch.log(torch.clamp(torch.matmul(self.mel_basis, magnitude), min=1e-5))
        return mel.squeeze(0) if squeeze else mel
