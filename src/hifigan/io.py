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
# The most an input may decode to (float32 audio samples of all channels, float32 mel values),
# checked from the file's header before anything is allocated: about 6.8 hours of mono
# 22.05 kHz audio, 3.1 hours of 48 kHz stereo. Larger files are refused, not half-read.
INPUT_BUDGET_BYTES = 2 << 30


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


# ---------------------------------------------------------------------- what a file is
# what :func:`sniff_file` finds, in words for messages
FILE_KINDS = {
    "wav": "a WAV audio file",
    "flac": "a FLAC audio file",
    "ogg": "an Ogg audio file",
    "mp3": "an MP3 audio file",
    "aiff": "an AIFF audio file",
    "npy": "a NumPy array (.npy)",
    "npz": "a NumPy archive (.npz)",
    "torch": "a PyTorch file (a checkpoint or a tensor)",
    "pickle": "a Python pickle",
    "zip": "a zip archive",
    "hdf5": "an HDF5 file",
    "json": "a JSON text file",
    "text": "a text file",
    "empty": "an empty file",
}
AUDIO_KINDS = ("wav", "flac", "ogg", "mp3", "aiff")


def sniff_file(path: Path) -> str | None:
    """What ``path`` holds, from its first bytes whatever its name says: a key of
    :data:`FILE_KINDS`, or None when unknown or unreadable."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return None
    if not head:
        return "empty"
    if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        return "wav"
    signatures = {b"fLaC": "flac", b"OggS": "ogg", b"\x93NUM": "npy", b"\x89HDF": "hdf5"}
    if head[:4] in signatures:
        return signatures[head[:4]]
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "aiff"
    if head[:3] == b"ID3" or (head[0] == 0xFF and len(head) > 1 and head[1] & 0xE0 == 0xE0):
        return "mp3"
    if head[:4] == b"PK\x03\x04":
        return _zip_kind(path)
    if head[0] == 0x80 and len(head) > 2 and head[1] <= 5:
        # torch's legacy format is a pickle that starts with a long integer (its magic number)
        return "torch" if head[2] == 0x8A else "pickle"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(head) - 4:  # not just a character cut at the end of the block
            return None
        text = head[: e.start].decode("utf-8")
    if all(c.isprintable() or c in "\t\r\n" for c in text):
        return "json" if text.lstrip()[:1] in ("{", "[") else "text"
    return None


def _zip_kind(path: Path) -> str | None:
    """A torch file, a NumPy archive or another zip archive; None when it cannot be opened."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError):
        return None  # damaged (a cut torch file, too): its reader says so
    if any(n.endswith("data.pkl") for n in names):
        return "torch"
    if names and all(n.endswith(".npy") for n in names):
        return "npz"
    return "zip"


def describe_file(path: Path) -> str | None:
    """``path``'s content in words (``a WAV audio file``, ``a text file``...), or None."""
    kind = sniff_file(path)
    return None if kind is None else FILE_KINDS[kind]


def _size(nbytes: float) -> str:
    """A byte count in words: ``10.7 GiB``, ``512 MiB``."""
    for unit, shift in (("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if nbytes >= 1 << shift:
            return f"{nbytes / (1 << shift):.3g} {unit}"
    return f"{int(nbytes)} bytes"


def check_input_budget(nbytes: float, what: str, path: str | Path | None) -> None:
    """Refuse an input that would take more than :data:`INPUT_BUDGET_BYTES` once decoded;
    ``what`` says what it is (``100 hours of 22050 Hz audio``) in the message."""
    if nbytes > INPUT_BUDGET_BYTES:
        raise InputError(
            f"{what} would take {_size(nbytes)} in memory, over the input limit of "
            f"{_size(INPUT_BUDGET_BYTES)}: split it into shorter files",
            path,
        )


# ---------------------------------------------------------------------- audio
def _unreadable_audio(path: Path, error: Exception) -> str:
    """A plain reason for libsndfile's failure to read ``path``."""
    try:
        with open(path, "rb") as f:
            f.read(1)
    except OSError as e:
        return f"cannot read audio ({(e.strerror or str(e)).lower()})"
    not_audio = _not_audio(path)
    if not_audio is not None:
        return not_audio
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


def _not_audio(path: Path) -> str | None:
    """``not a valid WAV file: it is a text file`` when ``path`` is recognisably something
    other than audio; None otherwise."""
    kind = sniff_file(path)
    if kind is None or kind in AUDIO_KINDS:
        return None
    suffix = path.suffix.lower()
    label = suffix[1:].upper() if suffix in AUDIO_SUFFIXES else "audio"
    message = f"not a valid {label} file: it is {FILE_KINDS[kind]}"
    if kind == "npy" and suffix in AUDIO_SUFFIXES:
        message += "; a mel named as audio? mels are .npy or .pt files"
    elif kind == "npy":
        message += "; a mel is vocoded with `hifigan vocode`, not read as audio"
    return message


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


def why_absent(path: Path) -> str:
    """Why ``path`` cannot be found: not there, or a symbolic link that leads nowhere."""
    if not path.is_symlink():
        return "not found"
    try:
        os.stat(path)
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "symlink loop (the links lead back to themselves)"
    return f"dangling symlink (to {os.readlink(path)}, which does not exist)"


def load_audio(path: str | Path, sample_rate: int | None = None) -> tuple[np.ndarray, int]:
    """Read an audio file as float32 mono.

    Multi-channel audio is averaged to mono and, when ``sample_rate`` is given, other rates are
    resampled (soxr, high quality); both with a :class:`HiFiGANWarning`, as are float samples
    beyond full scale. 16-bit PCM is scaled by 1/32768, exactly as the authors' loader does.

    Returns:
        ``(audio, rate)``: audio of shape ``(samples,)``, float32.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(why_absent(path), path)
    if path.is_dir():
        raise InputError("is a folder, not an audio file", path)
    try:
        if path.is_file() and path.stat().st_size == 0:
            raise InputError("empty file (0 bytes)", path)
        if path.suffix.lower() == ".mp3" and not _looks_like_mp3(path):
            raise InputError(_not_audio(path) or "not a valid MP3 file", path)
        with _native_stderr_silenced():
            data, rate = _decode(path)
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


# libsndfile's frame count for a stream whose header does not record its length
UNKNOWN_FRAMES = 1 << 62
# frames decoded per read when the length is unknown
_READ_BLOCK = 1 << 16


def _decode(path: Path) -> tuple[np.ndarray, int]:
    """``(frames, channels)`` float32 samples and the rate, refused from the header when they
    would exceed :data:`INPUT_BUDGET_BYTES`.

    A header that does not record the length (FLAC as streaming encoders write it, reported as
    an immense frame count; a WAV data chunk of size 0) is decoded by reading to the end of
    the stream, the budget checked as it grows.
    """
    import soundfile as sf

    # the bytes of the name: a str name that is not valid UTF-8 cannot be passed on
    name = os.fsencode(path)
    info = sf.info(name)
    if info.samplerate <= 0 or info.channels <= 0:
        raise InputError("not a valid audio file (no sample rate or channels)", path)
    frame_bytes = 4 * info.channels
    if info.frames >= UNKNOWN_FRAMES:
        return _read_to_end(name, frame_bytes, info.samplerate, path), info.samplerate
    if info.frames == 0 and info.format == "WAV":
        patched = _wav_with_length(path)
        if patched is not None:
            return _read_to_end(patched, frame_bytes, info.samplerate, path), info.samplerate
    check_input_budget(
        info.frames * frame_bytes,
        f"{_duration(info.frames / info.samplerate)} of {info.samplerate} Hz audio in "
        f"{info.channels} channel{'s' if info.channels > 1 else ''}",
        path,
    )
    data, rate = sf.read(name, dtype="float32", always_2d=True)
    return data, rate


def _duration(seconds: float) -> str:
    """``100 hours`` or ``12.5 s``."""
    hours = seconds / 3600
    return f"{hours:.3g} hours" if hours >= 1 else f"{seconds:.3g} s"


def _read_to_end(source: object, frame_bytes: int, rate: int, path: Path) -> np.ndarray:
    """Every frame of a stream whose length is unknown (a file name or a file object), read
    in blocks as a stream, the budget checked as they come."""
    import soundfile as sf

    class _Stream(sf.SoundFile):
        # soundfile seeks to its own count after every read, which libsndfile refuses for a
        # stream of unknown length
        def seekable(self) -> bool:
            return False

    blocks, total = [], 0
    with _Stream(source) as stream:
        while True:
            block = stream.read(_READ_BLOCK, dtype="float32", always_2d=True)
            if block.shape[0] == 0:
                break
            total += block.shape[0]
            check_input_budget(
                total * frame_bytes, f"more than {_duration(total / rate)} of audio", path
            )
            blocks.append(block)
    if not blocks:
        return np.zeros((0, 1), dtype=np.float32)
    return np.concatenate(blocks)


def _wav_with_length(path: Path) -> object | None:
    """The WAV file ``path`` in memory (an ``io.BytesIO``) with its data chunk's size set to
    the bytes that follow, when the header says 0 (as a streaming writer leaves it)."""
    import io

    check_input_budget(path.stat().st_size, "the WAV file", path)
    raw = bytearray(path.read_bytes())
    at = 12
    while at + 8 <= len(raw):
        chunk, length = raw[at : at + 4], int.from_bytes(raw[at + 4 : at + 8], "little")
        if chunk == b"data":
            following = len(raw) - at - 8
            if length != 0 or following <= 0:
                return None
            raw[at + 4 : at + 8] = min(following, 0xFFFFFFFF).to_bytes(4, "little")
            raw[4:8] = min(len(raw) - 8, 0xFFFFFFFF).to_bytes(4, "little")
            return io.BytesIO(bytes(raw))
        at += 8 + length + (length & 1)
    return None


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
        sf.write(os.fsencode(tmp), pcm, sample_rate, subtype="PCM_16", format="WAV")


# ---------------------------------------------------------------------- torch files
def torch_load(path: Path, what: str, error: type[HiFiGANError] = InputError) -> object:
    """``torch.load(path, weights_only=True)`` on CPU, with every failure as one line.

    A file that holds Python objects other than tensors and plain containers is refused
    (it could run code when unpickled); torch's advice to load it unsafely is not passed on.
    """
    import pickle

    import torch

    if path.is_dir():
        raise error(f"is a folder, not a {what}", path)
    # a file of another format is named for what it is; plain text (a damaged download, an
    # error page) is reported as damage, with what it holds
    other = _other_kind(path, what, ("torch", "pickle", "text", "empty"))
    if other is not None:
        raise error(other, path)
    kind = sniff_file(path)
    damaged = f"cannot read {what}: the file is corrupt or truncated"
    if kind in ("text", "empty"):
        damaged += f" ({FILE_KINDS[kind]})"
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # torch names the offending class "unsupported global" (in either case)
        if "unsupported global" in str(e).lower():
            raise error(
                f"refused: the {what} holds Python objects, not just tensors", path
            ) from None
        raise error(damaged, path) from None
    except OSError as e:
        if e.errno is None:  # torch's zip reader reports damage as a bare OSError
            raise error(damaged, path) from None
        raise error(f"cannot read {what} ({(e.strerror or str(e)).lower()})", path) from None
    except Exception:
        # a damaged file fails anywhere inside the zip reader or the unpickler, with whatever
        # exception that code happens to raise (IndexError, KeyError, RuntimeError, ...)
        raise error(damaged, path) from None


def _other_kind(path: Path, what: str, expected: tuple[str, ...]) -> str | None:
    """``is a WAV audio file, not a mel file: ...`` when ``path`` holds a recognisable kind of
    file other than ``expected`` (keys of :data:`FILE_KINDS`); None otherwise."""
    kind = sniff_file(path)
    if kind is None or kind in expected:
        return None
    hint = ""
    if kind in AUDIO_KINDS and "mel" in what:
        hint = f": make its mel with `hifigan mel {path} -o OUTDIR`"
    elif kind in AUDIO_KINDS:
        hint = " (audio is an input, not a model)" if what == "checkpoint" else ""
    return f"is {FILE_KINDS[kind]}, not a {what}{hint}"


def read_npy(path: Path, what: str) -> np.ndarray:
    """Load a ``.npy`` array (no pickles) after checking its header: the shape must fit
    :data:`INPUT_BUDGET_BYTES` as float32 and the file must hold all the data it promises,
    so a huge shape in a small file is refused before anything is allocated."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(f)
            else:
                shape, _, dtype = np.lib.format.read_array_header_2_0(f)
            offset = f.tell()
        count = 1
        for n in shape:
            count *= int(n)
        check_input_budget(
            count * max(dtype.itemsize, 4), f"an array of shape {tuple(shape)}", path
        )
        promised = count * dtype.itemsize
        held = path.stat().st_size - offset
        if not dtype.hasobject and held < promised:
            raise InputError(
                f"{what} is truncated: its header promises an array of shape {tuple(shape)} "
                f"({_size(promised)}), the file holds {_size(max(held, 0))}",
                path,
            )
        return np.load(path, allow_pickle=False)
    except InputError:
        raise
    except Exception as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise InputError(f"cannot read {what} ({reason})", path) from None


# keys of a checkpoint (ours or the authors'), as opposed to a dict holding a mel
_CHECKPOINT_KEYS = ("generator", "config", "mpd", "msd", "optim_g", "format")


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
    npy = path.suffix.lower() == ".npy"
    other = _other_kind(path, "mel file", ("npy",) if npy else ("torch", "pickle"))
    if other is not None:
        raise InputError(other, path)
    if npy:
        mel = read_npy(path, "mel file")
    else:
        check_input_budget(path.stat().st_size, "the mel file", path)
        obj = torch_load(path, "mel file")
        if isinstance(obj, dict) and "mel" in obj:
            obj = obj["mel"]
        if isinstance(obj, dict) and any(k in obj for k in _CHECKPOINT_KEYS):
            raise InputError(
                "is a model checkpoint, not a mel file: pass it as --model (the inputs are "
                "mel .npy/.pt or audio files)",
                path,
            )
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
    a folder contributes the files with one of ``suffixes``, and the links with such a name that
    lead nowhere (so that they are reported, not silently passed over). Hidden names (``.*``,
    such as macOS's ``._x.wav`` metadata files) are passed over.
    """
    files: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(
                f
                for f in p.rglob("*")
                if f.suffix.lower() in suffixes
                and not any(part.startswith(".") for part in f.relative_to(p).parts)
                and (f.is_file() or (f.is_symlink() and not f.exists()))
            )
            if not found:
                raise InputError(
                    f"folder holds no files of type {', '.join(suffixes)}{_other_files(p)}", p
                )
            files.extend(found)
        else:
            files.append(p)
    return files


def _other_files(folder: Path) -> str:
    """``; it holds 3 audio files (make their mels with ...)`` when a folder searched for one
    kind of input holds the other; empty otherwise."""
    audio = sum(1 for f in folder.rglob("*") if f.suffix.lower() in AUDIO_SUFFIXES)
    mels = sum(1 for f in folder.rglob("*") if f.suffix.lower() in MEL_SUFFIXES)
    if audio:
        return f"; it holds {audio} audio file(s) (`hifigan mel {folder} -o OUTDIR` makes mels)"
    if mels:
        return f"; it holds {mels} mel file(s) (`hifigan vocode {folder} -o OUTDIR` reads them)"
    return ""
