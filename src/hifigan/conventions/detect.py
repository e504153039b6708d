"""Which convention is this mel? Detection from statistics, identification with the audio, and
a guard for the vocoder's input.

Statistics tell value families apart: the log base and floor, dB ranges, ``ln(x + 1)``,
normalised values, the band count and the level (filter normalisation, FFT size). They cannot
tell conventions apart that give the same numbers up to a half-hop shift or a different
``fmax`` (``hifigan``, ``bigvgan-22k``, ``tacotron2``, ``nemo``, ``nemo-fastpitch``); the audio
can (:func:`identify_convention`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError
from .convert import level_offset, looks_normalized
from .spec import Convention, convention_names, load_convention
from .values import expand, floor_linear, floor_value

# Typical speech in the authors' convention (natural log, 22.05 kHz, 80 Slaney bands), with wide
# margins for loudness, noise floor and synthesis: median, 99th percentile, 1st-99th spread.
TYPICAL_MEDIAN = (-10.0, -2.6)
TYPICAL_P99 = (-6.0, 2.0)
TYPICAL_SPREAD = (5.5, 17.0)
# the named conventions from the most to the least common (ties in detection go first to these)
PREFERENCE = (
    "hifigan",
    "tacotron2",
    "bigvgan-22k",
    "nemo",
    "nemo-fastpitch",
    "coqui-tacotron2",
    "bigvgan-24k",
    "bigvgan-44k",
    "vocos",
    "coqui",
    "parallel-wavegan",
    "parallel-wavegan-24k",
    "espnet",
    "nemo-log1p",
)
# a log-mel of any convention stays far below this; linear or power spectra do not
MAX_LOG_VALUE = 1e4
# the guard reads the statistics of at most this many evenly spaced frames: percentiles are
# as stable, and the check's cost stops growing with the mel's length
GUARD_FRAMES = 256
# the pooled statistics of several mels read at most this many frames in all (at least
# POOL_MIN_FRAMES of each mel, with its extremes)
POOL_FRAMES = 4096
POOL_MIN_FRAMES = 16
# within this many nepers above an ``ln(x + c)`` floor lie the values of x below c / 10
APPROACH = 0.1
# values this close (relative) to a floor sit exactly at it: float32 rounding, not signal
EXACT = 1e-5


@dataclass(frozen=True)
class Candidate:
    """One convention a mel may follow.

    ``score``: detection plausibility, higher is better (0 fits typical speech, +2 for values
    exactly at the floor, minus a neper outside the typical range or more for a violated
    constraint); identification: minus the error. ``error``: with
    audio, the mean absolute difference between the mel and the convention's mel of that audio
    (in the convention's units). ``same_values``: conventions with the same statistics.
    """

    name: str
    score: float
    reasons: tuple[str, ...] = ()
    error: float | None = None
    frames: int | None = None
    same_values: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class MelStatistics:
    """Summary statistics of one ``(n_mels, frames)`` mel."""

    n_mels: int
    frames: int
    minimum: float
    maximum: float
    percentiles: dict[int, float]
    std: float
    at_minimum: float
    normalized: bool
    band_means: np.ndarray
    empty_top_bands: int

    def to_dict(self) -> dict:
        return {
            "n_mels": self.n_mels,
            "frames": self.frames,
            "min": self.minimum,
            "max": self.maximum,
            "percentiles": {str(k): v for k, v in self.percentiles.items()},
            "std": self.std,
            "fraction_at_min": self.at_minimum,
            "looks_normalized": self.normalized,
            "band_means": [round(float(v), 4) for v in self.band_means],
            "empty_top_bands": self.empty_top_bands,
        }


def mel_statistics(mel: np.ndarray) -> MelStatistics:
    """Statistics of ``mel`` ``(n_mels, frames)`` (values as stored)."""
    m = np.asarray(mel, dtype=np.float64)
    lo = float(m.min())
    pct = {p: float(v) for p, v in zip((1, 5, 50, 95, 99), np.percentile(m, [1, 5, 50, 95, 99]))}
    at_floor = np.abs(m - lo) <= EXACT * max(1.0, abs(lo))
    # a band is empty when (nearly) all its frames sit at the overall minimum
    empty = at_floor.mean(axis=1) > 0.95
    top = int(np.argmin(empty[::-1])) if not empty.all() else len(empty)
    return MelStatistics(
        n_mels=m.shape[0],
        frames=m.shape[1],
        minimum=lo,
        maximum=float(m.max()),
        percentiles=pct,
        std=float(m.std()),
        at_minimum=float(at_floor.mean()),
        normalized=_standardised(m),
        band_means=m.mean(axis=1),
        empty_top_bands=top,
    )


def _standardised(m: np.ndarray) -> bool:
    """Per-band mean ~0 and deviation ~1, with values of both signs: a standardised mel has
    about as many negative values as positive ones, a non-negative one (``ln(x + 1)``) none."""
    negative = float((m < 0).mean())
    return 0.15 < negative < 0.85 and looks_normalized(m)


# ---------------------------------------------------------------------- detection
def detect_convention(
    mel: np.ndarray, candidates: list[str | Convention] | None = None
) -> list[Candidate]:
    """Rank the named conventions (or ``candidates``: names, files or :class:`Convention`
    objects) by how well ``mel``'s statistics fit.

    Returns candidates of the same band count, best first; an empty list if none has that
    many bands. Conventions with identical statistics share a score and list each other in
    ``same_values``.
    """
    check_log_mel(mel)
    return _rank(np.asarray(mel), candidates)


@dataclass(frozen=True)
class SharedDetection:
    """What several mels of one source (``(n_mels, frames_i)`` each, one band count) follow.

    ``ranked``: the candidates ranked on the mels' pooled statistics, best first. ``alone``:
    for each mel, its own ranking, or why on its own it reads as no log-mel at all (a quiet
    ``ln(x + 1)`` mel looks like a linear one).
    """

    ranked: list[Candidate]
    alone: list[list[Candidate] | str]


def detect_shared_convention(
    mels: Sequence[np.ndarray], candidates: list[str | Convention] | None = None
) -> SharedDetection:
    """Rank conventions by how well the pooled statistics of ``mels`` fit: every mel gives
    about as many evenly spaced frames (and its extremes), so that quiet mels show the floor
    and loud ones the level, together.

    Raises :class:`InputError` for a mel no log-mel can be (wrong form, NaN, huge values),
    for mels of different band counts, and when every mel looks like a linear-magnitude one.
    """
    arrays = [np.asarray(m) for m in mels]
    if not arrays:
        raise InputError("no mels to detect a convention from")
    for m in arrays:
        check_log_values(m)
    bands = {m.shape[0] for m in arrays}
    if len(bands) > 1:
        raise InputError(f"mels of different band counts ({sorted(bands)}) share no convention")
    alone: list[list[Candidate] | str] = []
    for m in arrays:
        problem = linear_problem(m)
        alone.append(problem if problem is not None else _rank(thinned(m), candidates))
    usable = [thinned(m) for m, a in zip(arrays, alone) if not isinstance(a, str)]
    if not usable:
        raise InputError(str(alone[0]))
    return SharedDetection(_rank(pool_mels(usable), candidates, usable), alone)


def pool_mels(mels: Sequence[np.ndarray], frames: int = POOL_FRAMES) -> np.ndarray:
    """Evenly spaced frames of every mel side by side, ``(n_mels, about frames)`` float64:
    each mel gives about as many (at least :data:`POOL_MIN_FRAMES`, and its extremes)."""
    per = max(POOL_MIN_FRAMES, frames // len(mels))
    return np.concatenate([thinned(np.asarray(m, np.float64), per) for m in mels], axis=1)


def _rank(
    mel: np.ndarray,
    candidates: list[str | Convention] | None,
    files: Sequence[np.ndarray] | None = None,
) -> list[Candidate]:
    """``mel``'s candidates ranked, best first (``files``: the mels that ``mel`` pools)."""
    stats = mel_statistics(mel)
    names = candidates if candidates is not None else convention_names()
    found = []
    for name in names:
        c = load_convention(name)
        if c.n_mels != stats.n_mels:
            continue
        score, reasons = _plausibility(np.asarray(mel, dtype=np.float64), stats, c, files)
        found.append((c, score, reasons))
    # ties (same statistics) go to the more common convention: the table order of PREFERENCE
    rank = {n: i for i, n in enumerate(PREFERENCE)}
    ranked = sorted(found, key=lambda item: (-item[1], rank.get(item[0].name, len(rank))))
    out = []
    for c, score, reasons in ranked:
        twins = tuple(
            o.name
            for o, s, _ in ranked
            if o.name != c.name and _value_family(o) == _value_family(c)
        )
        out.append(Candidate(c.name, round(score, 3), tuple(reasons), same_values=twins))
    return out


def _value_family(c: Convention) -> tuple:
    """What statistics can see of a convention."""
    return (c.n_mels, c.compression, c.normalization.kind != "none", round(level_offset(c), 1))


def _plausibility(
    m: np.ndarray, s: MelStatistics, c: Convention, files: Sequence[np.ndarray] | None = None
) -> tuple[float, list[str]]:
    """Score and reasons for ``m`` following ``c``: 0 when it looks like typical speech in
    ``c``, +2 when values sit exactly at ``c``'s floor, less for every neper outside the typical
    range and every violated constraint.

    With ``files`` (the mels ``m`` pools), the level and range are judged per mel and the
    median file's misses count: a mel's loudness and spread belong to it, not to the pool."""
    penalty, reasons = _value_cues(m, s, c)
    if s.normalized and c.normalization.kind != "none":
        reasons.append("per-band mean ~0 and deviation ~1: normalised with its stats file")
        return -penalty + 1.0, reasons
    if files is None:
        miss, missed = _range_cues(m, c)
    else:
        judged = sorted((_range_cues(f, c) for f in files), key=lambda item: item[0])
        miss, missed = judged[(len(judged) - 1) // 2]
        missed = [f"median mel: {r}" for r in missed]
    penalty += miss
    reasons += missed
    if penalty <= 0 and not any("floor" in r for r in reasons):
        reasons.append(f"level and range fit typical speech read as {c.name}")
    return -penalty, reasons


def _value_cues(m: np.ndarray, s: MelStatistics, c: Convention) -> tuple[float, list[str]]:
    """Penalty and reasons from the values' sign, floor and clip level read as ``c``."""
    comp = c.compression
    reasons: list[str] = []
    penalty = 0.0
    floor = floor_value(comp)
    tol = 1e-3 * max(1.0, abs(floor))
    exact = EXACT * max(1.0, abs(floor))
    if s.minimum < floor - tol:
        penalty += 10.0 + min(floor - s.minimum, 10.0)
        reasons.append(f"values go below its floor {floor:.4g} (min {s.minimum:.4g})")
    if comp.kind == "db_normalized" and comp.clip and s.maximum > comp.max_abs_value + tol:
        penalty += 10.0
        reasons.append(f"values exceed its clip level {comp.max_abs_value:g}")
    # ln(x + c) comes ever closer to ln(c) as x falls, and reaches it only for x = 0; a clamp
    # max(x, c) stacks everything below c exactly on its floor
    near = float(((m > floor + exact) & (m <= floor + APPROACH)).mean())
    approaches = s.minimum > floor + exact and near > 1e-3
    if s.at_minimum > 1e-3 and abs(s.minimum - floor) <= exact:
        penalty -= 2.0
        reasons.append(f"{100 * s.at_minimum:.1f}% of values sit exactly at its floor {floor:.4g}")
    elif approaches and comp.kind.endswith("_add"):
        penalty -= 2.0
        reasons.append(
            f"{100 * near:.2f}% of values come within {APPROACH:g} of its floor {floor:.4g} "
            "without reaching it, as ln(x + c) does"
        )
    elif approaches and comp.kind.endswith("_clamp"):
        penalty += 2.0
        reasons.append(
            f"{100 * near:.2f}% of values lie just above its floor {floor:.4g} and none at it: "
            "an offset ln(x + c), not a clamp"
        )
    elif s.at_minimum > 5e-3:
        # a shared minimum that is not this convention's floor: another one's floor or clip
        penalty += 3.0
        reasons.append(
            f"{100 * s.at_minimum:.1f}% of values sit at {s.minimum:.4g}, which is not its "
            f"floor {floor:.4g}"
        )
    return penalty, reasons


def _range_cues(m: np.ndarray, c: Convention) -> tuple[float, list[str]]:
    """Nepers by which ``m``'s level and spread, read as ``c``, miss typical speech."""
    comp = c.compression
    # the level and spread this mel would have in the authors' convention
    # a huge log value read as log10 overflows to inf: cap it so the percentiles stay finite
    x = np.asarray(m, dtype=np.float64)
    x = np.minimum(expand(torch.from_numpy(x), comp).numpy(), np.finfo(np.float64).max)
    nep = np.log(np.maximum(x, 1e-12) ** (1.0 / c.power)) - level_offset(c)
    nep = np.maximum(nep, math.log(max(floor_linear(comp), 1e-12)) - level_offset(c))
    p1, p50, p99 = np.percentile(nep, [1, 50, 99])
    penalty = 0.0
    reasons = []
    for label, value, (lo, hi) in (
        ("median", p50, TYPICAL_MEDIAN),
        ("99th percentile", p99, TYPICAL_P99),
        ("1st-99th percentile spread", p99 - p1, TYPICAL_SPREAD),
    ):
        if not lo <= value <= hi:
            miss = lo - value if value < lo else value - hi
            penalty += miss
            reasons.append(
                f"{label} {value:.2f} nepers (read as {c.name}) is outside typical speech "
                f"[{lo:g}, {hi:g}]"
            )
    return penalty, reasons


def check_log_mel(mel: np.ndarray, path: str | Path | None = None) -> None:
    """Raise :class:`InputError` unless ``mel`` can be a log-mel of some convention."""
    check_log_values(mel, path)
    problem = linear_problem(mel)
    if problem is not None:
        raise InputError(problem, path)


def check_log_values(mel: np.ndarray, path: str | Path | None = None) -> None:
    """Raise :class:`InputError` for what no log-mel can be: another shape than ``(n_mels,
    frames)``, NaN or infinite values, values beyond :data:`MAX_LOG_VALUE`."""
    m = np.asarray(mel)
    if m.ndim != 2 or m.shape[1] == 0:
        raise InputError(f"mel must have shape (n_mels, frames), got {tuple(m.shape)}", path)
    if not np.isfinite(m).all():
        raise InputError("mel contains NaN or infinite values", path)
    hi = float(np.abs(m).max())
    if hi > MAX_LOG_VALUE:
        raise InputError(
            f"values reach {hi:.3g}: not a log-mel of any convention (a linear or power "
            "spectrogram? take the log first, or compute it with `hifigan mel`)",
            path,
        )


def linear_problem(mel: np.ndarray) -> str | None:
    """Why ``mel`` looks like a linear-magnitude mel rather than a log-mel, or None.

    A quiet ``ln(x + 1)`` mel looks the same (``ln(1 + x)`` is ``x`` for small ``x``): mels of
    one source are better judged together (:func:`detect_shared_convention`)."""
    m = np.asarray(mel)
    if m.min() >= 0 and m.size >= 64:
        p50, p99 = np.percentile(m, [50, 99])
        if p99 > 0 and p50 / p99 < 0.03 and m.max() > 1.5:
            return (
                f"all values are >= 0 with a median {p50:.3g} far below the 99th percentile "
                f"{p99:.3g}: this looks like a linear-magnitude mel, not a log-mel"
            )
    return None


# ---------------------------------------------------------------------- identification
def identify_convention(
    mel: np.ndarray,
    audio: np.ndarray,
    sample_rate: int,
    candidates: list[str] | None = None,
) -> list[Candidate]:
    """Rank conventions by how closely their mel of ``audio`` (``(samples,)`` at
    ``sample_rate``) matches ``mel``: exact identification for a mel computed from that audio.

    A normalised mel is compared per band after standardising both. Frame counts may differ by
    up to two; the first common frames are compared.
    """
    from ..io import resample

    m = np.asarray(mel, dtype=np.float64)
    normalized = looks_normalized(m)
    out = []
    for name in candidates if candidates is not None else convention_names():
        c = load_convention(name)
        if c.n_mels != m.shape[0]:
            continue
        wav = resample(np.asarray(audio, dtype=np.float32), sample_rate, c.sample_rate)
        if wav.shape[0] < c.n_fft:
            continue
        ref = _convention_mel(c)(torch.from_numpy(np.ascontiguousarray(wav))).double().numpy()
        frames = min(ref.shape[1], m.shape[1])
        a, b = m[:, :frames], ref[:, :frames]
        if normalized:
            a, b = _standardize(a), _standardize(b)
        error = float(np.abs(a - b).mean())
        gap = abs(ref.shape[1] - m.shape[1])
        reasons = [f"mean |difference| {error:.4g} to its mel of the audio"]
        if gap:
            reasons.append(
                f"{ref.shape[1]} frames expected for the audio, the mel has {m.shape[1]}"
            )
        score = -error - (10.0 if gap > 2 else 0.0)
        out.append(Candidate(name, score, tuple(reasons), error=error, frames=ref.shape[1]))
    rank = {n: i for i, n in enumerate(PREFERENCE)}
    out.sort(key=lambda cand: (-cand.score, rank.get(cand.name, len(rank))))
    # conventions that give the same numbers for this audio (e.g. floors it never reaches)
    return [
        dataclasses.replace(
            c,
            same_values=tuple(
                o.name for o in out if o.name != c.name and abs(o.score - c.score) <= 1e-6
            ),
        )
        for c in out
    ]


@functools.lru_cache(maxsize=16)
def _convention_mel(c: Convention) -> torch.nn.Module:
    return c.mel_spectrogram()


def _standardize(m: np.ndarray) -> np.ndarray:
    return (m - m.mean(axis=1, keepdims=True)) / np.maximum(m.std(axis=1, keepdims=True), 1e-8)


# ---------------------------------------------------------------------- guard
def thinned(mel: np.ndarray, limit: int = GUARD_FRAMES) -> np.ndarray:
    """At most about ``limit`` evenly spaced frames of ``(bands, frames)``, and always those
    holding its extremes (a floor or clip level may show in a few frames only)."""
    step = math.ceil(mel.shape[1] / limit)
    if step <= 1:
        return mel
    extremes = [np.argmin(mel) % mel.shape[1], np.argmax(mel) % mel.shape[1]]
    return mel[:, np.unique(np.r_[np.arange(0, mel.shape[1], step), extremes])]


def looks_like(mel: np.ndarray) -> str | None:
    """The named convention whose typical speech ``mel`` fits (score at least -1), or None
    (also for values no log-mel can hold)."""
    try:
        ranked = detect_convention(mel)
    except InputError:
        return None
    return ranked[0].name if ranked and ranked[0].score >= -1.0 else None


def check_convention(
    mel: np.ndarray, expected: str | Path | Convention, path: str | Path | None = None
) -> list[str]:
    """Warnings (one line each) if ``mel``'s statistics do not fit ``expected``; silent (an
    empty list) when they do.

    Raises :class:`InputError` for values no log-mel can have, and for a band count other than
    ``expected``'s (naming the conventions with that many bands).
    """
    exp = load_convention(expected)
    check_log_mel(mel, path)
    mel = thinned(np.asarray(mel))
    n_mels = mel.shape[0]
    prefix = f"{path}: " if path is not None else ""
    if n_mels != exp.n_mels:
        ranked = detect_convention(mel)
        name = looks_like(mel)
        if name is not None:
            hint = f"; it looks like {name}: vocode it with --mel-convention {name}"
        elif ranked:
            names = ", ".join(sorted(c.name for c in ranked))
            hint = f" ({names}: {n_mels} bands, but its statistics fit none of them)"
        else:
            hint = ""
        raise InputError(
            f"mel has {n_mels} bands, convention {exp.name} has {exp.n_mels}{hint}", path
        )
    ranked = detect_convention(mel)
    own = next((c for c in ranked if c.name == exp.name), None)
    if own is None:
        ranked = detect_convention(mel, [*convention_names(), exp])  # a model's own
        own = next(c for c in ranked if c.name == exp.name)
    best = ranked[0]
    if own.score >= -1.0 or best.name == exp.name or exp.name in best.same_values:
        return []
    why = "; ".join(own.reasons[:2])
    if best.score < -1.0:
        return [f"{prefix}mel statistics fit no known convention ({why})"]
    also = f" (or {', '.join(best.same_values)}: same statistics)" if best.same_values else ""
    return [
        f"{prefix}mel statistics do not fit convention {exp.name} ({why}); they look like "
        f"{best.name}{also}: vocode it with --mel-convention {best.name}"
    ]
