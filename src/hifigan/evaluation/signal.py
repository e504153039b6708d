"""Signal helpers for the metrics: resampling to a metric's rate and 16-bit conversion.

Two resamplers are offered because PESQ depends on the choice (we measure under 0.005 on the
authors' LJ_V1 outputs; an earlier measurement saw 0.026; see docs/evaluation.md):

* ``"sinc"``: windowed-sinc band-limited interpolation (Hann window, 6 zero crossings, cutoff
  0.99 of the lower Nyquist), the algorithm of the evaluation scripts that published vocoder
  numbers (CARGAN, BigVGAN, BigVSAN). Torch only. Default for PESQ and CREPE.
* ``"soxr"``: libsoxr 'HQ' (:func:`hifigan.io.resample`), used everywhere else in the package.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import HiFiGANError
from ..io import resample as soxr_resample

RESAMPLERS = ("sinc", "soxr")


def _sinc_kernel(
    rate_in: int, rate_out: int, *, zero_crossings: int = 6, rolloff: float = 0.99
) -> tuple[torch.Tensor, int]:
    """Polyphase windowed-sinc kernels, ``(rate_out, 1, 2 * width + rate_in)`` and ``width``.

    ``rate_in`` and ``rate_out`` are already divided by their greatest common divisor.
    """
    cutoff = min(rate_in, rate_out) * rolloff
    width = math.ceil(zero_crossings * rate_in / cutoff)
    offsets = torch.arange(-width, width + rate_in, dtype=torch.float64) / rate_in
    phases = -torch.arange(rate_out, dtype=torch.float64)[:, None] / rate_out
    t = (phases + offsets[None, :]) * cutoff
    t = t.clamp(-zero_crossings, zero_crossings)
    window = torch.cos(t * math.pi / zero_crossings / 2) ** 2
    t = t * math.pi
    sinc = torch.where(t == 0, torch.ones_like(t), torch.sin(t) / t)
    kernels = sinc * window * (cutoff / rate_in)
    return kernels.to(torch.float32).unsqueeze(1), width


def sinc_resample(audio: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Windowed-sinc resampling of ``(samples,)`` float audio; output has
    ``ceil(samples * rate_out / rate_in)`` samples."""
    if rate_in == rate_out:
        return np.asarray(audio, dtype=np.float32)
    g = math.gcd(rate_in, rate_out)
    up, down = rate_out // g, rate_in // g
    kernels, width = _sinc_kernel(down, up)
    x = torch.as_tensor(np.asarray(audio, dtype=np.float32)).view(1, 1, -1)
    n = x.shape[-1]
    x = F.pad(x, (width, width + down))
    with torch.inference_mode():
        y = F.conv1d(x, kernels, stride=down)  # (1, up, steps)
    y = y.transpose(1, 2).reshape(-1)
    return y[: math.ceil(up * n / down)].numpy().astype(np.float32)


def resample_for_metric(audio: np.ndarray, rate_in: int, rate_out: int, method: str) -> np.ndarray:
    """Resample ``(samples,)`` float audio with one of :data:`RESAMPLERS`."""
    if method == "sinc":
        return sinc_resample(audio, rate_in, rate_out)
    if method == "soxr":
        return soxr_resample(np.asarray(audio, dtype=np.float32), rate_in, rate_out)
    raise HiFiGANError(f"unknown resampler {method!r} (choose from {', '.join(RESAMPLERS)})")


def to_int16_truncated(audio: np.ndarray) -> np.ndarray:
    """Float audio to 16-bit PCM as the published PESQ scripts do: ``int16(x * 32768)``,
    truncating toward zero (clipped to the int16 range first)."""
    scaled = np.clip(np.asarray(audio, dtype=np.float64) * 32768.0, -32768, 32767)
    return np.trunc(scaled).astype(np.int16)
