"""File input and output: audio, mel files, atomic writes.

Readers raise :class:`~hifigan.errors.InputError` with a one-line message that names the file.
Writers go through :func:`atomic_path`, so a crash or a full disk never leaves a half-written
file in place of a good one.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
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
def write_error(error: BaseException, folder: Path) -> str:
    """Why a write failed, in a few words (``No space left on device``, ``Permission denied``).

    Writers other than Python's own file objects (libsndfile, torch's zip writer) report a
    full disk in their own words, or as a bare position error; the free space of ``folder``
    tells what really happened.
    """
    if isinstance(error, OSError) and error.errno is not None:
        return error.strerror or os.strerror(error.errno)
    try:
        if shutil.disk_usage(folder).free < _LOW_SPACE:
            return os.strerror(errno.ENOSPC)
    except OSError:
        pass
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


# below this much free space a failed write is taken to be a full disk (a write fails for
# want of space only once the last blocks are taken)
_LOW_SPACE = 64 << 10


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block succeeds it replaces ``path``.

    The data are flushed to disk before the rename, so readers see either the old file or the
    complete new one. On any error the temporary file is removed and ``path`` is untouched;
    a failed write (full disk, no permission, whatever the writer) becomes a one-line
    :class:`HiFiGANError` ``PATH: cannot write (reason)``.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
    except OSError as e:
        reason = "a file stands where a folder should" if e.errno == errno.EEXIST else None
        raise HiFiGANError(
            f"cannot write ({reason or write_error(e, path.parent)})", path
        ) from None
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except HiFiGANError:
        tmp.unlink(missing_ok=True)
        raise
    except Exception as e:
        reason = write_error(e, path.parent)  # before the unlink frees the space again
        tmp.unlink(missing_ok=True)
        raise HiFiGANError(f"cannot write ({reason})", path) from None
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
def _unreadable_audio(path: Path, error: Exception) -> str:
    """A plain reason for libsndfile's failure to read ``path``."""
    try:
        with open(path, "rb") as f:
            f.read(1)
    except OSError as e:
        return f"cannot read audio ({(e.strerror or str(e)).lower()})"
    known = path.suffix.lower() in AUDIO_SUFFIXES
    kind = path.suffix[1:].upper() if known else "audio"
    # libsndfile prefixes "Error opening 'PATH': " and says little for formats it cannot parse
    detail = str(error).split(":")[-1].strip().rstrip(".")
    if not detail or detail in _VAGUE_LIBSNDFILE:
        return f"not a valid {kind} file"
    return f"not a valid {kind} file ({detail[0].lower() + detail[1:]})"


_VAGUE_LIBSNDFILE = {
    "System error",
    "Format not recognised",
    "File does not exist or is not a regular file (possibly a pipe?)",
}


def _looks_like_mp3(path: Path) -> bool:
    """An ID3 tag or an MPEG frame sync at the start (libmpg123 prints notes to the terminal
    about anything else before failing, so other files are refused before it sees them)."""
    with open(path, "rb") as f:
        head = f.read(3)
    return head == b"ID3" or (len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0)


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null for the block: libmpg123, inside libsndfile, prints
    "Note: ..." lines straight to the terminal for damaged MPEG data, which would interleave
    with our one-line messages. Python-level stderr is unaffected after the block."""
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def load_audio(path: str | Path, sample_rate: int | None = None) -> tuple[np.ndarray, int]:
    """Read an audio file as float32 mono.

    Multi-channel audio is averaged to mono and, when ``sample_rate`` is given, other rates are
    resampled (soxr, high quality); both with a :class:`HiFiGANWarning`, as are float samples
    beyond full scale. 16-bit PCM is scaled by 1/32768, exactly as the authors' loader does.

    Returns:
        ``(audio, rate)``: audio of shape ``(samples,)``, float32.
    """
    import soundfile as sf

    path = Path(path)
    if not path.exists():
        raise InputError("not found", path)
    if path.is_dir():
        raise InputError("is a folder, not an audio file", path)
    try:
        if path.suffix.lower() == ".mp3" and not _looks_like_mp3(path):
            raise InputError("not a valid MP3 file", path)
        with _native_stderr_silenced():
            data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except InputError:
        raise
    except Exception as e:  # libsndfile raises several types for unreadable files
        raise InputError(_unreadable_audio(path, e), path) from None
    if data.shape[0] == 0:
        raise InputError("audio file has no samples", path)
    if data.shape[1] > 1:
        warn(f"{path}: mixed {data.shape[1]} channels down to mono")
        audio = data.mean(axis=1)
    else:
        audio = data[:, 0]
    if not np.isfinite(audio).all():
        raise InputError("audio contains NaN or infinite samples", path)
    peak = float(np.abs(audio).max())
    if peak > 1.0:
        warn(f"{path}: samples reach {peak:.3g}, beyond full scale (1.0); 16-bit output clips")
    if sample_rate is not None and rate != sample_rate:
        warn(f"{path}: resampled from {rate} Hz to {sample_rate} Hz")
        audio = resample(audio, rate, sample_rate)
        rate = sample_rate
        if audio.size == 0:
            raise InputError(f"audio is too short to resample ({data.shape[0]} samples)", path)
        if not np.isfinite(audio).all():
            raise InputError(f"samples too large to resample (peak {peak:.3g})", path)
    return np.ascontiguousarray(audio, dtype=np.float32), int(rate)


# the peak level of normalised training audio (the authors' recipe)
PEAK = 0.95


def peak_normalize(audio: np.ndarray) -> np.ndarray:
    """``audio`` scaled so that its largest magnitude is :data:`PEAK` (silence stays silent)."""
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    return (audio / peak * PEAK).astype(np.float32) if peak > 0 else audio


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


# ---------------------------------------------------------------------- torch files
def torch_load(path: Path, what: str, error: type[HiFiGANError] = InputError) -> object:
    """``torch.load(path, weights_only=True)`` on CPU, with every failure as one line.

    A file that holds Python objects other than tensors and plain containers is refused
    (it could run code when unpickled); torch's advice to load it unsafely is not passed on.
    """
    import pickle

    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # torch names the offending class "unsupported global" (in either case)
        if "unsupported global" in str(e).lower():
            raise error(
                f"refused: the {what} holds Python objects, not just tensors", path
            ) from None
        raise error(f"cannot read {what}: the file is corrupt or truncated", path) from None
    except OSError as e:
        if e.errno is None:  # torch's zip reader reports damage as a bare OSError
            raise error(f"cannot read {what}: the file is corrupt or truncated", path) from None
        raise error(f"cannot read {what} ({(e.strerror or str(e)).lower()})", path) from None
    except Exception:
        # a damaged file fails anywhere inside the zip reader or the unpickler, with whatever
        # exception that code happens to raise (IndexError, KeyError, RuntimeError, ...)
        raise error(f"cannot read {what}: the file is corrupt or truncated", path) from None


# ---------------------------------------------------------------------- mel files
def load_mel(path: str | Path) -> np.ndarray:
    """Read a mel-spectrogram from ``.npy`` or ``.pt`` (a tensor, or a dict with key ``mel``).

    Suffixes are matched case-insensitively. Integer arrays are refused in both formats: a
    log-mel holds real values, so integers mean the file holds something else.

    Returns:
        float32 array of shape ``(n_mels, frames)``; a leading batch axis of size 1 is dropped.
    """
    import torch

    path = Path(path)
    if not path.exists():
        raise InputError("not found", path)
    if path.is_dir():
        raise InputError("is a folder, not a mel file", path)
    if path.suffix.lower() == ".npy":
        try:
            mel = np.load(path, allow_pickle=False)
        except Exception as e:
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise InputError(f"cannot read mel file ({reason})", path) from None
    else:
        obj = torch_load(path, "mel file")
        if isinstance(obj, dict) and "mel" in obj:
            obj = obj["mel"]
        if not isinstance(obj, torch.Tensor):
            raise InputError(f"expected a tensor, found {type(obj).__name__}", path)
        if not obj.is_floating_point():
            raise InputError(f"mel must hold floating-point values, got {obj.dtype}", path)
        mel = obj.detach().float().numpy()
    mel = np.asarray(mel)
    if mel.ndim == 3 and mel.shape[0] == 1:
        mel = mel[0]
    if mel.ndim != 2:
        raise InputError(f"mel must have shape (n_mels, frames), got {tuple(mel.shape)}", path)
    if not np.issubdtype(mel.dtype, np.floating):
        raise InputError(f"mel must hold floating-point values, got {mel.dtype}", path)
    with np.errstate(over="ignore"):  # float64 beyond float32's range: inf, refused by check_mel
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
