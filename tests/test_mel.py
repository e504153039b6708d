import numpy as np
import pytest
import torch

from hifigan import HiFiGANConfig, MelSpectrogram

from conftest import GOLDEN, MEL_GOLDEN_ATOL, need


@pytest.fixture(scope="module")
def golden():
    return np.load(need(GOLDEN / "mel_LJ001-0001.npz"))


@pytest.mark.parametrize(("for_loss", "key"), [(False, "mel"), (True, "mel_fmax_none")])
def test_mel_matches_the_authors(golden, for_loss, key):
    mel = MelSpectrogram.from_config(HiFiGANConfig.preset("v1").mel, for_loss=for_loss)
    out = mel(torch.from_numpy(golden["wav"])).numpy()
    assert out.shape == golden[key].shape == (80, 831)
    assert np.abs(out - golden[key]).max() < MEL_GOLDEN_ATOL


def test_batched_equals_one_by_one(golden):
    mel = MelSpectrogram()
    wav = torch.from_numpy(golden["wav"][:20000])
    batch = torch.stack([wav, wav.flip(0) * 0.5])
    out = mel(batch)
    assert out.shape == (2, 80, mel.num_frames(20000))
    assert torch.allclose(out[0], mel(batch[0]), atol=1e-5)
    assert torch.allclose(out[1], mel(batch[1]), atol=1e-5)


def test_frames_are_samples_over_hop():
    mel = MelSpectrogram()
    for n in (512, 8192, 256 * 37):
        assert mel(torch.zeros(n)).shape[-1] == mel.num_frames(n) == n // 256
    assert mel.num_frames(mel.min_samples) >= 1


def test_stays_float32_under_autocast(golden):
    mel = MelSpectrogram()
    wav = torch.from_numpy(golden["wav"][:8192])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = mel(wav)
    assert out.dtype == torch.float32
    assert torch.equal(out, mel(wav))


def test_other_band_counts():
    mel = MelSpectrogram(n_mels=100, fmax=None)
    assert mel(torch.randn(4096)).shape == (100, 16)
    # a Slaney filterbank: every band is a non-empty triangle of unit area in Hz
    fb = mel.mel_basis.numpy()
    assert (fb.max(axis=1) > 0).all()


def test_filterbank_is_module_state_not_global():
    a, b = MelSpectrogram(fmax=8000.0), MelSpectrogram(fmax=None)
    assert "mel_basis" in dict(a.named_buffers())
    assert not torch.equal(a.mel_basis, b.mel_basis)
    assert a.state_dict() == {}  # not persisted: rebuilt from the config
