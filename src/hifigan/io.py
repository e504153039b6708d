"""File input and output: audio, mel files, atomic writes.

Readers raise :class:`~hifigan.errors.InputError` with a one-line message that names the file.
Writers go through :func:`atomic_path`, so a crash or a full disk never leaves a half-written
file in place of a good one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .errors import HiFiGANError, InputError

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".opus")
MEL_SUFFIXES = (".npy", ".pt")


class HiFiGANWarning(UserWarning):
    """Something was changed about an input (resampled, mixed to mono, trimmed...)."""


def warn(message: str) -> None:
    """Emit a :class:`HiFiGANWarning` (printed as one line by the CLI)."""
    warnings.warn(message, HiFiGANWarning, stacklevel=2)


# ---------------------------------------------------------------------- atomic writes
@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block succeeds it replaces ``path``.

    The data are flushed to disk before the rename, so readers see either the old file or the
    complete new one. On any error the temporary file is removed and ``path`` is untouched;
    ``OSError`` (full disk, no permission) becomes a one-line :class:`HiFiGANError`.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
    except OSError as e:
        raise HiFiGANError(f"cannot write ({e.strerror or e})", path) from None
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise HiFiGANError(f"cannot write ({e.strerror or e})", path) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def save_torch(obj: object, path: str | Path) -> None:
    """``torch.save`` atomically."""
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


# ---------------------------------------------------------------------- audio
def load_audio(path: str | Path, sample_rate: int | None = None) -> tuple[np.ndarray, int]:
    """Read an audio file as float32 mono in [-1, 1].

    Multi-channel audio is averaged to mono and, when ``sample_rate`` is given, other rates are
    resampled (soxr, high quality); both with a :class:`HiFiGANWarning`. 16-bit PCM is scaled by
    1/32768, exactly as the authors' loader does.

    Returns:
        ``(audio, rate)``: audio of shape ``(samples,)``, float32.
    """
    import soundfile as sf

    path = Path(path)
    if not path.exists():
        raise InputError("file not found", path)
    if path.is_dir():
        raise InputError("is a folder, not an audio file", path)
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as e:  # libsndfile raises several types for unreadable files
        reason = str(e).split(":")[-1].strip() or type(e).__name__
        raise InputError(f"cannot read audio ({reason})", path) from None
    if data.shape[0] == 0:
        raise InputError("audio file has no samples", path)
    if data.shape[1] > 1:
        warn(f"{path}: mixed {data.shape[1]} channels down to mono")
        audio = data.mean(axis=1)
    else:
        audio = data[:, 0]
    if not np.isfinite(audio).all():
        raise InputError("audio contains NaN or infinite samples", path)
    if sample_rate is not None and rate != sample_rate:
        warn(f"{path}: resampled from {rate} Hz to {sample_rate} Hz")
        audio = resample(audio, rate, sample_rate)
        rate = sample_rate
    return np.ascontiguousarray(audio, dtype=np.float32), int(rate)


def resample(audio: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Band-limited resampling of a 1-D float signal (soxr, 'HQ' quality)."""
    import soxr

    if rate_in == rate_out:
        return audio
    return soxr.resample(audio.astype(np.float32), rate_in, rate_out, quality="HQ")


def to_int16(audio: np.ndarray) -> np.ndarray:
    """Float audio in [-1, 1] to 16-bit PCM: scale by 32768, round to nearest, clip."""
    return np.clip(np.round(np.asarray(audio, dtype=np.float64) * 32768.0), -32768, 32767).astype(
        np.int16
    )


def save_wav(path: str | Path, audio: np.ndarray, sample_rate: int) -> None:
    """Write mono float audio as a 16-bit PCM wav file, atomically.

    Args:
        audio: shape ``(samples,)``, values in [-1, 1] (clipped outside).
    """
    import soundfile as sf

    pcm = to_int16(np.asarray(audio).reshape(-1))
    with atomic_path(path) as tmp:
        sf.write(str(tmp), pcm, sample_rate, subtype="PCM_16", format="WAV")


# ---------------------------------------------------------------------- mel files
def load_mel(path: str | Path) -> np.ndarray:
    """Read a mel-spectrogram from ``.npy`` or ``.pt`` (a tensor, or a dict with key ``mel``).

    Returns:
        float32 array of shape ``(n_mels, frames)``; a leading batch axis of size 1 is dropped.
    """
    import torch

    path = Path(path)
    if not path.exists():
        raise InputError("file not found", path)
    try:
        if path.suffix == ".npy":
            mel = np.load(path, allow_pickle=False)
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(obj, dict) and "mel" in obj:
                obj = obj["mel"]
            if not isinstance(obj, torch.Tensor):
                raise InputError(f"expected a tensor, found {type(obj).__name__}", path)
            mel = obj.detach().float().numpy()
    except InputError:
        raise
    except Exception as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise InputError(f"cannot read mel file ({reason})", path) from None
    mel = np.asarray(mel)
    if mel.ndim == 3 and mel.shape[0] == 1:
        mel = mel[0]
    if mel.ndim != 2:
        raise InputError(f"mel must have shape (n_mels, frames), got {tuple(mel.shape)}", path)
    if not np.issubdtype(mel.dtype, np.floating):
        raise InputError(f"mel must hold floating-point values, got {mel.dtype}", path)
    return np.ascontiguousarray(mel, dtype=np.float32)


def check_mel(mel: np.ndarray, n_mels: int, path: str | Path | None = None) -> None:
    """Raise :class:`InputError` unless ``mel`` is ``(n_mels, frames)`` with finite values."""
    if mel.ndim != 2 or mel.shape[0] != n_mels:
        hint = ""
        if mel.ndim == 2 and mel.shape[1] == n_mels:
            hint = "; it looks transposed: save it as (n_mels, frames)"
        raise InputError(
            f"mel has shape {tuple(mel.shape)}, but the model expects {n_mels} bands "
            f"(shape ({n_mels}, frames)){hint}",
            path,
        )
    if mel.shape[1] == 0:
        raise InputError("mel has no frames", path)
    if not np.isfinite(mel).all():
        bad = int((~np.isfinite(mel)).sum())
        raise InputError(f"mel contains {bad} NaN or infinite values", path)


def collect_inputs(inputs: list[str | Path], suffixes: tuple[str, ...]) -> list[Path]:
    """Expand files and folders (recursively) into a sorted list of files with ``suffixes``.

    Files named explicitly are kept whatever their suffix (so that the reader can report them);
    a folder contributes only files with one of ``suffixes``.
    """
    files: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in suffixes)
            if not found:
                raise InputError(f"folder holds no files of type {', '.join(suffixes)}", p)
            files.extend(found)
        else:
            files.append(p)
    return files
