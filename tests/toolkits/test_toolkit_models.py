"""Other toolkits' HiFi-GAN checkpoints (tests/fixtures/toolkits, written with each toolkit's
own code by scripts/make_toolkit_fixtures.py): found by content, loaded without --config, the
mel convention read from the toolkit's config, and each toolkit's own output reproduced by
every backend."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from hifigan import Vocoder
from hifigan.checkpoint import load_generator, read_generator_file
from hifigan.errors import CheckpointError
from hifigan.toolkits import pad_edges
from hifigan.toolkits.writers import write_coqui, write_parallel_wavegan

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "toolkits"
SB_CKPT = "save/CKPT+2025-01-01+00-00-00+00/generator.ckpt"
NEMO_CKPT = "HifiGan--val_loss=0.5-epoch=1.ckpt"
# fixture folder -> (checkpoint inside it, toolkit, convention name)
PWG = ("checkpoint-2500steps.pkl", "parallel-wavegan", "parallel-wavegan-model")
CASES = {
    "parallel-wavegan-v1": PWG,
    "parallel-wavegan-v2-odd": PWG,
    "parallel-wavegan-v3": PWG,
    "coqui-v1": ("checkpoint_2500.pth", "coqui", "coqui-model"),
    "coqui-v3": ("checkpoint_2500.pth", "coqui", "coqui-model"),
    "nemo-v1": ("HifiGan.nemo", "nemo", "nemo-model"),
    "nemo-v3": (NEMO_CKPT, "nemo", "nemo-model"),
    "speechbrain-v1": (SB_CKPT, "speechbrain", "speechbrain-model"),
    "speechbrain-v3": (SB_CKPT, "speechbrain", "speechbrain-model"),
    "dle-v1": ("hifigan_gen_checkpoint_2000.pt", "dle", "hifigan-config"),
    "dle-v3": ("hifigan_gen_checkpoint_2000.pt", "dle", "hifigan-config"),
}  # fmt: skip
TOL = 1e-4


def case(name: str) -> tuple[Path, np.ndarray, np.ndarray]:
    folder = FIXTURES / name
    mel = np.load(folder / "mel.npy")
    return folder / CASES[name][0], mel, np.load(folder / "toolkit_output.npy")


def vocoder(path: Path, **kwargs: object) -> Vocoder:
    return Vocoder.from_checkpoint(path, verified=True, **kwargs)


@pytest.mark.parametrize("name", sorted(CASES))
def test_loads_without_config_and_reproduces_the_toolkits_output(name):
    path, mel, expected = case(name)
    _, config, toolkit, _ = read_generator_file(path)
    assert toolkit == CASES[name][1]
    v = vocoder(path, edge_padding="toolkit")
    assert v.convention.name == CASES[name][2]
    assert v.n_mels == 80 and v.hop_length == config.mel.hop_length
    audio = v(mel, check=False).numpy()
    assert audio.shape == expected.shape
    assert np.abs(audio - expected).max() < TOL  # the whole signal, edges included


@pytest.mark.parametrize("name", ["coqui-v1", "speechbrain-v1", "speechbrain-v3"])
def test_authors_edges_are_the_toolkits_forward(name):
    """Without --edge-padding toolkit: T * hop samples, the toolkit's forward() exactly (for
    SpeechBrain that keeps its reflection padding); the toolkit's inference() differs only
    within its padded edges."""
    path, mel, inference = case(name)
    forward = np.load(FIXTURES / name / "toolkit_forward.npy")
    v = vocoder(path)
    audio = v(mel, check=False).numpy()
    hop_length = v.hop_length
    assert audio.shape == (mel.shape[1] * hop_length,)
    assert np.abs(audio - forward).max() < TOL
    inner = inference[
        5 * hop_length : -5 * hop_length
    ]  # the toolkit's padding adds 5 frames each end
    field = v.receptive_field  # frames whose receptive field stays inside the mel
    middle = slice(field.left * hop_length, (mel.shape[1] - field.right) * hop_length)
    assert audio[middle].size >= 4 * hop_length
    assert np.abs(audio[middle] - inner[middle]).max() < TOL
    assert np.abs(audio[:hop_length] - inner[:hop_length]).max() > 1e-3  # the edges do differ


def test_speechbrain_reflection_padding_is_part_of_the_model():
    """The same weights with zero padding (the authors' network) match SpeechBrain's output
    away from the edges only."""
    path, mel, _ = case("speechbrain-v1")
    forward = np.load(FIXTURES / "speechbrain-v1" / "toolkit_forward.npy")
    generator, config = load_generator(path)
    assert config.generator.conv_padding_mode == "reflect"
    config.generator.conv_padding_mode = "zeros"
    zero = type(generator).from_config(config).remove_weight_norm()
    zero.load_state_dict(generator.state_dict())
    with torch.inference_mode():
        audio = zero(torch.from_numpy(mel)[None]).reshape(-1).numpy()
    hop_length = config.mel.hop_length
    field = vocoder(path).receptive_field
    middle = slice(field.left * hop_length, (mel.shape[1] - field.right) * hop_length)
    assert audio[middle].size >= 4 * hop_length
    assert np.abs(audio[middle] - forward[middle]).max() < TOL
    assert np.abs(audio[:hop_length] - forward[:hop_length]).max() > 1e-3


BACKEND_CASES = [
    ("fast", "speechbrain-v1"),
    ("fast", "coqui-v3"),
    ("fast", "parallel-wavegan-v2-odd"),
    ("fast", "dle-v1"),
    ("onnx", "speechbrain-v3"),
    ("onnx", "parallel-wavegan-v2-odd"),
]


@pytest.mark.parametrize(("backend", "name"), BACKEND_CASES)
def test_every_backend_reproduces_the_toolkit(name, backend):
    if backend == "onnx":
        pytest.importorskip("onnxruntime")
    path, mel, expected = case(name)
    v = vocoder(path, backend=backend, edge_padding="toolkit")
    assert np.abs(v(mel, check=False).numpy() - expected).max() < TOL


@pytest.mark.slow
@pytest.mark.parametrize("name", ["speechbrain-v1", "parallel-wavegan-v2-odd"])
def test_compiled_backend_reproduces_the_toolkit(name):
    path, mel, expected = case(name)
    v = vocoder(path, backend="compiled", edge_padding="toolkit")
    assert np.abs(v(mel, check=False).numpy() - expected).max() < TOL


@pytest.mark.parametrize("name", ["speechbrain-v3", "coqui-v3"])
def test_streaming_blocks_and_batches_reproduce_the_toolkit(name):
    path, mel, expected = case(name)
    v = vocoder(path, edge_padding="toolkit", block_frames=16)
    pieces = list(v.stream([mel[:, :3], mel[:, 3:4], mel[:, 4:19], mel[:, 19:]]))
    assert np.abs(torch.cat(pieces).numpy() - expected).max() < TOL
    assert np.abs(v(mel, check=False).numpy() - expected).max() < TOL  # 7-frame blocks
    short = mel[:, :20]
    batch = v([mel, short], check=False)
    alone = v(short, check=False)
    assert np.abs(batch[0].numpy() - expected).max() < TOL
    assert np.abs(batch[1].numpy() - alone.numpy()).max() < TOL


def test_pad_edges_repeats_the_first_and_last_frames():
    mel = torch.arange(6.0).reshape(2, 3)
    out = pad_edges(mel, 2)
    assert out.tolist() == [[0, 0, 0, 1, 2, 2, 2], [3, 3, 3, 4, 5, 5, 5]]
    assert pad_edges(mel, 0) is mel


def test_unknown_edge_padding_is_refused():
    path, _, _ = case("coqui-v1")
    with pytest.raises(CheckpointError, match="unknown edge padding 'both'"):
        vocoder(path, edge_padding="both")


# ---------------------------------------------------------------------- conventions
def test_parallel_wavegan_convention_names_its_stats_file():
    path, _, _ = case("parallel-wavegan-v1")
    c = vocoder(path).convention
    assert c.compression.kind == "log10_clamp" and c.center and (c.fmin, c.fmax) == (80, 7600)
    assert c.normalization.kind == "per_band_stats"
    assert c.normalization.stats == str(FIXTURES / "parallel-wavegan-v1" / "stats.npy")


def test_coqui_and_nemo_conventions_come_from_their_configs():
    coqui = vocoder(case("coqui-v1")[0]).convention
    assert coqui.compression.kind == "db_normalized" and coqui.compression.max_abs_value == 4
    assert coqui.fmax is None or coqui.fmax == 8000  # mel_fmax null: Nyquist
    nemo = vocoder(case("nemo-v1")[0]).convention
    assert (nemo.window, nemo.center, nemo.compression.kind) == (
        "hann_symmetric",
        False,
        "ln_clamp",
    )


# ---------------------------------------------------------------------- refusals
def write_lightning(path: Path, hyper: object) -> None:
    torch.save(
        {"pytorch-lightning_version": "2.4.0", "state_dict": {}, "hyper_parameters": hyper}, path
    )


class _RunsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickle_that_would_run_code_is_refused_and_names_it(tmp_path):
    path = tmp_path / "evil.ckpt"
    marker = tmp_path / "ran"
    write_lightning(path, {"cfg": _RunsCode(marker)})
    with pytest.raises(CheckpointError) as e:
        load_generator(path)
    assert str(e.value) == (
        f"{path}: refused: the tensors and configuration in this checkpoint are readable, but "
        f"its pickle also holds {os.system.__module__}.system, an object whose loading could "
        "run code; nothing was loaded"
    )
    assert not marker.exists()


def test_a_lightning_checkpoint_of_another_model_is_named(tmp_path):
    path = tmp_path / "other.ckpt"
    write_lightning(path, {"cfg": {"encoder": {}}})
    with pytest.raises(CheckpointError, match="a Lightning checkpoint, but not of a NeMo HiFi-GAN"):
        load_generator(path)


def test_a_tar_without_nemo_files_and_a_truncated_nemo_are_named(tmp_path):
    other = tmp_path / "other.nemo"
    with tarfile.open(other, "w:") as tar:
        tar.add(FIXTURES / "nemo-v1" / "mel.npy", arcname="./mel.npy")
    with pytest.raises(CheckpointError) as e:
        load_generator(other)
    assert str(e.value) == (
        f"{other}: NeMo checkpoint: a tar archive without model_config.yaml and "
        "model_weights.ckpt (holds mel.npy)"
    )
    cut = tmp_path / "cut.nemo"
    cut.write_bytes((FIXTURES / "nemo-v1" / "HifiGan.nemo").read_bytes()[:30000])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_generator(cut)


def copy_case(name: str, tmp_path: Path) -> Path:
    import shutil

    target = tmp_path / name
    shutil.copytree(FIXTURES / name, target)
    return target / CASES[name][0]


def test_unsupported_toolkit_files_name_the_toolkit_and_what_is_missing(tmp_path):
    pwg = copy_case("parallel-wavegan-v1", tmp_path)
    config = pwg.parent / "config.yml"
    config.write_text(config.read_text().replace("HiFiGANGenerator", "MelGANGenerator"))
    with pytest.raises(CheckpointError) as e:
        load_generator(pwg)
    assert str(e.value) == (
        f"{pwg}: ParallelWaveGAN/ESPnet checkpoint: its generator is MelGANGenerator, "
        "not a HiFi-GAN (HiFiGANGenerator)"
    )
    config.unlink()
    with pytest.raises(CheckpointError, match=r"its config.yml .* is not beside it"):
        load_generator(pwg)
    sb = copy_case("speechbrain-v1", tmp_path)
    (tmp_path / "speechbrain-v1" / "hyperparams.yaml").unlink()
    with pytest.raises(CheckpointError, match=r"SpeechBrain checkpoint: no hyperparams\.yaml"):
        load_generator(sb)
    coqui = copy_case("coqui-v1", tmp_path)
    cfg = coqui.parent / "config.json"
    cfg.write_text(cfg.read_text().replace('"hifigan_generator"', '"melgan_generator"'))
    with pytest.raises(CheckpointError, match="Coqui TTS checkpoint: its generator is melgan"):
        load_generator(coqui)


# ---------------------------------------------------------------------- writing
@pytest.mark.parametrize(
    ("source", "write", "reader"),
    [
        ("nemo-v1", write_parallel_wavegan, "parallel-wavegan"),
        ("dle-v3", write_coqui, "coqui"),
        ("parallel-wavegan-v2-odd", write_parallel_wavegan, "parallel-wavegan"),
    ],
)
def test_export_reads_back_with_the_same_output_and_convention(tmp_path, source, write, reader):
    path, mel, _ = case(source)
    generator, config = load_generator(path)
    name = "checkpoint-1steps.pkl" if reader == "parallel-wavegan" else "checkpoint_1.pth"
    written = write(generator, config, tmp_path / name)
    assert [p.name for p in written] == [name, "config.yml" if reader != "coqui" else "config.json"]
    _, _, toolkit, _ = read_generator_file(tmp_path / name)
    assert toolkit == reader
    original, again = vocoder(path), vocoder(tmp_path / name)
    assert again.convention.to_dict() == original.convention.to_dict()
    assert np.abs(again(mel, check=False).numpy() - original(mel, check=False).numpy()).max() < TOL


def test_export_layout_is_the_toolkits(tmp_path):
    generator, config = load_generator(case("nemo-v1")[0])
    write_parallel_wavegan(generator, config, tmp_path / "checkpoint-1steps.pkl")
    saved = torch.load(tmp_path / "checkpoint-1steps.pkl", weights_only=True)
    assert "input_conv.weight_g" in saved["model"]["generator"]
    assert "blocks.0.convs1.0.1.weight_v" in saved["model"]["generator"]
    write_coqui(generator, config, tmp_path / "checkpoint_1.pth")
    saved = torch.load(tmp_path / "checkpoint_1.pth", weights_only=True)
    assert "model_g.conv_pre.weight_g" in saved["model"]
    assert saved["config"]["generator_model"] == "hifigan_generator"


def test_the_toolkits_own_loaders_read_the_export():
    """Measured by scripts/make_toolkit_fixtures.py with ParallelWaveGAN's load_model and
    Coqui's HifiganGenerator on what hifigan's writers produce."""
    import json

    report = json.loads((FIXTURES / "readback.json").read_text())
    assert set(report["max_abs_diff"]) == {"parallel-wavegan", "coqui"}
    assert all(0 <= d < TOL for d in report["max_abs_diff"].values())


def test_a_reflection_padded_model_cannot_be_written_as_coqui(tmp_path):
    generator, config = load_generator(case("speechbrain-v1")[0])
    with pytest.raises(Exception, match="its convolutions pad with zeros only"):
        write_coqui(generator, config, tmp_path / "c.pth")
    assert not (tmp_path / "c.pth").exists()


# ---------------------------------------------------------------------- command line
def hifigan(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hifigan", *args], cwd=cwd, capture_output=True, text=True
    )


def test_cli_vocodes_describes_and_exports_toolkit_files(tmp_path):
    import soundfile as sf

    path, _, expected = case("coqui-v1")
    run = hifigan(
        "vocode", str(path.parent / "mel.npy"), "--model", str(path), "--edge-padding",
        "toolkit", "-o", "out", cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    audio, rate = sf.read(tmp_path / "out" / "mel.wav")
    assert rate == 16000 and audio.shape == expected.shape
    assert np.abs(audio - expected).max() < 2 / 32768  # 16-bit rounding
    run = hifigan("models", str(path), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "format       Coqui TTS" in run.stdout
    assert "its inference repeats 5 edge frames (--edge-padding toolkit)" in run.stdout
    (tmp_path / "pwg").mkdir()
    (tmp_path / "pwg" / "config.yml").write_text("mine\n")
    run = hifigan(
        "export", "--model", str(path), "--format", "parallel-wavegan", "-o",
        "pwg/checkpoint-1steps.pkl", cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 1
    assert "pwg/config.yml: already exists" in run.stderr
    assert (tmp_path / "pwg" / "config.yml").read_text() == "mine\n"
    assert not (tmp_path / "pwg" / "checkpoint-1steps.pkl").exists()


def test_raw_mels_are_normalised_with_the_stats_beside_a_parallel_wavegan_model():
    """A mel of the model's analysis given unnormalised (its convention named) is normalised
    with the model's own stats file, as ParallelWaveGAN's decoding does."""
    from hifigan.conventions import Normalization

    path, normalised, _ = case("parallel-wavegan-v1")
    v = vocoder(path)
    mean, scale = np.load(path.parent / "stats.npy")
    raw = normalised * scale[:, None] + mean[:, None]
    unnormalised = v.convention.replace(name="raw", normalization=Normalization("per_band_stats"))
    assert np.abs(v.prepare_mel(raw, convention=unnormalised).numpy() - normalised).max() < 1e-5


def test_copy_synthesis_computes_the_toolkits_mel():
    """Audio given to a toolkit model is analysed with that toolkit's mel (and normalised with
    its stats), not the authors'."""
    from hifigan.conventions import load_stats

    path, _, _ = case("parallel-wavegan-v1")
    v = vocoder(path)
    t = torch.arange(16000) / 16000
    audio = 0.3 * torch.sin(2 * torch.pi * 440 * t) * torch.sin(2 * torch.pi * 3 * t)
    values = v.convention.mel_spectrogram()(audio)
    expected = load_stats(path.parent / "stats.npy").normalize(values)
    assert torch.allclose(v.mel(audio.numpy()), expected, atol=1e-5)
    assert v.copy_synthesis(audio.numpy()).shape == (expected.shape[1] * v.hop_length,)


@pytest.mark.parametrize("name", ["nemo-v1", "speechbrain-v3", "parallel-wavegan-v1"])
def test_mel_check_knows_the_toolkit_models_convention(name):
    from hifigan.cli.mel_check import model_convention

    convention, label = model_convention(str(case(name)[0]))
    assert convention.name == CASES[name][2]
    assert label == f"{CASES[name][2]} (model {case(name)[0]})"


def test_bare_toolkit_weights_say_what_is_missing(tmp_path):
    """Weights without the file that describes them name the toolkit and the file to use."""
    with tarfile.open(FIXTURES / "nemo-v1" / "HifiGan.nemo") as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("model_weights.ckpt"))
        weights = tar.extractfile(member).read()
    bare = tmp_path / "model_weights.ckpt"
    bare.write_bytes(weights)
    with pytest.raises(CheckpointError) as e:
        load_generator(bare)
    assert str(e.value) == (
        f"{bare}: NeMo model weights (model_weights.ckpt) without their model_config.yaml: "
        "load the .nemo archive they came from"
    )
    pwg = torch.load(case("parallel-wavegan-v3")[0], weights_only=True)["model"]["generator"]
    espnet = tmp_path / "train.total_count.best.pth"
    torch.save({f"tts.generator.vocoder.{k}": v for k, v in pwg.items()}, espnet)
    with pytest.raises(
        CheckpointError, match=r"weights under tts\.generator\.vocoder\. \(an ESPnet2"
    ):
        load_generator(espnet)


@pytest.mark.parametrize(
    ("generator", "message"),
    [
        (
            {"upsample_paddings": [4, 4, 1, 1], "upsample_output_paddings": [0, 0, 0, 1]},
            "upsample kernel 4, rate 2, padding 1, output padding 1: need kernel - 2 * padding "
            "+ output padding = rate",
        ),
        ({"upsample_paddings": [4, 4]}, "need one value per upsampling stage"),
        ({"conv_padding_mode": "circular"}, "must be zeros or reflect, got 'circular'"),
        ({"inference_padding": -1}, "generator.inference_padding must be 0 or more, got -1"),
    ],
)
def test_the_variant_fields_are_validated(generator, message):
    from hifigan.config import HiFiGANConfig
    from hifigan.errors import ConfigError

    with pytest.raises(ConfigError) as e:
        HiFiGANConfig.from_dict({"generator": generator}, source="c.json")
    assert message in str(e.value) and str(e.value).startswith("c.json: ")


def test_lightning_bookkeeping_objects_are_read_inertly(tmp_path):
    """A callback's path and a metric's numpy scalar in a Lightning checkpoint are rebuilt as
    inert stand-ins; the model loads as from its .nemo archive."""
    from hifigan.toolkits.plain import load_yaml

    with tarfile.open(FIXTURES / "nemo-v3" / "HifiGan.nemo") as tar:
        members = {Path(m.name).name: m for m in tar.getmembers() if m.isfile()}
        (tmp_path / "model_config.yaml").write_bytes(
            tar.extractfile(members["model_config.yaml"]).read()
        )
        (tmp_path / "w.ckpt").write_bytes(tar.extractfile(members["model_weights.ckpt"]).read())
    path = tmp_path / "last.ckpt"
    torch.save(
        {
            "pytorch-lightning_version": "2.4.0",
            "state_dict": torch.load(tmp_path / "w.ckpt", weights_only=True),
            "callbacks": {"ModelCheckpoint": {"dirpath": Path("/runs/x"), "best": np.float64(1)}},
            "hyper_parameters": {"cfg": load_yaml(tmp_path / "model_config.yaml")},
        },
        path,
    )
    _, mel, expected = case("nemo-v3")
    assert np.abs(vocoder(path)(mel, check=False).numpy() - expected).max() < TOL
