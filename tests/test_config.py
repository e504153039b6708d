import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch

from hifigan import ConfigError, Generator, HiFiGANConfig, preset_names
from hifigan.config import MelConfig, upsample_plan

from conftest import GOLDEN, SHARED, need


def test_presets_carry_the_papers_hyperparameters():
    assert {"v1", "v2", "v3"} <= set(preset_names())
    v1, v2, v3 = (HiFiGANConfig.preset(n) for n in ("v1", "v2", "v3"))
    m = v1.mel
    assert (m.sample_rate, m.n_fft, m.hop_length, m.win_length, m.n_mels) == (
        22050,
        1024,
        256,
        1024,
        80,
    )
    assert (m.fmin, m.fmax, m.fmax_loss) == (0.0, 8000.0, None)
    assert (
        v1.generator.upsample_initial_channel == 512
        and v2.generator.upsample_initial_channel == 128
    )
    assert v1.generator.upsample_rates == (8, 8, 2, 2)
    assert v1.generator.resblock_dilation_sizes == ((1, 3, 5),) * 3
    assert v3.generator.resblock == 2 and v3.generator.upsample_rates == (8, 8, 4)
    assert v3.generator.resblock_dilation_sizes == ((1, 2), (2, 6), (3, 12))
    t = v1.train
    assert (t.segment_size, t.batch_size, t.learning_rate) == (8192, 16, 2e-4)
    assert (t.adam_b1, t.adam_b2, t.weight_decay, t.lr_decay) == (0.8, 0.99, 0.01, 0.999)
    assert (t.lambda_fm, t.lambda_mel) == (2.0, 45.0)
    assert v1.discriminator.periods == (2, 3, 5, 7, 11)


@pytest.mark.parametrize(
    ("file", "preset"),
    [
        ("reference/official_lj_v2/config.json", "v2"),
        ("golden/config_v1.json", "v1"),
        ("golden/config_v3.json", "v3"),
    ],
)
def test_reads_the_authors_config_format(file, preset):
    ours = HiFiGANConfig.from_file(need(SHARED / file))
    expected = HiFiGANConfig.preset(preset)
    assert ours.generator == expected.generator
    assert ours.mel == expected.mel
    assert ours.train == expected.train


def test_round_trips_through_both_formats(tmp_path):
    cfg = HiFiGANConfig.preset("v3")
    assert HiFiGANConfig.from_dict(cfg.to_dict()) == cfg
    back = HiFiGANConfig.from_dict(cfg.to_authors_dict())
    assert (back.generator, back.mel, back.train) == (cfg.generator, cfg.mel, cfg.train)
    cfg.save(tmp_path / "c.json")
    assert HiFiGANConfig.from_file(tmp_path / "c.json") == cfg


def test_num_mels_is_a_parameter():
    data = HiFiGANConfig.preset("v2").to_dict()
    data["mel"]["n_mels"] = 100
    assert HiFiGANConfig.from_dict(data).mel.n_mels == 100


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        (
            "generator",
            "upsample_rates",
            [8, 8, 2, 4],
            "product of upsample_rates [8, 8, 2, 4] is 512, but hop_length is 256",
        ),
        ("generator", "upsample_kernel_sizes", [16, 16, 4], "same length"),
        ("generator", "resblock", 3, "resblock must be 1 or 2"),
        ("mel", "fmax", 20000.0, "fmax (20000.0) must lie in"),
        ("mel", "n_fft", "big", 'mel.n_fft must be an integer, got "big"'),
        ("train", "segment_size", 8000, "multiple of hop_length"),
        (
            "train",
            "learning_rte",
            1.0,
            "unknown field train.learning_rte (did you mean learning_rate?)",
        ),
    ],
)
def test_invalid_values_are_reported(section, key, value, message):
    data = HiFiGANConfig.preset("v1").to_dict()
    data[section][key] = value
    with pytest.raises(ConfigError) as e:
        HiFiGANConfig.from_dict(data, source="my.json")
    assert message in str(e.value)
    assert str(e.value).startswith("my.json: ")


def test_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        HiFiGANConfig.from_file(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{\n  'x': 1\n}")
    with pytest.raises(ConfigError, match=r"bad.json: invalid JSON at line 2"):
        HiFiGANConfig.from_file(bad)
    with pytest.raises(ConfigError, match="unknown preset 'v9'"):
        HiFiGANConfig.preset("v9")


def test_golden_configs_are_plain_json():
    # guards the parametrised test above against a silently empty golden folder
    assert json.loads(need(GOLDEN / "config_v3.json").read_text())["resblock"] == "2"


_BAD_VALUES = [
    ("train", "adam_b1", 2, "train.adam_b1 must lie in [0, 1), got 2"),
    ("train", "learning_rate", -1, "train.learning_rate must lie in (0, inf), got -1"),
    (
        "train",
        "learning_rate",
        float("nan"),
        "train.learning_rate must be a finite number, got NaN",
    ),
    ("mel", "n_mels", float("inf"), "mel.n_mels must be a finite number, got Infinity"),
    ("discriminator", "msd_groups", [1, 4, 16, 0, 16, 16, 1], "msd_groups must list positive"),
    ("discriminator", "periods", [2, 0, 5], "discriminator.periods must list positive integers"),
    ("generator", "upsample_initial_channel", -128, "must be a positive multiple of 2 ** 4"),
    ("generator", "upsample_initial_channel", 0, "must be a positive multiple of 2 ** 4"),
    ("generator", "resblock_kernel_sizes", [3, -7, 11], "resblock_kernel_sizes must list positive"),
    ("generator", "resblock_dilation_sizes", [[1, 3, 5], [1, 0, 5], [1, 3, 5]], "dilations must"),
    ("generator", "upsample_rates", [-8, -8, 4], "upsample_rates must list positive integers"),
    ("train", "segment_size", 0, "train.segment_size must be positive, got 0"),
    ("train", "segment_size", -4096, "train.segment_size must be positive, got -4096"),
    ("train", "num_workers", -2, "train.num_workers must be 0 or more, got -2"),
    ("mel", "fmin", -5.0, "mel.fmin (-5.0) must lie in [0, sample_rate / 2)"),
]


@pytest.mark.parametrize(("section", "key", "value", "message"), _BAD_VALUES)
def test_out_of_range_values_are_named(tmp_path, section, key, value, message):
    data = HiFiGANConfig.preset("v1").to_dict()
    data[section][key] = value
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError) as e:
        HiFiGANConfig.from_file(path)
    assert str(e.value).startswith(f"{path}: ")
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_authors_format_with_a_bad_or_missing_key(tmp_path):
    data = HiFiGANConfig.preset("v1").to_authors_dict()
    data["resblock"] = "abc"
    with pytest.raises(ConfigError, match=r'generator\.resblock must be an integer, got "abc"$'):
        HiFiGANConfig.from_dict(data, "a.json")
    del data["upsample_rates"]
    with pytest.raises(ConfigError, match="authors' config format but lacks upsample_rates"):
        HiFiGANConfig.from_dict(data, "a.json")


def _rate_presets_script():
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "scripts" / "write_rate_presets.py"
    spec = importlib.util.spec_from_file_location("write_rate_presets", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_upsample_plan_gives_the_papers_stages_and_splits_other_hops():
    assert upsample_plan(256, 4) == ((8, 8, 2, 2), (16, 16, 4, 4))
    assert upsample_plan(256, 3) == ((8, 8, 4), (16, 16, 8))
    assert upsample_plan(480, 4) == ((8, 6, 5, 2), (16, 12, 11, 4))
    rates, kernels = upsample_plan(300, 4)
    assert math.prod(rates) == 300 and all((k - r) % 2 == 0 for r, k in zip(rates, kernels))
    with pytest.raises(ConfigError, match="hop_length 7 cannot be split into 2 upsampling stages"):
        upsample_plan(7, 2)


def test_rate_presets_are_what_the_rule_derives():
    derived = _rate_presets_script().rate_presets()
    assert len(derived) == 12
    for name, config in derived.items():
        assert HiFiGANConfig.preset(name) == config, name


@pytest.mark.parametrize("name", ["v1-16k", "v2-24k", "v3-44k", "v1-48k", "v3-48k"])
def test_rate_presets_build_generators_with_the_right_hop(name):
    config = HiFiGANConfig.preset(name)
    generator = Generator.from_config(config).eval()
    with torch.no_grad():
        audio = generator(torch.zeros(1, config.mel.n_mels, 6))
    assert audio.shape == (1, 1, 6 * config.mel.hop_length)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '{"mel": {"fmin": NaN}}',
            "mel.fmin must be a finite number, got NaN (NaN and Infinity are not JSON)",
        ),
        (
            '{"train": {"lambda_mel": -Infinity}}',
            "train.lambda_mel must be a finite number, got -Infinity",
        ),
        (
            '{"generator": {"upsample_rates": [8, Infinity]}}',
            "generator.upsample_rates[1] must be a finite number, got Infinity",
        ),
        ('{"mel": {"n_fft": 16777216}}', "mel.n_fft (16777216) must lie in [2, 65536]"),
        ('{"mel": {"n_mels": 1000000}}', "mel.n_mels (1000000) must lie in [1, 2048]"),
        ('{"mel": {"n_mels": 600}}', "mel.n_mels (600) exceeds the 513 frequency bins"),
        ('{"mel": {"sample_rate": 5}}', "mel.sample_rate (5) must lie in [1000, 768000]"),
        ('{"mel": {"hop_length": 0}}', "mel.hop_length must be positive, got 0"),
        ('{"mel": {"fmax_loss": 1e9}}', "mel.fmax_loss (1000000000.0) must lie in (fmin, "),
        ('{"mel": {"n_fft": true}}', "mel.n_fft must be an integer, got true"),
        (
            '{"train": {"learning_rate": "2e-4"}}',
            'train.learning_rate must be a number, got "2e-4"',
        ),
        ('{"train": {"batch_size": "16"}}', 'train.batch_size must be an integer, got "16"'),
        ('{"train": {"batch_size": 16.5}}', "train.batch_size must be an integer, got 16.5"),
        (
            '{"generator": {"resblock_kernel_sizes": [3, "7"]}}',
            'resblock_kernel_sizes[1] must be an integer, got "7"',
        ),
        ("[[[[[[" * 20000 + "]]]]]]" * 20000, "invalid JSON: nested too deeply"),
    ],
)
def test_config_files_are_validated_field_by_field(tmp_path, text, message):
    path = tmp_path / "c.json"
    path.write_text(text)
    with pytest.raises(ConfigError) as e:
        HiFiGANConfig.from_file(path)
    assert str(e.value).startswith(f"{path}: ") and message in str(e.value), str(e.value)
    assert "\n" not in str(e.value)


def test_a_config_carried_by_a_checkpoint_is_validated_like_a_file():
    data = HiFiGANConfig.preset("v1").to_dict()
    data["train"]["adam_b1"] = float("nan")  # a checkpoint's dict holds Python floats
    with pytest.raises(ConfigError) as e:
        HiFiGANConfig.from_dict(data, source="g.pt (embedded config)")
    assert str(e.value) == "g.pt (embedded config): train.adam_b1 must be a finite number, got NaN"
    data = HiFiGANConfig.preset("v1").to_dict()
    data["mel"]["n_fft"] = 2**24
    with pytest.raises(ConfigError, match=r"mel\.n_fft \(16777216\) must lie in \[2, 65536\]"):
        HiFiGANConfig.from_dict(data, source="g.pt (embedded config)")


def test_a_config_path_that_is_not_a_config_file(tmp_path):
    with pytest.raises(ConfigError, match=r": is a folder, not a config file$"):
        HiFiGANConfig.from_file(tmp_path)
    audio = tmp_path / "a.json"
    audio.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(200)))
    with pytest.raises(ConfigError, match=r"a\.json: is a WAV audio file, not a config file"):
        HiFiGANConfig.from_file(audio)


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        ("generator", "upsample_initial_channel", 2**30, "(1073741824) must not exceed 8192"),
        ("generator", "upsample_initial_channel", 8192, "these sizes make 3494 million weights"),
        ("generator", "resblock_dilation_sizes", [[1], [1], [1, 10**7]], "[1, 10000000]]) must"),
        ("train", "batch_size", 10**9, "train.batch_size (1000000000) must not exceed 4096"),
        ("train", "segment_size", 256 * 10**6, "train.segment_size (256000000) must not exceed"),
        ("discriminator", "msd_scales", 1000, "discriminator.msd_scales (1000) must not exceed 8"),
    ],
)
def test_sizes_that_would_exhaust_memory_are_refused(section, key, value, message):
    data = HiFiGANConfig.preset("v1").to_dict()
    data[section][key] = value
    with pytest.raises(ConfigError) as e:
        HiFiGANConfig.from_dict(data, source="big.json")
    assert str(e.value).startswith("big.json: ") and message in str(e.value), str(e.value)


def test_a_convention_carried_by_a_config_is_validated():
    from hifigan.conventions import load_convention

    data = HiFiGANConfig.preset("v1").to_dict()
    data["mel"]["convention"] = {**load_convention("hifigan").to_dict(), "n_fft": 2**24}
    with pytest.raises(ConfigError) as e:
        HiFiGANConfig.from_dict(data, source="g.pt (embedded config)")
    assert str(e.value) == (
        "g.pt (embedded config): mel.convention.n_fft (16777216) must lie in [2, 65536]"
    )


def test_a_convention_and_a_config_are_told_apart(tmp_path):
    from hifigan.conventions import load_convention

    convention = tmp_path / "conv.json"
    convention.write_text(load_convention("espnet").to_json())
    with pytest.raises(ConfigError) as e:
        HiFiGANConfig.from_file(convention)
    assert str(e.value) == (
        f"{convention}: is a mel convention, not a model config: pass it as --convention "
        "(hifigan mel) or --mel-convention (hifigan vocode)"
    )
    config = tmp_path / "cfg.json"
    HiFiGANConfig.preset("v1").save(config)
    with pytest.raises(ConfigError, match=r"cfg\.json: is a model config, not a mel convention"):
        load_convention(config)


# ---------------------------------------------------------------------- one validator
# the same mistake in a model config's mel section, in a mel convention file and in a
# convention carried by a checkpoint's config: one validator, so one wording ({} is the
# field's place in the file)
_SAME_MISTAKES = [
    ("hop_length", "256", '{}hop_length must be an integer, got "256"'),
    ("n_fft", True, "{}n_fft must be an integer, got true"),
    ("n_mels", 80.5, "{}n_mels must be an integer, got 80.5"),
    ("sample_rate", None, "{}sample_rate must be an integer, got null"),
    ("win_length", [1024], "{}win_length must be an integer, got [1024]"),
    ("fmin", "0", '{}fmin must be a number, got "0"'),
    ("fmax", False, "{}fmax must be a number or null, got false"),
    ("fmax", float("nan"), "{}fmax must be a finite number, got NaN"),
    ("hop", 256, "unknown field {}hop (did you mean hop_length?)"),
]


@pytest.mark.parametrize(("key", "value", "problem"), _SAME_MISTAKES)
def test_the_same_mistake_reads_the_same_in_configs_and_conventions(tmp_path, key, value, problem):
    from hifigan.conventions import load_convention

    nan_literal = " (NaN and Infinity are not JSON)" if value != value else ""
    config = HiFiGANConfig.preset("v1").to_dict()
    config["mel"][key] = value
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    with pytest.raises(ConfigError) as e:
        HiFiGANConfig.from_file(path)
    assert str(e.value) == f"{path}: {problem.format('mel.')}{nan_literal}"

    convention = load_convention("hifigan").to_dict()
    convention[key] = value
    path = tmp_path / "convention.json"
    path.write_text(json.dumps(convention))
    with pytest.raises(ConfigError) as e:
        load_convention(path)
    assert str(e.value) == f"{path}: {problem.format('')}{nan_literal}"

    carried = HiFiGANConfig.preset("v1").to_dict()
    carried["mel"]["convention"] = convention  # Python values, as a checkpoint holds them
    with pytest.raises(ConfigError) as e:
        HiFiGANConfig.from_dict(carried, source="g.pt (embedded config)")
    assert str(e.value) == f"g.pt (embedded config): {problem.format('mel.convention.')}"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"mel": 80}, "mel must be a JSON object, got 80"),
        ({"train": None}, "train must be a JSON object, got null"),
        ({"name": 7}, "name must be a string, got 7"),
        (
            {"generator": {"upsample_rates": 256}},
            "upsample_rates must be a list of integers, got 256",
        ),
        (
            {"generator": {"resblock_dilation_sizes": [[1, 3], [2, "6"]]}},
            'generator.resblock_dilation_sizes[1][1] must be an integer, got "6"',
        ),
        ({"generator": {"conv_padding_mode": 0}}, "generator.conv_padding_mode must be a string"),
        ({"discriminator": {"msd_scales": 1e400}}, "discriminator.msd_scales must be a finite"),
        (
            {"mel": {"convention": "vocos"}},
            'mel.convention must be a JSON object or null, got "vocos"',
        ),
        ({"trian": {}}, "unknown field trian (did you mean train?)"),
        (
            {"mel": {"bands": 80, "hop": 256}},
            "unknown fields mel.bands, mel.hop (known: sample_rate",
        ),
    ],
)
def test_every_section_and_field_is_typed_by_its_annotation(change, message):
    data = HiFiGANConfig.preset("v1").to_dict()
    for section, value in change.items():
        if isinstance(value, dict) and isinstance(data.get(section), dict):
            data[section].update(value)
        else:
            data[section] = value
    with pytest.raises(ConfigError) as e:
        HiFiGANConfig.from_dict(data, source="c.json")
    assert str(e.value).startswith("c.json: ") and message in str(e.value), str(e.value)
    assert "\n" not in str(e.value)


def test_a_config_built_in_python_is_held_to_the_same_types():
    config = HiFiGANConfig.preset("v1")
    config.train.batch_size = "16"
    with pytest.raises(ConfigError) as e:
        config.validate("my config")
    assert str(e.value) == 'my config: train.batch_size must be an integer, got "16"'
    config = HiFiGANConfig.preset("v1")
    config.mel.fmax_loss = float("inf")
    with pytest.raises(ConfigError, match=r"mel\.fmax_loss must be a finite number, got Inf"):
        config.validate()


def test_mel_config_and_convention_share_the_front_end_fields():
    from hifigan.conventions import Convention, load_convention
    from hifigan.frontend import MelFrontEnd

    shared = [f.name for f in dataclasses.fields(MelFrontEnd)]
    assert shared == ["sample_rate", "n_fft", "hop_length", "win_length", "n_mels", "fmin", "fmax"]
    for cls in (MelConfig, Convention):
        assert issubclass(cls, MelFrontEnd)
        assert [f.name for f in dataclasses.fields(cls)][: len(shared)] == shared
    # a model's mel config and the convention it reads are built from one another
    vocos = load_convention("vocos")
    mel = MelConfig(**vocos.front_end(), convention=vocos.to_dict())
    assert mel.front_end() == vocos.front_end() and (mel.n_mels, mel.hop_length) == (100, 256)
    # the convention stays read-only and hashable (it keys caches), MelConfig stays editable
    with pytest.raises(dataclasses.FrozenInstanceError):
        vocos.n_fft = 2048
    assert hash(vocos.replace()) == hash(vocos) and vocos.replace(n_mels=80) != vocos
    mel.n_mels = 80
    assert mel.n_mels == 80


def test_a_checkpoint_carrying_a_convention_loads_and_a_broken_one_is_named(tmp_path):
    from hifigan import Generator
    from hifigan.checkpoint import load_generator, save_checkpoint
    from hifigan.conventions import convention_from_mel_config, load_convention

    pwg = load_convention("parallel-wavegan")
    config = HiFiGANConfig.preset("debug")
    config.mel = MelConfig(**pwg.front_end(), convention=pwg.to_dict())
    config.validate()
    path = tmp_path / "g.pt"
    save_checkpoint(path, config, Generator.from_config(config))
    _, loaded = load_generator(path)
    assert loaded == config and isinstance(loaded.mel.convention, dict)
    assert convention_from_mel_config(loaded.mel) == pwg

    data = torch.load(path, weights_only=True)
    data["config"]["mel"]["convention"]["compression"]["floor"] = "1e-10"
    broken = tmp_path / "broken.pt"
    torch.save(data, broken)
    with pytest.raises(ConfigError) as e:
        load_generator(broken)
    assert str(e.value) == (
        f"{broken} (embedded config): mel.convention.compression.floor must be a number, "
        'got "1e-10"'
    )


def test_the_cli_prints_the_one_line_and_exits_1(tmp_path):
    import subprocess
    import sys

    config = HiFiGANConfig.preset("debug").to_dict()
    config["mel"]["hop_length"] = "256"
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    wav = tmp_path / "a.wav"
    wav.write_bytes(b"")  # never read: the config is refused first
    done = subprocess.run(
        [sys.executable, "-m", "hifigan", "mel", wav, "-o", tmp_path / "out", "--config", path],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert done.stderr == f'error: {path}: mel.hop_length must be an integer, got "256"\n'
    assert not (tmp_path / "out").exists()
