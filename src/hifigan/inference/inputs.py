"""What :class:`~hifigan.inference.Vocoder` accepts and returns, checked.

The vocoder takes arrays and tensors from anywhere (TTS models, ``soundfile.read``, user
code), so every entry point validates its input before the generator runs, and its output
after: a NaN anywhere, a wrong shape or dtype, or a generator that overflowed becomes a
one-line :class:`~hifigan.errors.InputError` instead of NaN audio or a silent all-zero file.

``label`` arguments name the part of a larger input a message is about (``mel 2 of the
list``, ``chunk 5 of the stream``); indices count from 0, as Python's do.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..errors import InputError
from ..io import warn

# No log scale puts a float32 magnitude beyond this: natural log spans [-103.3, 88.7],
# 20 * log10 (dB of amplitude) [-897, 771]. Larger values cannot be a log-mel at all.
LOG_MEL_LIMIT = 1000.0
# 2-D audio whose smaller axis is at most this long is multi-channel audio
MAX_CHANNELS = 8


def labelled(label: str | None, message: str) -> str:
    """``message``, prefixed by ``label:`` when there is one."""
    return f"{label}: {message}" if label else message


def _float_tensor(x: object, what: str, expected: str, label: str | None) -> Tensor:
    """``x`` (a tensor or array of floating-point values) as a tensor, unchanged in dtype."""
    if isinstance(x, np.ndarray):
        if not np.issubdtype(x.dtype, np.floating):
            raise InputError(labelled(label, _dtype_problem(what, str(x.dtype))))
        if x.dtype not in (np.float16, np.float32, np.float64):  # e.g. longdouble
            with np.errstate(over="ignore"):  # beyond float32: inf, refused as non-finite
                x = x.astype(np.float64)
        x = np.ascontiguousarray(x)
        # torch warns about arrays it cannot write to (np.frombuffer, memory maps); copy them
        return torch.from_numpy(x if x.flags.writeable else x.copy())
    if isinstance(x, Tensor):
        if not x.is_floating_point():
            raise InputError(labelled(label, _dtype_problem(what, str(x.dtype))))
        return x.detach()
    raise InputError(labelled(label, f"expected {expected}; got {type(x).__name__}"))


def _dtype_problem(what: str, dtype: str) -> str:
    if what == "audio":
        hint = " (divide 16-bit PCM by 32768)" if dtype.endswith("int16") else ""
        return f"audio must hold floating-point samples in [-1, 1], got {dtype}{hint}"
    return f"{what} must hold floating-point values, got {dtype}"


def _non_finite(x: Tensor) -> int:
    return int((~torch.isfinite(x)).sum())


def as_mel(
    x: object,
    n_mels: int,
    *,
    label: str | None = None,
    batched: bool = True,
    allow_empty: bool = False,
) -> Tensor:
    """A mel input as a float32 tensor ``(B, n_mels, frames)``.

    Args:
        x: ``(n_mels, frames)``, or with ``batched`` also ``(batch, n_mels, frames)``; a
            tensor or array of floating-point values, all finite; zero frames only with
            ``allow_empty`` (a stream's chunk).
    """
    shapes = f"({n_mels}, frames)" + (f" or (batch, {n_mels}, frames)" if batched else "")
    expected = f"a mel of shape {shapes} as a tensor or array"
    if batched:
        expected += ", or a list of them"
    t = _float_tensor(x, "mel", expected, label)
    if t.dim() not in ((2, 3) if batched else (2,)) or t.shape[-2] != n_mels:
        raise InputError(labelled(label, f"mel must have shape {shapes}, got {tuple(t.shape)}"))
    if t.shape[-1] == 0 and not allow_empty:
        raise InputError(labelled(label, "mel has no frames"))
    bad = _non_finite(t)
    if bad:
        raise InputError(labelled(label, f"mel contains {bad} NaN or infinite values"))
    t = t.to(torch.float32)
    bad = _non_finite(t)  # float64 beyond float32's range
    if bad:
        raise InputError(labelled(label, f"mel holds {bad} values beyond float32's range"))
    return t if t.dim() == 3 else t.unsqueeze(0)


def as_audio(x: object, min_samples: int) -> Tensor:
    """Audio input as a float32 tensor ``(samples,)``.

    Accepts ``(samples,)``, and multi-channel audio as ``(samples, channels)`` (what
    ``soundfile.read`` returns) or ``(channels, samples)``, with at most
    :data:`MAX_CHANNELS` channels (the smaller axis), averaged to mono with a warning.
    """
    expected = "audio of shape (samples,) or (samples, channels) as a tensor or array"
    t = _float_tensor(x, "audio", expected, None)
    shape = tuple(t.shape)
    if t.dim() not in (1, 2):
        raise InputError(f"expected {expected}; got shape {shape}")
    axis = None if t.dim() == 1 else (1 if shape[1] <= shape[0] else 0)  # the channels
    if axis is not None and shape[axis] > MAX_CHANNELS:
        raise InputError(
            f"audio has shape {shape}: expected (samples,), or (samples, channels) or "
            f"(channels, samples) with at most {MAX_CHANNELS} channels"
        )
    samples = shape[0] if axis is None else shape[1 - axis]
    bad = _non_finite(t)
    if bad:
        raise InputError(f"audio contains {bad} NaN or infinite samples")
    if samples < min_samples:
        raise InputError(
            f"audio is too short: {samples} samples, at least {min_samples} needed for "
            "one mel frame"
        )
    if axis is not None:
        if shape[axis] > 1:
            warn(f"audio of shape {shape}: mixed {shape[axis]} channels down to mono")
        t = t.to(torch.float64).mean(dim=axis)
    mono = t.to(torch.float32)
    if _non_finite(mono):  # float64 beyond float32's range
        raise InputError(f"audio samples reach {_extreme(t)}, beyond float32's range")
    return mono


def _extreme(x: Tensor) -> str:
    """The value of ``x`` farthest from 0, as ``max 1e+38`` or ``min -1.2e+04``."""
    hi, lo = x.max().item(), x.min().item()
    return f"max {hi:.3g}" if hi >= -lo else f"min {lo:.3g}"


def range_problem(mel: Tensor) -> str | None:
    """Why ``mel`` cannot be a log-mel, or None when its values are within a log scale's reach."""
    if mel.numel() == 0 or mel.abs().max().item() <= LOG_MEL_LIMIT:
        return None
    return f"the mel values ({_extreme(mel)}) are far outside a log-mel's range"


def check_log_range(mel: Tensor | None, label: str | None = None) -> None:
    """Refuse mel values that no log-mel can hold (the generator's ``tanh`` would make finite
    noise of them)."""
    problem = None if mel is None else range_problem(mel)
    if problem is not None:
        limit = f"{LOG_MEL_LIMIT:g}"
        raise InputError(
            labelled(label, f"{problem} (no log scale reaches beyond ±{limit}); not vocoded")
        )


def check_audio_out(
    audio: Tensor, mel: Tensor | None, *, label: str | None = None, precision: str = "fp32"
) -> None:
    """Refuse what the generator made of ``mel``: non-finite audio, or any audio from values
    no log-mel can hold (:func:`check_log_range`)."""
    problem = None if mel is None else range_problem(mel)
    if not bool(torch.isfinite(audio).all()):
        if problem is not None:
            cause = problem
        elif mel is not None and mel.numel():
            cause = f"the mel values lie in [{mel.min().item():.3g}, {mel.max().item():.3g}]"
        else:
            cause = "the mel values lie within a log-mel's range"
        if precision == "fp16":
            cause += "; fp16 overflows: use bf16 or fp32"
        message = f"the generator produced non-finite audio (NaN or inf); {cause}"
        raise InputError(labelled(label, message))
    check_log_range(mel, label)


def frame_size(n_mels: int) -> str:
    """How many bytes one raw frame of ``n_mels`` float32 values takes, in words."""
    return f"a frame is {4 * n_mels} bytes: {n_mels} float32 values"


def raw_frames(data: bytes, n_mels: int, what: str = "message") -> np.ndarray:
    """Raw little-endian float32 mel frames, frame after frame (``frames x n_mels`` values),
    as a writable ``(n_mels, frames)`` float32 array.

    ``data`` must hold whole frames (``what`` names it in the error: ``message of 956 bytes
    is not a whole number of frames``); every value must be finite.
    """
    frame_bytes = 4 * n_mels
    if len(data) % frame_bytes:
        raise InputError(
            f"{what} of {len(data)} bytes is not a whole number of frames ({frame_size(n_mels)})"
        )
    frames = np.frombuffer(data, dtype="<f4").reshape(-1, n_mels)
    bad = int((~np.isfinite(frames)).sum())
    if bad:
        raise InputError(f"mel contains {bad} NaN or infinite values")
    return np.array(frames.T, dtype=np.float32, order="C")


def check_mel_out(mel: Tensor, audio: Tensor) -> None:
    """Refuse a non-finite mel computed from finite ``audio`` (samples far beyond full scale
    overflow the power spectrum)."""
    if not bool(torch.isfinite(mel).all()):
        raise InputError(
            f"the mel of this audio is not finite: its samples reach {_extreme(audio)}, "
            "far beyond full scale (1.0)"
        )


__all__ = [
    "LOG_MEL_LIMIT",
    "MAX_CHANNELS",
    "as_audio",
    "as_mel",
    "check_audio_out",
    "check_log_range",
    "check_mel_out",
    "frame_size",
    "labelled",
    "range_problem",
    "raw_frames",
]
