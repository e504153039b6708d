"""The log-mel spectrogram used everywhere: data, losses, CLI, evaluation and mel conventions.

By default it matches the authors' ``mel_spectrogram``: reflect-pad ``(n_fft - hop) / 2`` on each
side, STFT with ``center=False`` and a periodic Hann window, magnitude
``sqrt(re^2 + im^2 + 1e-9)``, a Slaney mel filterbank (librosa's default), and
``log(max(x, 1e-5))``. The keyword options cover the other toolkits' mels (centred frames, zero
padding, a symmetric window, the HTK scale, no filter normalisation, power spectra, another
value compression); :mod:`hifigan.conventions` builds them from a named convention. The
filterbank and window are buffers of the module, computed once, and follow it to any device.

Every front end is checked against one resource budget before anything is allocated
(:func:`hifigan.frontend.mel_front_end_problems`: bounded sizes, the frequency range, and the
memory of the filterbank and of a minute's mel), and the STFT of a long input runs in blocks
of frames, so that its working memory stays bounded whatever the input's length.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .frontend import MEL_BLOCK_BYTES, check_mel_front_end, mel_frame_bytes

if TYPE_CHECKING:
    from .config import MelConfig

MEL_SCALES = ("slaney", "htk")
FILTER_NORMS = ("slaney", "none")
PAD_MODES = ("reflect", "zero")


def hz_to_mel(freq: np.ndarray, scale: str = "slaney") -> np.ndarray:
    """Slaney's mel scale (linear below 1 kHz, logarithmic above), or HTK's ``2595 log10(1 +
    f / 700)``."""
    freq = np.asarray(freq, dtype=np.float64)
    if scale == "htk":
        return 2595.0 * np.log10(1.0 + freq / 700.0)
    f_sp = 200.0 / 3
    mels = freq / f_sp
    min_log_hz, logstep = 1000.0, np.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp
    log_region = freq >= min_log_hz
    mels = np.where(
        log_region, min_log_mel + np.log(np.maximum(freq, 1e-10) / min_log_hz) / logstep, mels
    )
    return mels


def mel_to_hz(mels: np.ndarray, scale: str = "slaney") -> np.ndarray:
    """Inverse of :func:`hz_to_mel`."""
    mels = np.asarray(mels, dtype=np.float64)
    if scale == "htk":
        return 700.0 * (10.0 ** (mels / 2595.0) - 1.0)
    f_sp = 200.0 / 3
    min_log_hz, logstep = 1000.0, np.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp
    return np.where(
        mels >= min_log_mel, min_log_hz * np.exp(logstep * (mels - min_log_mel)), f_sp * mels
    )


def mel_filterbank(
    sample_rate: int,
    n_fft: int,
    n_mels: int,
    fmin: float,
    fmax: float | None,
    *,
    scale: str = "slaney",
    norm: str = "slaney",
) -> np.ndarray:
    """Triangular mel filterbank, the same as ``librosa.filters.mel`` (``htk=scale == "htk"``,
    ``norm="slaney"`` or None) and torchaudio's ``melscale_fbanks``.

    Returns:
        float32 array of shape ``(n_mels, n_fft // 2 + 1)``.

    Raises:
        ConfigError: for sizes or frequencies outside the mel front-end budget, before
            anything is allocated.
    """
    check_mel_front_end(
        source="mel filterbank",
        sample_rate=sample_rate,
        n_fft=n_fft,
        hop_length=n_fft,
        win_length=n_fft,
        n_mels=n_mels,
        fmin=fmin,
        fmax={"fmax": fmax},
    )
    fmax = sample_rate / 2 if fmax is None else fmax
    fft_freqs = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    edges = mel_to_hz(
        np.linspace(hz_to_mel(fmin, scale), hz_to_mel(fmax, scale), n_mels + 2), scale
    )
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper)).astype(np.float32)
    if norm == "slaney":
        # Slaney normalisation: each triangle has unit area in Hz.
        weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None].astype(np.float32)
    return weights


def natural_log_clamp(x: Tensor) -> Tensor:
    """The authors' value compression: ``log(max(x, 1e-5))``."""
    return torch.log(torch.clamp(x, min=1e-5))


class MelSpectrogram(nn.Module):
    """Waveform to log-mel spectrogram (by default the authors' natural-log mel).

    Input ``(samples,)`` or ``(batch, samples)``; output ``(n_mels, frames)`` or
    ``(batch, n_mels, frames)`` with ``frames = (samples + 2 * pad - n_fft) // hop + 1``, where
    ``pad`` is ``(n_fft - hop) / 2`` (``samples / hop`` frames when ``samples`` is a multiple of
    ``hop``) or, with ``center``, ``n_fft / 2`` (one frame more, each half a hop earlier).
    Always computed in float32, also under autocast.

    ``compress`` maps the linear mel (non-negative, same shape) to the output values; None is
    :func:`natural_log_clamp`.
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
        mel_scale: str = "slaney",
        filter_norm: str = "slaney",
        periodic_window: bool = True,
        center: bool = False,
        pad_mode: str = "reflect",
        power: float = 1.0,
        magnitude_eps: float = 1e-9,
        compress: Callable[[Tensor], Tensor] | None = None,
    ) -> None:
        super().__init__()
        check_mel_front_end(
            sample_rate=sample_rate,
            n_fft=n_fft,
            hop_length=hop_length,
            win_length=win_length,
            n_mels=n_mels,
            fmin=fmin,
            fmax={"fmax": fmax},
            centred=center,
        )
        if mel_scale not in MEL_SCALES or filter_norm not in FILTER_NORMS:
            raise ValueError(f"unknown mel scale {mel_scale!r} or filter norm {filter_norm!r}")
        if pad_mode not in PAD_MODES:
            raise ValueError(f"pad_mode must be one of {PAD_MODES}, got {pad_mode!r}")
        self.sample_rate = sample_rate
        self.n_fft = n_fft
        self.hop_length = hop_length
        self.win_length = win_length
        self.n_mels = n_mels
        self.center = center
        self.pad = n_fft // 2 if center else (n_fft - hop_length) // 2
        self.pad_mode = "constant" if pad_mode == "zero" else "reflect"
        self.power = power
        self.magnitude_eps = magnitude_eps
        self.compress = natural_log_clamp if compress is None else compress
        basis = mel_filterbank(
            sample_rate, n_fft, n_mels, fmin, fmax, scale=mel_scale, norm=filter_norm
        )
        self.register_buffer("mel_basis", torch.from_numpy(basis), persistent=False)
        window = torch.hann_window(win_length, periodic=periodic_window)
        self.register_buffer("window", window, persistent=False)

    @classmethod
    def from_config(cls, config: MelConfig, *, for_loss: bool = False) -> MelSpectrogram:
        """The generator-input mel (``fmax``), or with ``for_loss`` the loss mel (``fmax_loss``)."""
        values = config.front_end()
        if for_loss:
            values["fmax"] = config.fmax_loss
        return cls(**values)

    @property
    def min_samples(self) -> int:
        """The shortest input that gives one frame (reflect padding needs more than ``pad``)."""
        return max(self.n_fft - 2 * self.pad, self.pad + 1)

    def num_frames(self, num_samples: int) -> int:
        """Frames produced for an input of ``num_samples`` samples."""
        return (num_samples + 2 * self.pad - self.n_fft) // self.hop_length + 1

    def linear(self, audio: Tensor) -> Tensor:
        """``(B, samples)`` float audio -> ``(B, n_mels, frames)`` mel before compression.

        Frames are independent, so a long input is transformed in blocks of frames whose STFT
        takes at most about :data:`~hifigan.frontend.MEL_BLOCK_BYTES`; inputs shorter than one
        block (minutes of audio) take the single-call path.
        """
        with torch.autocast(device_type=audio.device.type, enabled=False):
            x = F.pad(audio.float().unsqueeze(1), (self.pad, self.pad), mode=self.pad_mode)
            x = x.squeeze(1)
            frames = (x.shape[-1] - self.n_fft) // self.hop_length + 1
            per_frame = mel_frame_bytes(self.n_fft, self.n_mels) * max(x.shape[0], 1)
            block = max(1, MEL_BLOCK_BYTES // per_frame)
            if frames <= block:
                return self._linear_frames(x)
            parts = []
            for start in range(0, frames, block):
                stop = min(start + block, frames)
                span = x[:, start * self.hop_length : (stop - 1) * self.hop_length + self.n_fft]
                parts.append(self._linear_frames(span))
            return torch.cat(parts, dim=-1)

    def _linear_frames(self, x: Tensor) -> Tensor:
        """Padded ``(B, samples)`` float32 audio -> ``(B, n_mels, frames)`` linear mel."""
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
        energy = torch.view_as_real(spec).pow(2).sum(-1)
        if self.power == 2.0:
            magnitude = energy + self.magnitude_eps
        else:
            magnitude = torch.sqrt(energy + self.magnitude_eps)
            if self.power != 1.0:
                magnitude = magnitude.pow(self.power)
        return torch.matmul(self.mel_basis, magnitude)

    def forward(self, audio: Tensor) -> Tensor:
        """``(B, samples)`` or ``(samples,)`` float audio -> ``(B, n_mels, frames)`` log-mel."""
        squeeze = audio.dim() == 1
        if squeeze:
            audio = audio.unsqueeze(0)
        with torch.autocast(device_type=audio.device.type, enabled=False):
            mel = self.compress(self.linear(audio))
        return mel.squeeze(0) if squeeze else mel
