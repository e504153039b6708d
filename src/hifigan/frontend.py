"""The mel front end every log-mel analysis names, and the budget each is checked against.

:class:`MelFrontEnd` holds the fields that a model config's ``mel`` section
(:class:`~hifigan.config.MelConfig`) and a toolkit's mel convention
(:class:`~hifigan.conventions.Convention`) share; :func:`check_mel_front_end` bounds their
values before a filterbank or a window is built.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError


@dataclass
class MelFrontEnd:
    """The analysis every log-mel front end names: a model config's ``mel`` section
    (:class:`MelConfig`) and a toolkit's mel convention (``hifigan.conventions.Convention``)
    alike. ``fmax`` None means the Nyquist frequency."""

    sample_rate: int = 22050
    n_fft: int = 1024
    hop_length: int = 256
    win_length: int = 1024
    n_mels: int = 80
    fmin: float = 0.0
    fmax: float | None = 8000.0

    def front_end(self) -> dict[str, Any]:
        """These fields by name: keyword arguments of :class:`~hifigan.mel.MelSpectrogram`."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(MelFrontEnd)}

    def front_end_problems(
        self, *, centred: bool = False, **more_fmax: float | None
    ) -> Iterator[tuple[str, str]]:
        """``(field, problem)`` of :func:`mel_front_end_problems` for these values;
        ``more_fmax`` names further maximum frequencies held to the same range."""
        values = self.front_end()
        fmax = {"fmax": values.pop("fmax"), **more_fmax}
        return mel_front_end_problems(**values, fmax=fmax, centred=centred)


# ---------------------------------------------------------------------- mel front-end budget
# Every mel front end (model configs, conventions, MelSpectrogram itself) is checked against
# these before its filterbank and window are built: a value far outside them is a typo or an
# attack, and some (n_fft 2**24) would take more memory than the machine has.
MEL_RANGES: dict[str, tuple[int, int]] = {
    "sample_rate": (1000, 768_000),
    "n_fft": (2, 65536),
    "win_length": (1, 65536),
    "hop_length": (1, 65536),
    "n_mels": (1, 2048),
}
# the memory the filterbank and the STFT of this much audio may take
MEL_MEMORY_BUDGET = 1 << 30
MEL_BUDGET_SECONDS = 60.0
# the STFT is computed in blocks of frames that take at most this much working memory
MEL_BLOCK_BYTES = 256 << 20


def mel_frame_bytes(n_fft: int, n_mels: int) -> int:
    """Working memory of one STFT frame: the complex spectrum, its squares, the magnitude and
    the mel values (float32), about seven float32 values per frequency bin."""
    return 4 * (7 * (n_fft // 2 + 1) + 2 * n_mels) + 8 * n_fft


def mel_memory_estimate(
    sample_rate: int, n_fft: int, hop_length: int, n_mels: int, seconds: float
) -> int:
    """Bytes taken by a mel front end's filterbank (built in float64, about five arrays of
    ``(n_mels + 2, n_fft // 2 + 1)``) and by the mel of ``seconds`` of audio: one STFT block
    (:data:`MEL_BLOCK_BYTES` at most) and the float32 ``(n_mels, frames)`` result."""
    filterbank = 5 * 8 * (n_mels + 2) * (n_fft // 2 + 1)
    frames = math.ceil(seconds * sample_rate / hop_length) + 1
    per_frame = mel_frame_bytes(n_fft, n_mels)
    block = min(per_frame * frames, max(MEL_BLOCK_BYTES, per_frame))
    return filterbank + block + 4 * n_mels * frames


def mel_front_end_problems(
    *,
    sample_rate: Any,
    n_fft: Any,
    hop_length: Any,
    win_length: Any,
    n_mels: Any,
    fmin: Any,
    fmax: dict[str, Any],
    centred: bool = False,
) -> Iterator[tuple[str, str]]:
    """``(field, problem)`` for every value of a mel front end outside :data:`MEL_RANGES`, the
    frequency range or the memory budget; nothing when it is sane.

    ``fmax`` maps each maximum-frequency field to its value (None: Nyquist). ``problem`` reads
    after the field's name (``must be ...``). The first problem in the sizes stops the checks
    that rely on them.
    """
    sizes = {
        "sample_rate": sample_rate,
        "n_fft": n_fft,
        "win_length": win_length,
        "hop_length": hop_length,
        "n_mels": n_mels,
    }
    for key, value in sizes.items():
        low, high = MEL_RANGES[key]
        if isinstance(value, bool) or not isinstance(value, int):
            yield key, f"must be an integer in [{low}, {high}], got {value!r}"
            return
        if value < 1:
            yield key, f"must be positive, got {value} (accepted: {low} to {high})"
            return
        if not low <= value <= high:
            yield key, f"({value}) must lie in [{low}, {high}]"
            return
    bins = n_fft // 2 + 1
    if n_mels > bins:
        yield "n_mels", f"({n_mels}) exceeds the {bins} frequency bins of n_fft ({n_fft})"
    if win_length > n_fft:
        yield "win_length", f"({win_length}) must not exceed n_fft ({n_fft})"
    if hop_length > n_fft:
        yield "hop_length", f"({hop_length}) must not exceed n_fft ({n_fft})"
    elif not centred and (n_fft - hop_length) % 2:
        yield (
            "hop_length",
            f"must leave n_fft - hop_length even without centred frames "
            f"(n_fft {n_fft}, hop_length {hop_length})",
        )
    nyquist = sample_rate / 2
    finite = isinstance(fmin, (int, float)) and not isinstance(fmin, bool)
    if not (finite and math.isfinite(fmin) and 0 <= fmin < nyquist):
        yield "fmin", f"({fmin}) must lie in [0, sample_rate / 2) = [0, {nyquist})"
        return
    for key, value in fmax.items():
        if value is None:
            continue
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not (number and math.isfinite(value) and fmin < value <= nyquist):
            yield key, f"({value}) must lie in (fmin, sample_rate / 2] = ({fmin}, {nyquist}]"
    estimate = mel_memory_estimate(sample_rate, n_fft, hop_length, n_mels, MEL_BUDGET_SECONDS)
    if estimate > MEL_MEMORY_BUDGET:
        yield (
            "n_fft",
            f"({n_fft}) with n_mels {n_mels} and hop_length {hop_length} at {sample_rate} Hz: "
            f"the filterbank and the mel of {MEL_BUDGET_SECONDS:g} s of audio would take "
            f"{estimate / 2**30:.1f} GiB, over the {MEL_MEMORY_BUDGET / 2**30:g} GiB budget "
            "(lower n_fft or n_mels, or raise hop_length)",
        )


def check_mel_front_end(source: str = "mel front end", **values: Any) -> None:
    """Raise :class:`ConfigError` (naming ``source`` and the field) for the first problem
    :func:`mel_front_end_problems` finds in ``values``."""
    for key, problem in mel_front_end_problems(**values):
        raise ConfigError(f"{key} {problem}", source)
