"""Training at other sample rates: the data are kept at the config's rate (resampled once, and
said so), checkpoints carry that rate, and best.pt vocodes at it."""

import json
import shutil

import pytest
import soundfile as sf
import torch
from test_loop import TRAIN_IDS, VAL_IDS, one_thread, prepare_tiny_data  # noqa: F401

from hifigan import HiFiGANConfig, Vocoder
from hifigan.checkpoint import read_checkpoint
from hifigan.config import for_mel
from hifigan.train import TrainOptions, read_manifest, train

from conftest import LJSPEECH, need


def debug_at(rate_preset: str):
    """The debug preset with the mel and upsampling of ``rate_preset``, made tiny."""
    config = for_mel(
        HiFiGANConfig.preset("debug"),
        HiFiGANConfig.preset(rate_preset).mel,
        f"debug-{rate_preset[3:]}",
    )
    hop_length = config.mel.hop_length
    t = config.train
    t.segment_size, t.batch_size, t.num_workers = 8 * hop_length, 2, 0
    t.max_steps, t.val_interval, t.checkpoint_interval = 2, 2, 2
    return config


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    """Seven LJSpeech clips (22.05 kHz) and the lists that split them."""
    folder = tmp_path_factory.mktemp("raw")
    for i in TRAIN_IDS + VAL_IDS:
        shutil.copy(need(LJSPEECH) / "wavs" / f"{i}.flac", folder)
    (folder / "train.txt").write_text("".join(f"{i}|x\n" for i in TRAIN_IDS))
    (folder / "val.txt").write_text("".join(f"{i}|x\n" for i in VAL_IDS))
    return folder


@pytest.mark.parametrize(
    ("preset", "rate"),
    [
        ("v1-16k", 16000),
        # the same run at the other rates: slow (16 kHz stands for them in the default run)
        pytest.param("v1-24k", 24000, marks=pytest.mark.slow),
        pytest.param("v1-44k", 44100, marks=pytest.mark.slow),
        pytest.param("v1-48k", 48000, marks=pytest.mark.slow),
    ],
)
def test_a_run_at_another_rate_trains_and_vocodes_at_that_rate(tmp_path, raw, capsys, preset, rate):
    config = debug_at(preset)
    assert config.mel.sample_rate == rate
    run = tmp_path / "run"
    result = train(
        TrainOptions(
            out=run, data=raw, config=config, device="cpu", progress=False, tensorboard=False
        )
    )
    assert result.state.step == 2
    err = capsys.readouterr().err
    cache = run / "data" / "cache" / str(rate)
    said = f"  resampled 7 clips to {rate} Hz (7 from 22050 Hz), into {cache}\n"
    assert err.count(said) == 1 and "resampled from" not in err
    clips = read_manifest(run / "data")
    assert len(clips) == 7 and {c.sample_rate for c in clips} == {rate}
    for clip in clips:
        assert clip.path.parent == cache and sf.info(clip.path).samplerate == rate
        source = sf.info(need(LJSPEECH) / "wavs" / f"{clip.id}.flac")
        assert clip.duration == pytest.approx(source.duration, abs=1e-3)
    for name in ("step_00000002.pt", "best.pt"):
        ckpt = read_checkpoint(run / "checkpoints" / name)
        assert ckpt["config"]["mel"]["sample_rate"] == rate
    best = run / "checkpoints" / "best.pt"
    vocoder = Vocoder.from_checkpoint(best)
    assert vocoder.sample_rate == rate
    mel = torch.full((config.mel.n_mels, 12), -5.0)
    assert vocoder(mel).shape == (12 * config.mel.hop_length,)
    runs_at_its_rate(best, config, rate, raw, tmp_path)


def runs_at_its_rate(best, config, rate, raw, tmp_path):
    """Streaming equals offline, the ONNX export matches eager, and evaluate scores at
    ``rate``."""
    from hifigan.checkpoint import load_generator
    from hifigan.cli import main
    from hifigan.inference import OnnxBackend, export_onnx

    vocoder = Vocoder.from_checkpoint(best)
    torch.manual_seed(0)
    mel = -6.0 + 2.0 * torch.rand(config.mel.n_mels, 40)
    offline = vocoder(mel, check=False)
    streamed = torch.cat(list(vocoder.stream(mel[:, i : i + 7] for i in range(0, 40, 7))))
    assert torch.allclose(streamed, offline, atol=1e-5)
    generator, _ = load_generator(best)
    export_onnx(generator, config, tmp_path / "g.onnx")  # checks ONNX Runtime against eager
    onnx = OnnxBackend(str(tmp_path / "g.onnx"))(mel[None])
    assert onnx.shape[-1] == 40 * config.mel.hop_length
    assert torch.allclose(onnx.reshape(-1), offline, atol=1e-4)
    out = tmp_path / "eval"
    args = ["evaluate", "--data", str(raw), "--checkpoint", str(best), "--quick", "--limit", "2"]
    assert main([*args, "--no-plots", "-o", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["sample_rate"] == rate
    report = (out / "report.md").read_text()
    assert f"Scored at {rate} Hz." in report
    assert f"| M-STFT | {rate / 1000:g} kHz |" in report and "| PESQ-WB | 16 kHz |" in report
    wav = next((out / "audio").rglob("*.wav"))
    assert sf.info(wav).samplerate == rate


def test_data_prepared_for_one_rate_are_converted_for_a_run_at_another(tmp_path, raw, capsys):
    prepared = tmp_path / "prepared"
    prepared.mkdir()
    prepare_tiny_data(prepared, raw)  # at 22.05 kHz, the files used in place
    config = debug_at("v1-24k")
    config.train.max_steps = 1
    run = tmp_path / "run"
    train(
        TrainOptions(
            out=run, data=prepared, config=config, device="cpu", progress=False, tensorboard=False
        )
    )
    err = capsys.readouterr().err
    assert f"layout: prepared manifest ({prepared / 'manifest.jsonl'})" in err
    assert f"resampled 7 clips to 24000 Hz (7 from 22050 Hz), into {run}/data/cache/24000" in err
    clips = read_manifest(run / "data")
    assert {c.sample_rate for c in clips} == {24000}
    assert [(c.id, c.split) for c in clips] == [(c.id, c.split) for c in read_manifest(prepared)]
    assert all(c.source == (raw / f"{c.id}.flac").resolve() for c in clips)
