"""The metric catalogue (:data:`METRICS`: each :class:`Metric` carries its description and its
scorer), the quick and full profiles, and :class:`MetricSuite`, which scores one
reference/generated pair with lazily loaded metric models.

Every metric takes mono audio at the suite's rate (the model's; 22.05 kHz by default): the
spectral distances are computed at that rate, the perceptual and pitch metrics resample to the
rate they were built for. See ``docs/evaluation.md`` for definitions, rates, licences and
model sources.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import HiFiGANError, InputError
from ..io import resample, warn
from . import spectral
from .deps import CREPE_HINT, EVAL_HINT, installed
from .perceptual import DNSMOS, ViSQOLAudio, estoi, pesq_wb
from .pitch import PitchTrack, PitchTracker, periodicity_scores

SAMPLE_RATE = 22050
#: the rate of the spectral metrics: the suite's own (the model's)
SCORING_RATE = "model's"


@dataclass
class Pair:
    """One reference/generated pair being scored: time-aligned ``(samples,)`` float32
    arrays of equal length. ``key`` names the reference for work cached across pairs (its CREPE
    track); ``pitch`` holds the three pitch scores once computed for this pair."""

    reference: np.ndarray
    generated: np.ndarray
    key: str | None = None
    pitch: dict[str, float] | None = None


#: ``score(suite, pair)``: a metric's value for one pair, with the suite's models and options
Scorer = Callable[["MetricSuite", Pair], float]


@dataclass(frozen=True, kw_only=True)
class Metric:
    """One metric of the catalogue.

    Attributes:
        name: its key in :data:`METRICS`, the CSV and the JSON.
        label: its name in reports; ``description`` says what it is in a line.
        higher_is_better: its direction; ``perfect`` is the score of identical inputs, if fixed.
        rate: the sample rate it is computed at (after resampling), as written in reports.
        packages: the optional import packages it needs (the evaluation extra, or torchcrepe).
        score: computes it for one pair.
        intrusive: whether it needs the reference (DNSMOS does not).
    """

    name: str
    label: str
    description: str
    higher_is_better: bool
    perfect: float | None
    rate: str
    packages: tuple[str, ...] = ()
    score: Scorer = field(repr=False, compare=False)
    intrusive: bool = True

    def better(self, a: float, b: float) -> bool:
        """Whether score ``a`` is strictly better than ``b``."""
        return a > b if self.higher_is_better else a < b

    def available(self) -> bool:
        """Whether the packages it needs are installed (checked without importing them)."""
        return all(installed(package) for package in self.packages)


def _pitch_metric(name: str, label: str, description: str, higher: bool, perfect: float) -> Metric:
    """One of the three scores of a CREPE comparison, computed once per pair."""
    return Metric(
        name=name,
        label=label,
        description=description,
        higher_is_better=higher,
        perfect=perfect,
        rate="16 kHz",
        packages=("torchcrepe",),
        score=lambda suite, pair: suite.pitch_scores(pair)[name],
    )


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric(
            name="pesq",
            label="PESQ-WB",
            description="wide-band PESQ (P.862.2), sinc-resampled, int16",
            higher_is_better=True,
            perfect=4.644,
            rate="16 kHz",
            packages=("pesq",),
            score=lambda suite, pair: pesq_wb(
                pair.reference, pair.generated, suite.sample_rate, resampler=suite.pesq_resampler
            ),
        ),
        Metric(
            name="estoi",
            label="ESTOI",
            description="extended STOI (pystoi)",
            higher_is_better=True,
            perfect=1.0,
            rate="10 kHz",
            packages=("pystoi",),
            score=lambda suite, pair: estoi(pair.reference, pair.generated, suite.sample_rate),
        ),
        Metric(
            name="stft",
            label="M-STFT",
            description="multi-resolution STFT distance, auraloss' default resolutions",
            higher_is_better=False,
            perfect=0.0,
            rate=SCORING_RATE,
            score=lambda suite, pair: spectral.stft_distance(pair.reference, pair.generated),
        ),
        Metric(
            name="mel_l1",
            label="mel L1",
            description="L1 of the authors' loss log-mel (80 bands to Nyquist)",
            higher_is_better=False,
            perfect=0.0,
            rate=SCORING_RATE,
            score=lambda suite, pair: spectral.mel_l1(pair.reference, pair.generated, suite.mel),
        ),
        Metric(
            name="lsd",
            label="LSD",
            description="log-spectral distance (log10 power, 2048/512)",
            higher_is_better=False,
            perfect=0.0,
            rate=SCORING_RATE,
            score=lambda suite, pair: spectral.log_spectral_distance(
                pair.reference, pair.generated
            ),
        ),
        Metric(
            name="mcd",
            label="MCD (dB)",
            description="mel-cepstral distortion, c1-c24, alpha 0.455, no DTW",
            higher_is_better=False,
            perfect=0.0,
            rate=SCORING_RATE,
            score=lambda suite, pair: spectral.mel_cepstral_distortion(
                pair.reference, pair.generated, suite.sample_rate
            ),
        ),
        _pitch_metric(
            "periodicity", "periodicity", "RMSE of CREPE periodicity (CARGAN)", False, 0.0
        ),
        _pitch_metric(
            "vuv_f1", "V/UV F1", "F1 of CREPE voiced/unvoiced decisions (CARGAN)", True, 1.0
        ),
        _pitch_metric(
            "pitch_cents",
            "pitch (cents)",
            "RMSE of CREPE pitch over frames voiced in both, cents",
            False,
            0.0,
        ),
        Metric(
            name="visqol",
            label="ViSQOL audio",
            description="ViSQOL v3 audio mode (visqol-python)",
            higher_is_better=True,
            perfect=None,
            rate="48 kHz",
            packages=("visqol",),
            score=lambda suite, pair: suite.visqol(
                pair.reference, pair.generated, suite.sample_rate
            ),
        ),
        Metric(
            name="dnsmos",
            label="DNSMOS ovrl",
            description="DNSMOS P.835 overall, generated audio alone",
            higher_is_better=True,
            perfect=None,
            rate="16 kHz",
            packages=("speechmos", "onnxruntime"),
            score=lambda suite, pair: suite.dnsmos(pair.generated, suite.sample_rate)["ovrl"],
            intrusive=False,
        ),
    )
}

#: cheap metrics (no neural model): CI and the demo use these
QUICK = ("pesq", "estoi", "stft", "mel_l1", "lsd", "mcd")
#: everything
FULL = tuple(METRICS)
PROFILES = {"quick": QUICK, "full": FULL}


def parse_metrics(spec: str | Sequence[str]) -> tuple[str, ...]:
    """Metric names from a profile name, a comma-separated list, or a sequence of names."""
    if isinstance(spec, str):
        if spec in PROFILES:
            return PROFILES[spec]
        spec = [s.strip() for s in spec.split(",") if s.strip()]
    names: list[str] = []
    for name in spec:
        if name in PROFILES:
            names.extend(PROFILES[name])
        elif name in METRICS:
            names.append(name)
        else:
            raise HiFiGANError(
                f"unknown metric {name!r} (choose from {', '.join(METRICS)}, or quick / full)"
            )
    return tuple(dict.fromkeys(names))


def check_audio(audio: np.ndarray, what: str) -> np.ndarray:
    """A finite, non-empty 1-D float32 array, or :class:`InputError`."""
    x = np.asarray(audio)
    if x.ndim != 1:
        raise InputError(f"{what} must be 1-D (samples,), got shape {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise InputError(f"{what} has no samples")
    if not np.issubdtype(x.dtype, np.floating):
        raise InputError(f"{what} must hold floats in [-1, 1], got {x.dtype}")
    if not np.isfinite(x).all():
        raise InputError(f"{what} contains NaN or infinite samples")
    return x.astype(np.float32, copy=False)


class MetricSuite:
    """Scores reference/generated pairs with a chosen set of metrics.

    Models load on first use and stay in this object (CREPE, DNSMOS, ViSQOL). Reference-side
    work that does not depend on the generated audio (CREPE tracks of the reference) is cached
    per ``reference_key``, so several systems evaluated against the same clip share it.

    Args:
        metrics: metric names (see :data:`METRICS`) or a profile name.
        crepe: CREPE capacity for the pitch metrics, ``"full"`` (as published) or ``"tiny"``.
        pesq_resampler: ``"sinc"`` (as published, default) or ``"soxr"``.
        skip_failures: a metric whose optional package is missing is left out with one
            warning, and one that fails on a pair leaves that cell empty (``None``) with a
            warning, so that one clip or one package never costs the whole report; False
            raises instead.
        sample_rate: the rate of the audio it scores (the model's); the spectral metrics
            are computed at it, the others resample to their own (:meth:`resampled`).
    """

    def __init__(
        self,
        metrics: str | Sequence[str] = "full",
        *,
        crepe: str = "full",
        pesq_resampler: str = "sinc",
        skip_failures: bool = True,
        sample_rate: int = SAMPLE_RATE,
    ) -> None:
        if sample_rate < 8000:
            raise HiFiGANError(f"the metrics need audio at 8 kHz or more, got {sample_rate} Hz")
        self.sample_rate = sample_rate
        self.metrics = parse_metrics(metrics)
        self.skip_failures = skip_failures
        if skip_failures:
            self.metrics = _installed_metrics(self.metrics)
        self.pesq_resampler = pesq_resampler
        self.mel = spectral.loss_mel(sample_rate)
        self.pitch = PitchTracker(capacity=crepe)
        self.dnsmos = DNSMOS()
        self.visqol = ViSQOLAudio()
        self._reference_tracks: dict[str, PitchTrack] = {}

    def _track(self, audio: np.ndarray) -> PitchTrack:
        """CREPE's track, one frame per 256 samples at 22.05 kHz (11.6 ms) at any rate."""
        hop_length = round(256 * self.sample_rate / SAMPLE_RATE)
        return self.pitch.track(audio, self.sample_rate, hop_length=hop_length)

    def _reference_track(self, reference: np.ndarray, key: str | None) -> PitchTrack:
        if key is None:
            return self._track(reference)
        if key not in self._reference_tracks:
            self._reference_tracks[key] = self._track(reference)
        return self._reference_tracks[key]

    def pitch_scores(self, pair: Pair) -> dict[str, float]:
        """Periodicity RMSE, V/UV F1 and pitch RMSE (cents) of one pair, computed once for the
        three pitch metrics; the reference's track is cached by ``pair.key``."""
        if pair.pitch is None:
            ref_track = self._reference_track(pair.reference, pair.key)
            same = np.array_equal(pair.reference, pair.generated)
            track = ref_track if same else self._track(pair.generated)
            pair.pitch = periodicity_scores(ref_track, track)
        return pair.pitch

    def resampled(self) -> list[str]:
        """The chosen metrics computed at another rate than the suite's, as ``label (rate)``."""
        here = f"{self.sample_rate / 1000:g} kHz"
        return [
            f"{METRICS[m].label} ({METRICS[m].rate})"
            for m in self.metrics
            if METRICS[m].rate not in (SCORING_RATE, here)
        ]

    def score(
        self,
        reference: np.ndarray,
        generated: np.ndarray,
        *,
        reference_key: str | None = None,
    ) -> dict[str, float]:
        """All chosen metrics for one pair of time-aligned ``(samples,)`` arrays at the suite's
        rate and of equal length (trim first), by metric name."""
        ref = check_audio(reference, "reference audio")
        gen = check_audio(generated, "generated audio")
        if ref.shape != gen.shape:
            raise InputError(
                f"reference and generated lengths differ: {ref.shape[0]} vs {gen.shape[0]}"
            )
        pair = Pair(ref, gen, key=reference_key)
        return {name: self._score_one(METRICS[name], pair) for name in self.metrics}

    def _score_one(self, metric: Metric, pair: Pair) -> float | None:
        if not self.skip_failures:
            return metric.score(self, pair)
        try:
            return metric.score(self, pair)
        except Exception as e:  # a metric package's own failure on unusual audio
            text = str(e).strip().splitlines()
            reason = text[0] if text else type(e).__name__
            warn(f"{pair.key or 'a pair'}: {metric.name} not scored ({reason})")
            return None


def _installed_metrics(names: tuple[str, ...]) -> tuple[str, ...]:
    """``names`` less the metrics whose optional packages are missing (said once)."""
    missing = [name for name in names if not METRICS[name].available()]
    if missing:
        hint = CREPE_HINT if any("crepe" in p for m in missing for p in METRICS[m].packages) else ""
        warn(
            f"left out {', '.join(missing)}: optional packages missing ({EVAL_HINT}"
            + (f"; {hint}" if hint else "")
            + ")"
        )
    kept = tuple(name for name in names if name not in missing)
    if not kept:
        raise HiFiGANError(f"none of the chosen metrics can run here: {EVAL_HINT}")
    return kept


def quick_metrics(
    reference: np.ndarray, generated: np.ndarray, sample_rate: int
) -> dict[str, float]:
    """The quick profile's metrics for one pair, by name (see :data:`QUICK`).

    Args:
        reference, generated: 1-D float arrays in [-1, 1] at ``sample_rate``; resampled to
            22.05 kHz if needed and trimmed to the shorter length.

    Raises:
        HiFiGANError: bad input, or an optional package missing (with the install command).
    """
    ref = check_audio(reference, "reference audio")
    gen = check_audio(generated, "generated audio")
    if sample_rate != SAMPLE_RATE:
        ref = resample(ref, sample_rate, SAMPLE_RATE)
        gen = resample(gen, sample_rate, SAMPLE_RATE)
    n = min(ref.shape[0], gen.shape[0])
    if n < SAMPLE_RATE // 4:
        raise InputError(
            f"audio is too short for the metrics: {n} samples at 22.05 kHz (need 0.25 s)"
        )
    return MetricSuite(QUICK, skip_failures=False).score(ref[:n], gen[:n])
