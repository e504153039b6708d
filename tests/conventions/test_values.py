"""Value compressions and their inverses; statistics files."""

import importlib.util

import numpy as np
import pytest
import torch

from hifigan.conventions import (
    Compression,
    compress,
    expand,
    floor_linear,
    load_convention,
    load_stats,
)
from hifigan.errors import InputError

KINDS = [
    Compression("ln_clamp", 1e-5),
    Compression("ln_add", 1e-5),
    Compression("ln_add", 1.0),
    Compression("log10_clamp", 1e-10),
    Compression("log10_add", 1e-3),
    Compression("db", 1e-8),
    Compression("db_normalized", 1e-8),
    Compression("db_normalized", 1e-8, symmetric=False, max_abs_value=1.0),
]


@pytest.mark.parametrize("c", KINDS, ids=lambda c: f"{c.kind}-{c.floor:g}-{c.symmetric}")
def test_expand_inverts_compress_above_the_floor(c):
    x = torch.logspace(-9, 1.5, 500, dtype=torch.float64)
    back = expand(compress(x, c), c)
    keep = (x > floor_linear(c)) & (x < 10.0)  # coqui's dB range clips at 10 (0 dB + 20)
    assert torch.allclose(back[keep], x[keep], rtol=1e-9)


def test_coqui_values():
    c = load_convention("coqui").compression
    x = torch.tensor([1e-9, 1e-4, 1e-2, 1.0, 10.0, 100.0], dtype=torch.float64)
    # 20 log10(x) - 20 dB, [-100, 0] dB onto [-4, 4], clipped
    assert compress(x, c).tolist() == pytest.approx([-4.0, -4.0, -0.8, 2.4, 4.0, 4.0])
    assert floor_linear(c) == pytest.approx(1e-4)


def test_stats_files(tmp_path):
    rng = np.random.default_rng(0)
    frames = rng.normal(-3.0, 1.5, size=(1000, 80))
    mean, std = frames.mean(axis=0), frames.std(axis=0)
    np.save(tmp_path / "stats.npy", np.stack([mean, std]))
    np.savez(
        tmp_path / "feats_stats.npz",
        count=np.array(1000),
        sum=frames.sum(axis=0),
        sum_square=(frames**2).sum(axis=0),
    )
    np.savez(tmp_path / "plain.npz", mean=mean, scale=std)
    for name in ("stats.npy", "feats_stats.npz", "plain.npz"):
        stats = load_stats(tmp_path / name)
        assert np.allclose(stats.mean, mean) and np.allclose(stats.scale, std)
    v = torch.from_numpy(frames.T.copy())
    stats = load_stats(tmp_path / "feats_stats.npz")
    z = stats.normalize(v)
    assert torch.allclose(z.mean(dim=1), torch.zeros(80, dtype=torch.float64), atol=1e-9)
    assert torch.allclose(stats.denormalize(z), v)


def test_stats_errors(tmp_path):
    np.save(tmp_path / "bad.npy", np.zeros((3, 80)))
    with pytest.raises(
        InputError, match=r"bad.npy: a .npy stats file must have shape \(2, n_mels\)"
    ):
        load_stats(tmp_path / "bad.npy")
    np.savez(tmp_path / "odd.npz", foo=np.zeros(3))
    with pytest.raises(InputError, match="expected arrays count, sum, sum_square"):
        load_stats(tmp_path / "odd.npz")
    with pytest.raises(InputError, match="stats file not found"):
        load_stats(tmp_path / "absent.h5")
    np.save(tmp_path / "zero.npy", np.stack([np.zeros(80), np.zeros(80)]))
    with pytest.raises(InputError, match="stats scale must be positive"):
        load_stats(tmp_path / "zero.npy")


@pytest.mark.skipif(importlib.util.find_spec("h5py") is not None, reason="h5py is installed")
def test_stats_h5_without_h5py_says_what_to_install(tmp_path):
    (tmp_path / "stats.h5").write_bytes(b"\x89HDF\r\n\x1a\n")
    with pytest.raises(InputError, match=r"needs the toolkits extra: pip install .hifigan\[toolk"):
        load_stats(tmp_path / "stats.h5")


@pytest.mark.skipif(importlib.util.find_spec("h5py") is None, reason="h5py is not installed")
def test_stats_h5(tmp_path):
    import h5py

    with h5py.File(tmp_path / "stats.h5", "w") as f:
        f["mean"] = np.arange(80.0)
        f["scale"] = np.full(80, 2.0)
    stats = load_stats(tmp_path / "stats.h5")
    assert stats.mean[3] == 3.0 and stats.scale[0] == 2.0
