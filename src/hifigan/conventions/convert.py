"""Convert a mel from one convention into another (usually the vocoder's).

Exact where the information is there: log base and floor, ``ln(x + c)`` against ``ln(max(x,
c))`` above the floor, dB with range mapping and clipping, mean-variance statistics. Approximate
where it is not, each step documented with its measured cost in ``docs/mel-conventions.md``:

* other bands, frequency range, mel scale, filter normalisation, sample rate, FFT size or window
  (:func:`_rebin`): a non-negative linear-frequency magnitude estimate is fitted to the source
  bands (a log-domain interpolation refined by multiplicative updates that minimise the
  Kullback-Leibler divergence, the bins outside the source's range extrapolated), rescaled for the
  window and rate, and integrated by the target filterbank;
* other framing, hop or sample rate (:class:`MelConverter`): log-domain Lagrange interpolation
  at the target frame centres (centred frames sit half a hop earlier than the authors'), with the
  target's frame count for the same audio length.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..errors import InputError
from ..mel import hz_to_mel, mel_filterbank, mel_to_hz
from .spec import Convention, load_convention, same_values
from .values import MelStats, compress, expand, floor_linear, load_stats

# Below the source's fmin and above its fmax the spectrum is unknown: extrapolate from the edge
# band, falling by this many nepers per octave (speech rolls off outside the usual ranges).
LOW_DECAY = 1.0
HIGH_DECAY = 0.5
# multiplicative (KL) updates that refine the linear-frequency estimate; converged by then
REFINE_STEPS = 20
# points of the Lagrange interpolation that re-times frames (3 on each side of a position)
TAPS = 6
# the smallest linear value the log-domain steps see (below every convention's floor)
_TINY = 1e-12


def convert_mel(
    mel: np.ndarray | Tensor,
    source: str | Path | Convention,
    target: str | Path | Convention,
    stats: str | Path | MelStats | None = None,
    target_stats: str | Path | MelStats | None = None,
    path: str | Path | None = None,
) -> np.ndarray:
    """``(n_mels_source, frames)`` mel of ``source`` -> ``(n_mels_target, frames')`` of ``target``.

    ``stats`` undoes the source's normalisation (required when its values are normalised and
    the convention names no stats file);
    ``target_stats`` applies the target's (default: the stats file the target convention
    names, as a model read from ParallelWaveGAN names its ``stats.h5``). ``path`` names the file
    in error messages.
    Returns float32.
    """
    converter = MelConverter(source, target, stats, target_stats, path)
    return np.concatenate([converter.push(mel), converter.finish()], axis=1)


class MelConverter:
    """:func:`convert_mel` for a mel that arrives in pieces, as in a stream.

    :meth:`push` each piece, then :meth:`finish`: the outputs, concatenated, equal
    :func:`convert_mel` of the whole mel. Values and bands convert frame by frame; a change
    of framing interpolates between neighbouring frames, so that step holds back the frames
    whose neighbours have not arrived yet (3 at the same frame rate).
    """

    def __init__(
        self,
        source: str | Path | Convention,
        target: str | Path | Convention,
        stats: str | Path | MelStats | None = None,
        target_stats: str | Path | MelStats | None = None,
        path: str | Path | None = None,
    ) -> None:
        self.source, self.target = load_convention(source), load_convention(target)
        src, tgt = self.source, self.target
        self.path = path
        # read once, not on every push: a path given, or the file the convention names
        if stats is None:
            stats = src.normalization.stats
        self._stats = None if stats is None else _as_stats(stats)
        self._values_only = same_values(src.replace(normalization=tgt.normalization), tgt)
        self._reframe = not self._values_only and (
            src.analysis_key() != tgt.analysis_key() or src.magnitude_eps != tgt.magnitude_eps
        )
        self._retime = self._reframe and not frame_aligned(src, tgt)
        if target_stats is None:
            target_stats = tgt.normalization.stats
        self._target_stats = None
        if target_stats is not None and tgt.normalization.kind != "none":
            self._target_stats = _as_stats(target_stats)
        self._received = 0  # source frames so far
        self._emitted = 0  # target frames given out by the re-timing step
        self._log = torch.zeros(tgt.n_mels, 0, dtype=torch.float64)  # held log-linear frames
        self._first = 0  # the source frame index of self._log's first column

    def push(self, mel: np.ndarray | Tensor) -> np.ndarray:
        """``(n_mels_source, c)`` -> ``(n_mels_target, c')`` float32: the frames now final."""
        src, tgt = self.source, self.target
        v = torch.as_tensor(np.asarray(mel), dtype=torch.float64)
        if v.ndim != 2 or v.shape[0] != src.n_mels:
            raise InputError(
                f"mel has shape {tuple(v.shape)}, but convention {src.name} has {src.n_mels} "
                f"bands (shape ({src.n_mels}, frames))",
                self.path,
            )
        v = _denormalize(v, src, self._stats, self.path)
        if self._values_only:
            return self._finished(v)
        x = expand(v, src.compression)
        if self._reframe:
            x = _rebin(x, src, tgt)
        if not self._retime:
            return self._finished(compress(x, tgt.compression))
        floor = max(_TINY, floor_linear(tgt.compression))
        self._log = torch.cat([self._log, torch.log(x.clamp(min=floor))], dim=1)
        self._received += v.shape[1]
        return self._interpolate(final=False)

    def finish(self) -> np.ndarray:
        """The frames held back until the end: ``(n_mels_target, c'')`` float32 (none unless
        the framing changes)."""
        if not self._retime or self._received == 0:
            return np.zeros((self.target.n_mels, 0), dtype=np.float32)
        return self._interpolate(final=True)

    def _interpolate(self, final: bool) -> np.ndarray:
        """The target frames whose interpolation taps have all arrived (``final``: all the
        rest, past the end repeating the last frame, as over the whole mel)."""
        src, tgt = self.source, self.target
        k = torch.arange(self._emitted, target_frames(src, tgt, self._received))
        pos = frame_positions(k, src, tgt)
        if not final:
            pos = pos[pos.floor() + TAPS // 2 <= self._received - 1]
        # the held frames start at self._first: every tap of these positions is among them,
        # and the clamps at either edge are those of the whole mel
        out = lagrange_interpolate(self._log, pos - self._first)
        self._emitted += len(pos)
        if len(pos):  # drop the frames no later position reaches
            keep_from = max(int(pos[-1].floor()) - (TAPS // 2 - 1), self._first)
            self._log = self._log[:, keep_from - self._first :]
            self._first = keep_from
        return self._finished(compress(torch.exp(out), tgt.compression))

    def _finished(self, out: Tensor) -> np.ndarray:
        """Target values -> normalised as the target's are, float32."""
        if self._target_stats is not None:
            out = self._target_stats.normalize(out)
        return out.to(torch.float32).numpy()


def _as_stats(stats: str | Path | MelStats) -> MelStats:
    return stats if isinstance(stats, MelStats) else load_stats(stats)


def _denormalize(
    v: Tensor, src: Convention, stats: MelStats | None, path: str | Path | None
) -> Tensor:
    """Undo ``src``'s normalisation with ``stats`` (refused when the values look normalised
    and there are none)."""
    if stats is not None:
        return stats.denormalize(v)
    if src.normalization.kind != "none" and looks_normalized(v):
        raise InputError(
            f"the mel looks normalised (per-band mean near 0, deviation near 1): convention "
            f"{src.name} needs its statistics file to undo that (vocode: --mel-stats FILE)",
            path,
        )
    return v


def looks_normalized(v: Tensor | np.ndarray) -> bool:
    """Whether values look standardised per band (mean near 0 and deviation near 1)."""
    v = torch.as_tensor(np.asarray(v), dtype=torch.float64)
    if v.shape[-1] < 8:
        return False
    mean, std = v.mean(dim=-1), v.std(dim=-1)
    return bool(mean.abs().median() < 0.5 and (std.median() - 1).abs() < 0.5)


# ---------------------------------------------------------------------- frequency
def _rebin(x: Tensor, src: Convention, tgt: Convention) -> Tensor:
    """Linear mel of ``src``'s bands -> linear mel of ``tgt``'s bands (same frames)."""
    if src.spectral_key() == tgt.spectral_key():
        return x
    if _same_bins(src, tgt):
        # only the window differs: the filterbank is the same, the level moves with the window
        return x * _level_ratio(src, tgt)
    m = _rebin_matrices(src.spectral_key(), tgt.spectral_key())
    mag = x.clamp(min=_TINY) ** (1.0 / src.power)
    log_avg = torch.log(mag / m["band_weight"][:, None])
    spec = torch.exp(m["init"] @ log_avg + m["init_offset"][:, None])
    covered = m["covered"][:, None]
    fb = m["source_fb"]
    for _ in range(REFINE_STEPS):
        ratio = fb.T @ (mag / (fb @ spec).clamp(min=_TINY))
        spec = torch.where(covered, spec * ratio / m["fb_sum"][:, None], spec)
    return (m["project"] @ spec) ** tgt.power


def _same_bins(a: Convention, b: Convention) -> bool:
    keys = (
        "sample_rate",
        "n_fft",
        "n_mels",
        "fmin",
        "fmax_hz",
        "mel_scale",
        "filter_norm",
        "power",
    )
    return all(getattr(a, k) == getattr(b, k) for k in keys)


def _window(c: Convention) -> Tensor:
    return torch.hann_window(
        c.win_length, periodic=c.window == "hann_periodic", dtype=torch.float64
    )


def _level_ratio(src: Convention, tgt: Convention) -> float:
    """How a bin's magnitude scales between the two analyses for the same sound.

    For a stationary random signal the expected bin power is its density times ``sample_rate *
    sum(window^2)``; speech measures close to that (a sinusoid alone scales with ``sum(window)``).
    """
    ws, wt = _window(src), _window(tgt)
    ratio = (tgt.sample_rate * float((wt**2).sum())) / (src.sample_rate * float((ws**2).sum()))
    return ratio ** (0.5 * tgt.power)


def _filterbank(c: Convention) -> np.ndarray:
    fb = mel_filterbank(
        c.sample_rate, c.n_fft, c.n_mels, c.fmin, c.fmax_hz, scale=c.mel_scale, norm=c.filter_norm
    )
    return fb.astype(np.float64)


def _bin_freqs(c: Convention) -> np.ndarray:
    return np.arange(c.n_fft // 2 + 1) * (c.sample_rate / c.n_fft)


def _band_centres(c: Convention) -> np.ndarray:
    lo, hi = hz_to_mel(c.fmin, c.mel_scale), hz_to_mel(c.fmax_hz, c.mel_scale)
    return mel_to_hz(np.linspace(lo, hi, c.n_mels + 2), c.mel_scale)[1:-1]


def _interp_matrix(xs: np.ndarray, xt: np.ndarray, outside: float | None) -> np.ndarray:
    """Linear interpolation from the sorted points ``xs`` to ``xt`` as a matrix; outside the
    range the edge value (``outside`` None) or ``outside``."""
    out = np.zeros((len(xt), len(xs)))
    pos = np.interp(xt, xs, np.arange(len(xs), dtype=np.float64))
    lo = np.clip(np.floor(pos).astype(int), 0, len(xs) - 1)
    hi = np.minimum(lo + 1, len(xs) - 1)
    frac = pos - lo
    rows = np.arange(len(xt))
    out[rows, lo] += 1 - frac
    out[rows, hi] += frac
    if outside is not None:
        out[(xt < xs[0]) | (xt > xs[-1])] = outside
    return out


@functools.lru_cache(maxsize=32)
def _rebin_matrices(src_key: tuple, tgt_key: tuple) -> dict[str, Tensor]:
    """The matrices of :func:`_rebin` for one pair of spectral keys (cached)."""
    src, tgt = _from_spectral_key(src_key), _from_spectral_key(tgt_key)
    fb_s, fb_t = _filterbank(src), _filterbank(tgt)
    f_s, f_t = _bin_freqs(src), _bin_freqs(tgt)
    centres = _band_centres(src)
    mel_s = hz_to_mel(centres)
    init = _interp_matrix(mel_s, hz_to_mel(f_s), None)
    # bins outside the source's range: fall off from the edge band, by octaves
    octaves_low = np.log2(src.fmin / np.maximum(f_s, src.fmin / 16)) if src.fmin > 0 else 0 * f_s
    octaves_low = np.where(f_s < src.fmin, np.minimum(octaves_low, 4.0), 0.0)
    octaves_high = np.where(f_s > src.fmax_hz, np.log2(np.maximum(f_s, 1) / src.fmax_hz), 0.0)
    offset = -LOW_DECAY * octaves_low - HIGH_DECAY * octaves_high
    # target bins -> source bins (zero above the source's Nyquist), with the level change
    resample = _interp_matrix(f_s, f_t, 0.0) * _level_ratio(src, tgt) ** (1.0 / tgt.power)
    t = functools.partial(torch.tensor, dtype=torch.float64)
    return {
        "source_fb": t(fb_s),
        "fb_sum": t(np.maximum(fb_s.sum(axis=0), 1e-30)),
        "band_weight": t(np.maximum(fb_s.sum(axis=1), 1e-30)),
        "covered": torch.from_numpy(fb_s.sum(axis=0) > 0),
        "init": t(init),
        "init_offset": t(offset),
        "project": t(fb_t @ resample),
    }


_SPECTRAL_FIELDS = (
    "sample_rate",
    "n_fft",
    "win_length",
    "n_mels",
    "fmin",
    "fmax",
    "mel_scale",
    "filter_norm",
    "window",
    "power",
)


def _from_spectral_key(key: tuple) -> Convention:
    return Convention(name="key", **dict(zip(_SPECTRAL_FIELDS, key)))


# ---------------------------------------------------------------------- time
def target_frames(src: Convention, tgt: Convention, frames: int) -> int:
    """Frames of ``tgt`` for the audio that gives ``frames`` frames of ``src`` (the middle of
    the hop of lengths that do, at ``tgt``'s rate: one frame off at worst between rates)."""
    samples = (frames - 1) * src.hop_length + src.n_fft - 2 * src.pad + src.hop_length / 2
    samples_t = round(samples * tgt.sample_rate / src.sample_rate)
    return max(tgt.num_frames(samples_t), 1)


def frame_positions(k: Tensor, src: Convention, tgt: Convention) -> Tensor:
    """Where target frames ``k`` sit among the source's frames (fractional source indices)."""
    scale = (tgt.hop_length / tgt.sample_rate) / (src.hop_length / src.sample_rate)
    return (k.to(torch.float64) + tgt.time_offset) * scale - src.time_offset


def frame_aligned(src: Convention, tgt: Convention) -> bool:
    """Whether ``tgt``'s frames are ``src``'s, one for one at the same times (no re-timing)."""
    if src.hop_length * tgt.sample_rate != tgt.hop_length * src.sample_rate:
        return False
    if src.time_offset != tgt.time_offset:
        return False
    return all(target_frames(src, tgt, n) == n for n in (1, 2, 3, 64, 1000, 100_001))


def lagrange_interpolate(y: Tensor, pos: Tensor, taps: int = TAPS) -> Tensor:
    """Values of ``y`` (``(..., frames)``) at fractional frame positions ``pos`` by ``taps``-point
    Lagrange interpolation, the edge frames repeated outside."""
    n = y.shape[-1]
    base = torch.floor(pos).long() - (taps // 2 - 1)
    frac = pos - torch.floor(pos) + (taps // 2 - 1)
    nodes = torch.arange(taps, dtype=torch.float64)
    weights = torch.ones(len(pos), taps, dtype=torch.float64)
    for j in range(taps):
        for m in range(taps):
            if m != j:
                weights[:, j] *= (frac - nodes[m]) / (nodes[j] - nodes[m])
    idx = (base[:, None] + torch.arange(taps)[None, :]).clamp(0, n - 1)
    return (y[..., idx] * weights).sum(dim=-1)


@functools.lru_cache(maxsize=64)
def level_offset(c: Convention) -> float:
    """How much higher (in nepers) ``c``'s linear mel reads than the authors' for the same
    sound, averaged over bands (filter normalisation, FFT size, window and rate)."""
    ref = load_convention("hifigan")
    fb_c, fb_r = _filterbank(c), _filterbank(ref)
    band = np.mean(np.log(np.maximum(fb_c.sum(axis=1), 1e-30)))
    band -= np.mean(np.log(fb_r.sum(axis=1)))
    return float(band + np.log(_level_ratio(ref.replace(power=c.power), c)) / c.power)
