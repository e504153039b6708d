"""Request bodies in, response bodies out: safe ``.npy`` parsing, audio decoding, wav encoding.

A body is a mel in NumPy ``.npy`` format or an audio file; which one is decided by its first
bytes. The ``.npy`` header is parsed and checked (float dtype, shape, size equal to the data
that follows) before a single array byte is allocated, and pickled objects are never loaded.
Messages use the same wording as ``hifigan vocode``'s, without the file name.
"""

from __future__ import annotations

import ast
import io
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hifigan import HiFiGANError, InputError
from hifigan.io import UNKNOWN_FRAMES, check_mel, load_audio, to_int16

NPY_MAGIC = b"\x93NUMPY"
NPY_MAX_HEADER = 10_000
AUDIO_MAGIC = {b"RIFF": ".wav", b"fLaC": ".flac", b"OggS": ".ogg", b"FORM": ".aiff"}


class RequestError(Exception):
    """A request the service refuses: an HTTP status and a one-line message."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def without_path(error: HiFiGANError) -> str:
    """The message of a :class:`HiFiGANError` without the ``path: `` prefix that names a
    temporary file the client never saw."""
    text = str(error)
    if error.path is not None and text.startswith(f"{error.path}: "):
        return text[len(error.path) + 2 :]
    return text


def is_npy(body: bytes) -> bool:
    return body.startswith(NPY_MAGIC)


@dataclass(frozen=True)
class NpyHeader:
    dtype: np.dtype
    shape: tuple[int, ...]
    fortran_order: bool
    data_offset: int


def read_npy_header(body: bytes) -> NpyHeader:
    """Parse and validate the header of an ``.npy`` body without touching its data.

    Raises:
        RequestError: 400 for a malformed header, a non-float dtype or a shape that is not a
            mel's.
    """
    if len(body) < 10:
        raise RequestError(400, "cannot read mel file (truncated .npy header)")
    major = body[6]
    if major == 1:
        (length,), offset = struct.unpack("<H", body[8:10]), 10
    elif major in (2, 3):
        (length,), offset = struct.unpack("<I", body[8:12]), 12
    else:
        raise RequestError(400, f"cannot read mel file (unsupported .npy version {major})")
    if length > NPY_MAX_HEADER or offset + length > len(body):
        raise RequestError(400, "cannot read mel file (truncated or oversized .npy header)")
    try:
        # literal_eval evaluates literals only: no names, calls or attribute access
        header = ast.literal_eval(body[offset : offset + length].decode("latin1"))
        descr, fortran, shape = header["descr"], header["fortran_order"], header["shape"]
        dtype = np.dtype(descr) if isinstance(descr, str) else None
    except (ValueError, SyntaxError, KeyError, TypeError, UnicodeDecodeError, RecursionError):
        raise RequestError(400, "cannot read mel file (malformed .npy header)") from None
    if dtype is None or dtype.hasobject or not np.issubdtype(dtype, np.floating):
        shown = dtype if dtype is not None else "a structured type"
        raise RequestError(400, f"mel must hold floating-point values, got {shown}")
    if (
        not isinstance(shape, tuple)
        or not all(isinstance(n, int) and n >= 0 for n in shape)
        or not isinstance(fortran, bool)
    ):
        raise RequestError(400, "cannot read mel file (malformed .npy header)")
    if len(shape) == 3 and shape[0] == 1:
        pass  # a leading batch axis of one is dropped, as hifigan vocode does
    elif len(shape) != 2:
        raise RequestError(400, f"mel must have shape (n_mels, frames), got {shape}")
    data_offset = offset + length
    return NpyHeader(dtype, shape, fortran, data_offset)


def parse_mel(
    body: bytes, n_mels: int | None, hop_length: int, sample_rate: int, max_seconds: float
) -> np.ndarray:
    """An ``.npy`` body -> a checked float32 ``(n_mels, frames)`` array (``n_mels`` None: any
    band count, for a mel of another convention, whose converter checks it).

    Raises:
        RequestError: 400 for anything ``hifigan vocode`` would refuse, 413 when the mel
            stands for more than ``max_seconds`` of audio at ``hop_length`` and
            ``sample_rate`` (checked before allocating).
    """
    header = read_npy_header(body)
    shape = header.shape[1:] if len(header.shape) == 3 else header.shape
    seconds = shape[1] * hop_length / sample_rate
    if (n_mels is None or shape[0] == n_mels) and seconds > max_seconds:
        raise RequestError(
            413,
            f"mel of {shape[1]} frames is {seconds:.1f} s of audio, over this server's limit "
            f"of {max_seconds:g} s",
        )
    declared = header.dtype.itemsize * shape[0] * shape[1]
    if declared != len(body) - header.data_offset:
        raise RequestError(
            400,
            f"cannot read mel file (its header declares shape {header.shape} of "
            f"{header.dtype}, {declared} bytes, but {len(body) - header.data_offset} bytes "
            "follow)",
        )
    order = "F" if header.fortran_order else "C"
    data = np.frombuffer(body, dtype=header.dtype, offset=header.data_offset)
    # a writable copy: the body buffer is read-only, and torch wants writable arrays
    mel = data.reshape(shape, order=order).astype(np.float32, order="C")
    try:
        check_mel(mel, mel.shape[0] if n_mels is None else n_mels)
    except InputError as e:
        raise RequestError(400, str(e)) from None
    return mel


def audio_suffix(body: bytes) -> str:
    """A file suffix for an audio body from its magic bytes (libsndfile reads the content
    whatever the suffix; it only helps the messages)."""
    return AUDIO_MAGIC.get(body[:4], ".audio")


def decode_audio(
    body: bytes, sample_rate: int, max_seconds: float, notes: list[str] | None = None
) -> np.ndarray:
    """An audio file body -> float32 mono ``(samples,)`` at ``sample_rate``, read exactly as
    ``hifigan vocode`` reads a file (the same reader, mixing and resampling). What the reader
    did to the audio is appended to ``notes``, for the client (``hifigan vocode`` warns).

    Raises:
        RequestError: 400 for unreadable audio, 413 for audio longer than ``max_seconds``
            (checked from the file's header before decoding).
    """
    import soundfile as sf

    with tempfile.TemporaryDirectory(prefix="hifigan-serve-") as folder:
        path = Path(folder) / f"upload{audio_suffix(body)}"
        path.write_bytes(body)
        try:
            info = sf.info(str(path))
        except Exception:  # unreadable: load_audio below reports why, in the CLI's words
            info = None
        # a stream's header may not record its length (libsndfile then reports an immense
        # count): it is measured once decoded instead
        known = info is not None and 0 < info.frames < UNKNOWN_FRAMES
        if known and info.samplerate > 0:
            seconds = info.frames / info.samplerate
            if seconds > max_seconds:
                raise RequestError(
                    413,
                    f"audio is {seconds:.1f} s long, over this server's limit of {max_seconds:g} s",
                )
        try:
            audio, _ = load_audio(path, sample_rate)
        except HiFiGANError as e:
            raise RequestError(400, without_path(e)) from None
    seconds = audio.shape[0] / sample_rate
    if seconds > max_seconds:
        raise RequestError(
            413, f"audio is {seconds:.1f} s long, over this server's limit of {max_seconds:g} s"
        )
    if notes is not None and info is not None:
        if info.channels > 1:
            notes.append(f"mixed {info.channels} channels down to mono")
        if info.samplerate != sample_rate:
            notes.append(f"resampled from {info.samplerate} Hz to {sample_rate} Hz")
        peak = float(np.abs(audio).max())
        if peak > 1.0:
            notes.append(f"samples reach {peak:.3g}, beyond full scale (1.0); 16-bit output clips")
    return audio


def wav_bytes(audio: np.ndarray, sample_rate: int) -> bytes:
    """Mono float audio -> a 16-bit PCM wav file, byte for byte what ``hifigan vocode``
    writes (:func:`hifigan.io.save_wav`)."""
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, to_int16(audio.reshape(-1)), sample_rate, subtype="PCM_16", format="WAV")
    return buffer.getvalue()


def f32_bytes(audio: np.ndarray) -> bytes:
    """Raw little-endian float32 samples."""
    return np.ascontiguousarray(audio.reshape(-1), dtype="<f4").tobytes()


def header_text(lines: list[str]) -> str:
    """Lines joined by ``; `` for one response header; anything outside ASCII escaped (a
    header travels as Latin-1, and a name in a message may hold any character)."""
    return "; ".join(lines).encode("ascii", "backslashreplace").decode("ascii")
