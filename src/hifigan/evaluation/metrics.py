"""The metric catalogue, the quick and full profiles, and :class:`MetricSuite`, which scores
one reference/generated pair with lazily loaded metric models.

Every metric takes 22.05 kHz mono audio (the model's rate) and resamples internally to its own
rate. See ``docs/evaluation.md`` for definitions, rates, licences and model sources.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..config import HiFiGANConfig
from ..errors import HiFiGANError, InputError
from ..io import resample
from ..mel import MelSpectrogram
from . import spectral
from .perceptual import DNSMOS, ViSQOLAudio, estoi, pesq_wb
from .pitch import PitchTrack, PitchTracker, periodicity_scores

SAMPLE_RATE = 22050


@dataclass(frozen=True)
class Metric:
    """What a metric is: its report label, direction, the score of identical inputs, the rate
    it is computed at, and whether it needs the reference (``intrusive``)."""

    name: str
    label: str
    higher_is_better: bool
    perfect: float | None
    rate: str
    intrusive: bool = True

    def better(self, a: float, b: float) -> bool:
        """Whether score ``a`` is strictly better than ``b``."""
        return a > b if self.higher_is_better else a < b


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("pesq", "PESQ-WB", True, 4.644, "16 kHz"),
        Metric("estoi", "ESTOI", True, 1.0, "10 kHz"),
        Metric("stft", "M-STFT", False, 0.0, "22.05 kHz"),
        Metric("mel_l1", "mel L1", False, 0.0, "22.05 kHz"),
        Metric("lsd", "LSD", False, 0.0, "22.05 kHz"),
        Metric("mcd", "MCD (dB)", False, 0.0, "22.05 kHz"),
        Metric("periodicity", "periodicity", False, 0.0, "16 kHz"),
        Metric("vuv_f1", "V/UV F1", True, 1.0, "16 kHz"),
        Metric("pitch_cents", "pitch (cents)", False, 0.0, "16 kHz"),
        Metric("visqol", "ViSQOL audio", True, None, "48 kHz"),
        Metric("dnsmos", "DNSMOS ovrl", True, None, "16 kHz", intrusive=False),
    )
}

#: cheap metrics (no neural model): CI and the demo use these
QUICK = ("pesq", "estoi", "stft", "mel_l1", "lsd", "mcd")
#: everything
FULL = tuple(METRICS)
PROFILES = {"quick": QUICK, "full": FULL}
_PITCH = ("periodicity", "vuv_f1", "pitch_cents")


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
    """

    def __init__(
        self,
        metrics: str | Sequence[str] = "full",
        *,
        crepe: str = "full",
        pesq_resampler: str = "sinc",
    ) -> None:
        self.metrics = parse_metrics(metrics)
        self.pesq_resampler = pesq_resampler
        # mel L1 on the authors' loss mel: 80 bands up to Nyquist (fmax_loss = None)
        self.mel = MelSpectrogram.from_config(HiFiGANConfig.preset("v1").mel, for_loss=True)
        self.pitch = PitchTracker(capacity=crepe)
        self.dnsmos = DNSMOS()
        self.visqol = ViSQOLAudio()
        self._reference_tracks: dict[str, PitchTrack] = {}

    def _reference_track(self, reference: np.ndarray, key: str | None) -> PitchTrack:
        if key is None:
            return self.pitch.track(reference, SAMPLE_RATE)
        if key not in self._reference_tracks:
            self._reference_tracks[key] = self.pitch.track(reference, SAMPLE_RATE)
        return self._reference_tracks[key]

    def score(
        self,
        reference: np.ndarray,
        generated: np.ndarray,
        *,
        reference_key: str | None = None,
    ) -> dict[str, float]:
        """All chosen metrics for one pair of time-aligned 22.05 kHz ``(samples,)`` arrays of
        equal length (trim first), by metric name."""
        ref = check_audio(reference, "reference audio")
        gen = check_audio(generated, "generated audio")
        if ref.shape != gen.shape:
            raise InputError(
                f"reference and generated lengths differ: {ref.shape[0]} vs {gen.shape[0]}"
            )
        scores: dict[str, float] = {}
        for name in self.metrics:
            if name in scores:
                continue
            if name == "pesq":
                scores[name] = pesq_wb(ref, gen, SAMPLE_RATE, resampler=self.pesq_resampler)
            elif name == "estoi":
                scores[name] = estoi(ref, gen, SAMPLE_RATE)
            elif name == "stft":
                scores[name] = spectral.stft_distance(ref, gen)
            elif name == "mel_l1":
                scores[name] = spectral.mel_l1(ref, gen, self.mel)
            elif name == "lsd":
                scores[name] = spectral.log_spectral_distance(ref, gen)
            elif name == "mcd":
                scores[name] = spectral.mel_cepstral_distortion(ref, gen)
            elif name in _PITCH:
                ref_track = self._reference_track(ref, reference_key)
                same = np.array_equal(ref, gen)
                track = ref_track if same else self.pitch.track(gen, SAMPLE_RATE)
                pitch = periodicity_scores(ref_track, track)
                scores.update({k: v for k, v in pitch.items() if k in self.metrics})
            elif name == "visqol":
                scores[name] = self.visqol(ref, gen, SAMPLE_RATE)
            elif name == "dnsmos":
                scores[name] = self.dnsmos(gen, SAMPLE_RATE)["ovrl"]
        return scores


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
    return MetricSuite(QUICK).score(ref[:n], gen[:n])
