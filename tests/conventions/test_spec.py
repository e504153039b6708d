"""Named mel conventions as data: loading, validation messages, the hifigan path unchanged."""

import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from hifigan import HiFiGANConfig, MelSpectrogram
from hifigan.config import MelConfig
from hifigan.conventions import (
    Convention,
    convention_from_dict,
    convention_from_mel_config,
    convention_names,
    floor_value,
    load_convention,
)
from hifigan.conventions.spec import validate_convention
from hifigan.errors import ConfigError

from conftest import GOLDEN, MEL_GOLDEN_ATOL, need

NAMED = [
    "bigvgan-22k",
    "bigvgan-24k",
    "bigvgan-44k",
    "coqui",
    "coqui-tacotron2",
    "espnet",
    "hifigan",
    "nemo",
    "nemo-fastpitch",
    "nemo-log1p",
    "parallel-wavegan",
    "parallel-wavegan-24k",
    "tacotron2",
    "vocos",
]


def test_the_fourteen_named_conventions_load_and_round_trip_through_json(tmp_path):
    assert convention_names() == NAMED
    for name in NAMED:
        c = load_convention(name)
        assert c.name == name and c.description and c.used_by
        path = tmp_path / f"{name}.json"
        path.write_text(c.to_json())
        assert load_convention(path) == c


@pytest.mark.parametrize(
    ("name", "floor"),
    [
        ("hifigan", math.log(1e-5)),
        ("coqui-tacotron2", math.log(1e-8)),
        ("vocos", math.log(1e-7)),
        ("parallel-wavegan", -10.0),
        ("coqui", -4.0),
        ("nemo-log1p", 0.0),
        ("nemo-fastpitch", math.log(1e-5)),
    ],
)
def test_floor_values(name, floor):
    assert floor_value(load_convention(name).compression) == pytest.approx(floor, abs=1e-9)


def test_table_facts():
    c = {n: load_convention(n) for n in NAMED}
    assert (c["hifigan"].pad, c["tacotron2"].pad) == (384, 512)
    assert c["hifigan"].num_frames(256 * 10) == 10 and c["tacotron2"].num_frames(256 * 10) == 11
    assert (c["hifigan"].time_offset, c["tacotron2"].time_offset) == (0.5, 0.0)
    pwg24 = c["parallel-wavegan-24k"]
    assert (pwg24.sample_rate, pwg24.n_fft, pwg24.hop_length, pwg24.win_length) == (
        24000,
        2048,
        300,
        1200,
    )
    assert (c["vocos"].mel_scale, c["vocos"].filter_norm, c["vocos"].n_mels) == ("htk", "none", 100)
    assert c["nemo"].window == "hann_symmetric" and c["nemo"].pad_mode == "zero"
    assert c["bigvgan-44k"].n_mels == 128 and c["bigvgan-44k"].hop_length == 512
    assert c["espnet"].normalization.kind == "global_mvn"
    assert c["parallel-wavegan"].normalization.kind == "per_band_stats"


def test_hifigan_convention_is_our_mel_and_matches_the_authors():
    golden = np.load(need(GOLDEN / "mel_LJ001-0001.npz"))
    wav = torch.from_numpy(golden["wav"])
    ours = load_convention("hifigan").mel_spectrogram()(wav)
    assert torch.equal(ours, MelSpectrogram.from_config(HiFiGANConfig.preset("v1").mel)(wav))
    assert np.abs(ours.numpy() - golden["mel"]).max() < MEL_GOLDEN_ATOL


def test_convention_from_a_model_config():
    assert convention_from_mel_config(HiFiGANConfig.preset("v1").mel).name == "hifigan"
    big24 = MelConfig(sample_rate=24000, n_mels=100, fmax=None)
    assert convention_from_mel_config(big24).name == "bigvgan-24k"
    other = convention_from_mel_config(MelConfig(sample_rate=16000, fmax=7600.0))
    assert other.name == "hifigan-config"
    assert (other.sample_rate, other.fmax, other.center) == (16000, 7600.0, False)


def write(tmp_path, data, name="mine.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


def test_a_user_convention_from_json(tmp_path):
    data = load_convention("parallel-wavegan").to_dict()
    data.update(name="pwg-16k", sample_rate=16000, hop_length=200, win_length=800)
    del data["description"], data["used_by"]
    c = load_convention(write(tmp_path, data))
    assert isinstance(c, Convention)
    assert (c.name, c.sample_rate, c.fmax, c.compression.kind) == (
        "pwg-16k",
        16000,
        7600.0,
        "log10_clamp",
    )
    # the name defaults to the file's stem; unspecified fields take the defaults
    minimal = load_convention(write(tmp_path, {"center": True}, "centred.json"))
    assert minimal.name == "centred" and minimal.center and minimal.n_mels == 80
    mel = minimal.mel_spectrogram()(torch.zeros(256 * 8))
    assert mel.shape == (80, 9)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"n_mels": 0}, "n_mels must be positive"),
        ({"n_mels": "80"}, 'n_mels must be an integer, got "80"'),
        ({"fmax": 20000}, "fmax (20000.0) must lie in (fmin, sample_rate / 2]"),
        ({"bands": 80}, "unknown field bands (known: sample_rate, "),
        ({"compression": {"kind": "log2"}}, "compression.kind must be one of"),
        ({"compression": {"floor": 0}}, "compression.floor must be positive"),
        ({"compression": {"base": 10}}, "unknown field compression.base (known: kind, floor, "),
        ({"normalization": {"kind": "zscore"}}, "normalization.kind must be one of"),
        ({"mel_scale": "bark"}, "mel_scale must be one of slaney, htk"),
        ({"win_length": 2048}, "win_length (2048) must not exceed n_fft"),
        ({"center": "yes"}, 'center must be true or false, got "yes"'),
        ({"power": 3}, "power must be 1 (magnitude) or 2 (power)"),
        ([1, 2], "a mel convention must be a JSON object, got [1, 2]"),
    ],
)
def test_user_json_errors_name_the_file_and_the_field(tmp_path, data, message):
    path = write(tmp_path, data)
    with pytest.raises(ConfigError) as err:
        load_convention(path)
    text = str(err.value)
    assert text.startswith(f"{path}: ") and message in text and "\n" not in text


def test_unreadable_and_unknown_conventions(tmp_path):
    with pytest.raises(ConfigError, match="invalid JSON at line 1"):
        load_convention(write(tmp_path, "{oops"))
    with pytest.raises(ConfigError, match="mel convention file not found"):
        load_convention(tmp_path / "absent.json")
    with pytest.raises(ConfigError, match=r"unknown mel convention 'hifi' \(named: bigvgan-22k"):
        load_convention("hifi")


@pytest.mark.parametrize("name", ["tacotron2", "nemo-fastpitch", "vocos"])
def test_centred_framing_matches_torch_stft_center(name):
    # torch.stft(center=True) pads n_fft/2 on each side: what these toolkits call
    c = load_convention(name)
    wav = torch.from_numpy(np.random.default_rng(1).normal(0, 0.1, 8000).astype(np.float32))
    window = torch.hann_window(c.win_length, periodic=c.window == "hann_periodic")
    pad_mode = "constant" if c.pad_mode == "zero" else "reflect"
    spec = torch.stft(
        wav,
        c.n_fft,
        c.hop_length,
        c.win_length,
        window,
        center=True,
        pad_mode=pad_mode,
        return_complex=True,
    ).abs()
    module = c.mel_spectrogram()
    expected = module.compress(module.mel_basis @ spec)
    ours = module(wav)
    assert ours.shape == expected.shape == (c.n_mels, c.num_frames(8000))
    assert torch.allclose(ours, expected, atol=1e-4)


def test_htk_filterbank_without_normalisation():
    from hifigan.mel import mel_filterbank

    fb = mel_filterbank(24000, 1024, 100, 0.0, 12000.0, scale="htk", norm="none")
    freqs = np.arange(513) * 24000 / 1024
    # peaks of 1 at the HTK-spaced centres, 2595 log10(1 + f / 700)
    mel_max = 2595 * np.log10(1 + 12000 / 700)
    centres = 700 * (10 ** (np.linspace(0, mel_max, 102)[1:-1] / 2595) - 1)
    assert fb.max() <= 1.0 + 1e-6 and fb.max(axis=1).min() > 0.5
    assert np.abs(freqs[fb.argmax(axis=1)] - centres).max() <= 24000 / 1024


_HIFIGAN = '{"name": "mine", "n_fft": 1024, %s}'


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ('"fmin": NaN', "fmin must be a finite number, got NaN (NaN and Infinity are not JSON)"),
        (
            '"compression": {"floor": Infinity}',
            "compression.floor must be a finite number, got Infinity",
        ),
        (
            '"compression": {"kind": "db", "ref_level_db": -Infinity}',
            "compression.ref_level_db must be a finite number, got -Infinity",
        ),
        ('"magnitude_eps": NaN', "magnitude_eps must be a finite number, got NaN"),
        ('"n_fft": 16777216', "n_fft (16777216) must lie in [2, 65536]"),
        ('"n_mels": 1000000', "n_mels (1000000) must lie in [1, 2048]"),
        ('"n_mels": 600', "n_mels (600) exceeds the 513 frequency bins of n_fft (1024)"),
        ('"sample_rate": 0', "sample_rate must be positive, got 0"),
        ('"sample_rate": 1000000', "sample_rate (1000000) must lie in [1000, 768000]"),
        ('"hop_length": -256', "hop_length must be positive, got -256"),
        ('"center": true, "hop_length": 4096', "hop_length (4096) must not exceed n_fft"),
        ('"win_length": 0', "win_length must be positive, got 0"),
        ('"fmin": -1', "fmin (-1.0) must lie in [0, sample_rate / 2)"),
        ('"n_fft": true', "n_fft must be an integer, got true"),
        ('"fmin": "0"', 'fmin must be a number, got "0"'),
        ('"fmax": false', "fmax must be a number or null, got false"),
        ('"power": "2"', 'power must be a number, got "2"'),
        ('"compression": {"floor": true}', "compression.floor must be a number, got true"),
        (
            '"n_fft": 65536, "win_length": 65536, "n_mels": 2048, "fmax": null',
            "n_fft (65536) with n_mels 2048 and hop_length 256 at 22050 Hz: the "
            "filterbank and the mel of 60 s of audio would take 2.8 GiB, over the 1 GiB budget",
        ),
    ],
)
def test_convention_values_are_validated_before_use(tmp_path, fields, message):
    path = write(tmp_path, _HIFIGAN % fields)
    with pytest.raises(ConfigError) as err:
        load_convention(path)
    text = str(err.value)
    assert text.startswith(f"{path}: ") and message in text and "\n" not in text, text


def test_conventions_built_in_python_are_checked_for_finite_values():
    data = load_convention("espnet").to_dict()
    data["compression"]["floor"] = float("nan")
    with pytest.raises(ConfigError) as err:
        convention_from_dict(data, source="my convention")
    assert str(err.value) == "my convention: compression.floor must be a finite number, got NaN"
    changed = load_convention("hifigan").replace(magnitude_eps=float("inf"))
    with pytest.raises(ConfigError, match="magnitude_eps must be a finite number, got Infinity"):
        validate_convention(changed, "changed")


def test_named_files_and_older_layouts_read_unchanged(tmp_path):
    from importlib import resources

    folder = resources.files("hifigan.conventions").joinpath("named")
    for name in NAMED:
        shipped = json.loads(folder.joinpath(f"{name}.json").read_text())
        # to_dict writes the shipped files' layout, key for key and in their order
        assert list(load_convention(name).to_dict()) == list(shipped), name
    # the layout written before: name first, description and used_by last, every compression
    # field spelled out
    c = load_convention("coqui")
    older = {
        "name": c.name,
        **c.front_end(),
        **{k: getattr(c, k) for k in ("mel_scale", "filter_norm", "window", "center")},
        **{k: getattr(c, k) for k in ("pad_mode", "power", "magnitude_eps")},
        "compression": dataclasses.asdict(c.compression),
        "normalization": dataclasses.asdict(c.normalization),
        "description": c.description,
        "used_by": list(c.used_by),
    }
    assert load_convention(write(tmp_path, older, "coqui.json")) == c


def test_conventions_built_in_python_are_held_to_the_file_types():
    c = load_convention("hifigan")
    for changes, message in [
        ({"n_fft": "1024"}, 'changed: n_fft must be an integer, got "1024"'),
        ({"center": 1}, "changed: center must be true or false, got 1"),
        ({"used_by": ["x", 3]}, "changed: used_by[1] must be a string, got 3"),
        ({"name": None}, "changed: name must be a string, got null"),
    ]:
        with pytest.raises(ConfigError) as err:
            validate_convention(c.replace(**changes), "changed")
        assert str(err.value) == message
