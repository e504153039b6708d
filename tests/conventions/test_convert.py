"""Conversions between conventions, measured on real speech: exact value mappings, and the
stated cost of the approximate steps (frequency re-binning, framing, rate)."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from hifigan.conventions import (
    MelConverter,
    MelStats,
    convention_names,
    convert_mel,
    floor_linear,
    load_convention,
    stats_from_mels,
    target_frames,
)
from hifigan.conventions.convert import lagrange_interpolate
from hifigan.errors import InputError
from hifigan.io import load_audio, resample

from conftest import LJSPEECH, need

CLIPS = ["LJ001-0001", "LJ001-0007", "LJ001-0015", "LJ001-0026", "LJ050-0031"]
# hifigan -> X -> hifigan, mean |error| in nepers measured on these clips (all 37 LJSpeech clips
# in docs/mel-conventions.md), with a margin: the cost of the approximate steps
ROUND_TRIP_MAD = {
    "hifigan": 0.0,
    "nemo": 1e-4,
    "tacotron2": 0.08,
    "coqui-tacotron2": 0.08,
    "nemo-fastpitch": 0.08,
    "bigvgan-22k": 0.075,
    "bigvgan-24k": 0.095,
    "bigvgan-44k": 0.03,
    "vocos": 0.10,
    "coqui": 0.125,
    "parallel-wavegan": 0.115,
    "parallel-wavegan-24k": 0.12,
    "espnet": 0.115,
    "nemo-log1p": 0.115,
}
# X computed from the audio -> hifigan, against hifigan's own mel of the audio
NATIVE_MAD = {**ROUND_TRIP_MAD, "hifigan": 0.0, "nemo": 0.003}
NATIVE_MAD.update(
    {
        "tacotron2": 0.09,
        "coqui-tacotron2": 0.09,
        "nemo-fastpitch": 0.09,
        "bigvgan-22k": 0.085,
        "bigvgan-24k": 0.105,
        "bigvgan-44k": 0.045,
        "vocos": 0.115,
        "coqui": 0.135,
        "parallel-wavegan": 0.13,
        "parallel-wavegan-24k": 0.125,
        "espnet": 0.13,
        "nemo-log1p": 0.13,
    }
)
ANALYSIS = [
    "sample_rate",
    "n_fft",
    "hop_length",
    "win_length",
    "n_mels",
    "fmin",
    "fmax",
    "mel_scale",
    "filter_norm",
    "window",
    "center",
    "pad_mode",
    "power",
    "magnitude_eps",
]


@pytest.fixture(scope="module")
def audio():
    return {clip: load_audio(need(LJSPEECH / "wavs" / f"{clip}.flac"))[0] for clip in CLIPS}


@pytest.fixture(scope="module")
def mels(audio):
    """Every named convention's mel of every clip, computed from the audio."""
    out = {}
    for name in convention_names():
        c = load_convention(name)
        module = c.mel_spectrogram()
        out[name] = {}
        for clip, wav in audio.items():
            wav = resample(wav, 22050, c.sample_rate)
            with torch.inference_mode():
                out[name][clip] = module(torch.from_numpy(wav)).numpy()
    return out


def values_only(name):
    """Convention ``name``'s values on the authors' analysis (only the compression differs)."""
    hg, c = load_convention("hifigan"), load_convention(name)
    return c.replace(name=f"{name}-values", **{k: getattr(hg, k) for k in ANALYSIS})


def informative(ln_mel, *conventions):
    """Where a natural-log mel lies above every floor and below every clip level."""
    lo = max(floor_linear(c.compression) for c in conventions)
    hi = min(_ceiling(c) for c in conventions)
    return (ln_mel > math.log(lo) + 1e-3) & (ln_mel < math.log(hi) - 1e-3)


def _ceiling(c):
    comp = c.compression
    if comp.kind == "db_normalized" and comp.clip:
        return 10 ** ((comp.ref_level_db) / comp.gain_db)
    return math.inf


@pytest.mark.parametrize("name", convention_names())
def test_value_conversions_are_exact_above_the_floor(mels, audio, name):
    hg, xv = load_convention("hifigan"), values_only(name)
    module = xv.mel_spectrogram()
    for clip, wav in audio.items():
        mel = mels["hifigan"][clip]
        ref = module(torch.from_numpy(wav)).numpy()
        stats = None
        if xv.normalization.kind != "none":
            stats = stats_from_mels([ref], xv)
            ref = stats.normalize(torch.from_numpy(ref).double()).numpy()
        y = convert_mel(mel, hg, xv, target_stats=stats)
        keep = informative(mel, hg, xv)
        assert keep.mean() > 0.9
        # the conversion gives what the convention computes from the audio...
        assert np.abs(y - ref)[keep].max() < 1e-4
        # ...and converts back
        back = convert_mel(y, xv, hg, stats=stats)
        assert back.shape == mel.shape
        assert np.abs(back - mel)[keep].max() < 1e-4


def test_exact_between_real_conventions(mels):
    # the same analysis, another floor: exact above the higher floor
    for src, tgt in (("tacotron2", "coqui-tacotron2"), ("coqui-tacotron2", "tacotron2")):
        for clip, mel in mels[src].items():
            y, ref = convert_mel(mel, src, tgt), mels[tgt][clip]
            keep = mels["tacotron2"][clip] > math.log(1e-5) + 1e-3
            assert np.abs(y - ref)[keep].max() < 1e-4
    # ESPnet guards the power with 1e-10, which moves only the quietest bins (by < 2e-3)
    for clip, mel in mels["parallel-wavegan"].items():
        y = convert_mel(mel, "parallel-wavegan", "espnet")
        assert np.abs(y - mels["espnet"][clip]).max() < 2e-3


@pytest.mark.parametrize(  # bigvgan's round trips are slow; their one-way conversions are not
    "name",
    [
        pytest.param(n, marks=pytest.mark.slow) if n.startswith("bigvgan") else n
        for n in convention_names()
    ],
)
def test_round_trip_through_each_convention(mels, name):
    errors = []
    for mel in mels["hifigan"].values():
        back = convert_mel(convert_mel(mel, "hifigan", name), name, "hifigan")
        assert abs(back.shape[1] - mel.shape[1]) <= (0 if name in SAME_RATE else 1)
        frames = min(back.shape[1], mel.shape[1])
        errors.append(np.abs(back[:, :frames] - mel[:, :frames]).mean())
    assert np.mean(errors) <= ROUND_TRIP_MAD[name] + 1e-6


SAME_RATE = {n for n in convention_names() if load_convention(n).frame_rate == 22050 / 256}


@pytest.mark.parametrize("name", convention_names())
def test_each_convention_converted_to_the_authors(mels, name):
    errors = []
    for clip, mel in mels[name].items():
        native = mels["hifigan"][clip]
        y = convert_mel(mel, name, "hifigan")
        assert y.dtype == np.float32 and y.shape[0] == 80
        assert abs(y.shape[1] - native.shape[1]) <= (0 if name in SAME_RATE else 1)
        frames = min(y.shape[1], native.shape[1])
        errors.append(np.abs(y[:, :frames] - native[:, :frames]).mean())
    assert np.mean(errors) <= NATIVE_MAD[name]


def test_normalised_mels_need_their_stats(mels, tmp_path):
    pwg = load_convention("parallel-wavegan")
    raw = mels["parallel-wavegan"]["LJ001-0001"]
    stats = stats_from_mels(list(mels["parallel-wavegan"].values()), pwg)
    normed = stats.normalize(torch.from_numpy(raw).double()).numpy()
    with pytest.raises(InputError, match=r"looks normalised .* needs its statistics file"):
        convert_mel(normed, pwg, "hifigan", path="x.npy")
    expected = convert_mel(raw, pwg, "hifigan")
    assert np.abs(convert_mel(normed, pwg, "hifigan", stats=stats) - expected).max() < 1e-4
    # a convention that names its stats file undoes them by itself
    np.savez(tmp_path / "stats.npz", mean=stats.mean, scale=stats.scale)
    named = pwg.replace(
        normalization=dataclasses.replace(pwg.normalization, stats=str(tmp_path / "stats.npz"))
    )
    assert np.abs(convert_mel(normed, named, "hifigan") - expected).max() < 1e-4


def test_wrong_band_count_is_an_input_error():
    with pytest.raises(
        InputError, match=r"x.npy: mel has shape \(100, 5\), but convention hifigan"
    ):
        convert_mel(np.zeros((100, 5)), "hifigan", "tacotron2", path="x.npy")
    with pytest.raises(InputError, match="the stats hold 80 bands, the mel has 100"):
        stats = MelStats(np.zeros(80), np.ones(80))
        convert_mel(np.zeros((100, 5)), "vocos", "hifigan", stats=stats)


def test_frame_counts_follow_the_framing():
    hg, cr, pwg24 = (load_convention(n) for n in ("hifigan", "tacotron2", "parallel-wavegan-24k"))
    for frames in (1, 2, 100, 831):
        assert target_frames(cr, hg, frames + 1) == frames
        assert target_frames(hg, cr, frames) == frames + 1
    # the same audio length: 10 s at 22.05 kHz and at 24 kHz
    assert target_frames(hg, pwg24, hg.num_frames(220500)) in (
        pwg24.num_frames(240000) + d for d in (-1, 0, 1)
    )


def test_lagrange_interpolation_is_exact_for_polynomials():
    t = torch.arange(20, dtype=torch.float64)
    y = 0.5 * t**5 - t**3 + 2.0
    pos = torch.tensor([2.5, 7.25, 10.0, 13.9], dtype=torch.float64)
    expected = 0.5 * pos**5 - pos**3 + 2.0
    assert torch.allclose(lagrange_interpolate(y[None], pos)[0], expected, rtol=1e-9)


@pytest.fixture(scope="module")
def tone_mels() -> dict[str, np.ndarray]:
    """0.6 s of a gliding tone in noise as each named convention's mel."""
    rng = np.random.default_rng(1)
    t = np.arange(int(0.6 * 48000)) / 48000
    tone = 0.3 * np.sin(2 * np.pi * 180 * t * (1 + t)) + 0.02 * rng.standard_normal(t.size)
    mels = {}
    for name in convention_names():
        src = load_convention(name)
        audio = resample(tone.astype(np.float32), 48000, src.sample_rate)
        with torch.no_grad():
            mels[name] = src.mel_spectrogram()(torch.from_numpy(audio)[None])[0].numpy()
    return mels


@pytest.mark.parametrize(
    "target", ["hifigan", *(pytest.param(t, marks=pytest.mark.slow) for t in ("coqui", "vocos"))]
)
def test_a_mel_converted_piece_by_piece_equals_its_whole_conversion(target, tone_mels):
    """Every named convention into a target (same frames, centred frames, another rate and
    band count), pushed in pieces of 0 to 9 frames: the same values, bit for bit, and at
    most 3 frames held back when the frame rate is the same."""
    rng = np.random.default_rng(2)
    tgt = load_convention(target)
    for name, mel in tone_mels.items():
        src = load_convention(name)
        whole = convert_mel(mel, src, tgt)
        converter = MelConverter(src, tgt)
        pieces, start = [], 0
        while start < mel.shape[1]:
            size = int(rng.integers(0, 10))
            pieces.append(converter.push(mel[:, start : start + size]))
            start += size
            given = sum(p.shape[1] for p in pieces)
            if src.hop_length * tgt.sample_rate == tgt.hop_length * src.sample_rate:
                assert given >= min(start, whole.shape[1]) - 3, name
        pieces.append(converter.finish())
        assert np.array_equal(np.concatenate(pieces, axis=1), whole), name
