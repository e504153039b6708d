"""Spectral distances between a reference and a generated waveform (torch and numpy only).

All functions take two time-aligned ``(samples,)`` float arrays of equal length at the same
sample rate, reference first, and return a float where 0 means identical.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from ..config import HiFiGANConfig
from ..mel import MelSpectrogram

# auraloss' MultiResolutionSTFTLoss() defaults: (fft size, hop, window length)
STFT_RESOLUTIONS = ((1024, 120, 600), (2048, 240, 1200), (512, 50, 240))


# the usual all-pass constants of mel-cepstral analysis (SPTK's table); others interpolated
MCEP_ALPHA = {8000: 0.31, 16000: 0.42, 22050: 0.455, 24000: 0.466, 44100: 0.544, 48000: 0.554}


def loss_mel(sample_rate: int = 22050) -> MelSpectrogram:
    """The authors' loss log-mel (the v1 preset's ``for_loss`` mel: 80 Slaney bands from 0 Hz
    to Nyquist, FFT 1024, hop 256, natural log floored at 1e-5) at ``sample_rate``. The
    ``mel_l1`` metric and the report's mel figures use it."""
    mel = dataclasses.replace(HiFiGANConfig.preset("v1").mel, sample_rate=sample_rate)
    return MelSpectrogram.from_config(mel, for_loss=True)


def mcep_alpha(sample_rate: int) -> float:
    """The all-pass constant that approximates the mel scale at ``sample_rate``."""
    if sample_rate in MCEP_ALPHA:
        return MCEP_ALPHA[sample_rate]
    rates = sorted(MCEP_ALPHA)
    return float(np.interp(np.log(sample_rate), np.log(rates), [MCEP_ALPHA[r] for r in rates]))


def _tensor(audio: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(audio, dtype=np.float32))


def _stft_magnitude(
    audio: torch.Tensor, n_fft: int, hop_length: int, win: int, eps: float = 1e-8
) -> torch.Tensor:
    """``(freq, frames)`` magnitude of a centred (reflect-padded) Hann STFT,
    ``sqrt(max(re^2 + im^2, eps))``."""
    spec = torch.stft(
        audio,
        n_fft,
        hop_length=hop_length,
        win_length=win,
        window=torch.hann_window(win),
        center=True,
        pad_mode="reflect",
        return_complex=True,
    )
    return torch.sqrt(torch.clamp(spec.real**2 + spec.imag**2, min=eps))


@torch.inference_mode()
def stft_distance(
    reference: np.ndarray,
    generated: np.ndarray,
    resolutions: tuple[tuple[int, int, int], ...] = STFT_RESOLUTIONS,
) -> float:
    """Multi-resolution STFT distance, as auraloss' ``MultiResolutionSTFTLoss()(gen, ref)``.

    Per resolution: spectral convergence ``||R - G||_F / ||R||_F`` plus the mean absolute
    difference of natural-log magnitudes; averaged over the resolutions.
    """
    ref, gen = _tensor(reference), _tensor(generated)
    total = 0.0
    for n_fft, hop_length, win in resolutions:
        r = _stft_magnitude(ref, n_fft, hop_length, win)
        g = _stft_magnitude(gen, n_fft, hop_length, win)
        convergence = torch.linalg.norm(r - g) / torch.linalg.norm(r)
        log_l1 = torch.mean(torch.abs(torch.log(r) - torch.log(g)))
        total += float(convergence + log_l1)
    return total / len(resolutions)


@torch.inference_mode()
def mel_l1(reference: np.ndarray, generated: np.ndarray, mel: MelSpectrogram) -> float:
    """Mean absolute difference of the log-mels (natural log) that ``mel`` computes.

    The ``mel_l1`` metric passes :func:`loss_mel` (80 bands from 0 Hz to Nyquist, 11.025 kHz):
    the validation mel error of the authors' trainer. The generator-input mel (fmax 8 kHz) is
    what Griffin-Lim inverts, so it would rank Griffin-Lim too well.
    """
    r = mel(_tensor(reference))
    g = mel(_tensor(generated))
    return float(torch.mean(torch.abs(r - g)))


@torch.inference_mode()
def log_spectral_distance(
    reference: np.ndarray, generated: np.ndarray, n_fft: int = 2048, hop_length: int = 512
) -> float:
    """Log-spectral distance: per frame, the RMS over frequency of
    ``log10(|R|^2) - log10(|G|^2)`` (power floored at 1e-8), averaged over frames.

    The convention of NU-Wave and AudioSR (``log10`` units, Hann window 2048, hop 512).
    """
    r = _stft_magnitude(_tensor(reference), n_fft, hop_length, n_fft) ** 2
    g = _stft_magnitude(_tensor(generated), n_fft, hop_length, n_fft) ** 2
    diff = torch.log10(r.clamp(min=1e-8)) - torch.log10(g.clamp(min=1e-8))
    return float(torch.sqrt(torch.mean(diff**2, dim=0)).mean())


# ---------------------------------------------------------------------- mel-cepstral distortion
def _warp_inverse(omega: np.ndarray, alpha: float) -> np.ndarray:
    """The linear frequency whose first-order all-pass warping with ``alpha`` is ``omega``."""
    return omega - 2.0 * np.arctan(alpha * np.sin(omega) / (1.0 + alpha * np.cos(omega)))


def mel_cepstrum(
    audio: np.ndarray,
    *,
    order: int = 24,
    alpha: float = 0.455,
    n_fft: int = 1024,
    hop_length: int = 256,
) -> np.ndarray:
    """Mel-cepstra ``(frames, order + 1)`` (``c0`` first) of ``(samples,)`` float audio.

    Each Blackman-windowed frame's log amplitude spectrum is sampled on a mel-warped frequency
    axis (first-order all-pass warping with ``alpha``; 0.455 is the usual value at 22.05 kHz)
    and turned into cepstral coefficients by a cosine transform.
    """
    x = np.asarray(audio, dtype=np.float64)
    if x.shape[0] < n_fft:
        x = np.pad(x, (0, n_fft - x.shape[0]))
    n_frames = 1 + (x.shape[0] - n_fft) // hop_length
    idx = np.arange(n_fft)[None, :] + hop_length * np.arange(n_frames)[:, None]
    frames = x[idx] * np.blackman(n_fft)[None, :]
    log_amp = np.log(np.maximum(np.abs(np.fft.rfft(frames, axis=1)), 1e-8))
    # sample the log spectrum at the linear frequencies that map to a uniform mel grid
    n_bins = n_fft // 2 + 1
    warped = np.linspace(0.0, np.pi, n_bins)
    linear_bins = _warp_inverse(warped, alpha) / np.pi * (n_bins - 1)
    lo = np.clip(np.floor(linear_bins).astype(int), 0, n_bins - 2)
    frac = linear_bins - lo
    on_mel_axis = log_amp[:, lo] * (1.0 - frac) + log_amp[:, lo + 1] * frac
    # real cepstrum of the even, warped log spectrum: c_m = (1/N) sum_k L(k) cos(pi m k / (K-1))
    m = np.arange(order + 1)[:, None]
    k = np.arange(n_bins)[None, :]
    weights = np.cos(np.pi * m * k / (n_bins - 1))
    weights[:, 1:-1] *= 2.0
    return on_mel_axis @ weights.T / (2 * (n_bins - 1))


def mel_cepstral_distortion(
    reference: np.ndarray, generated: np.ndarray, sample_rate: int = 22050
) -> float:
    """Mel-cepstral distortion in dB: ``10 / ln(10) * sqrt(2 * sum_d (c_d - c'_d)^2)`` over
    ``c1..c24`` of frame-aligned mel-cepstra (energy ``c0`` excluded), averaged over frames.
    No time warping (copy synthesis is sample-aligned, so DTW would only hide timing errors).
    At other rates than 22.05 kHz the all-pass constant follows the rate and the frames keep
    about 46 ms (FFT 1024 up to 32 kHz, 2048 above)."""
    n_fft = 1024 if sample_rate <= 32000 else 2048
    kwargs = {"alpha": mcep_alpha(sample_rate), "n_fft": n_fft, "hop_length": n_fft // 4}
    r = mel_cepstrum(reference, **kwargs)[:, 1:]
    g = mel_cepstrum(generated, **kwargs)[:, 1:]
    per_frame = np.sqrt(2.0 * np.sum((r - g) ** 2, axis=1))
    return float(10.0 / np.log(10.0) * per_frame.mean())
