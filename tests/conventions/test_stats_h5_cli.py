"""ParallelWaveGAN's ``stats.h5`` through ``hifigan vocode --mel-stats``: installed by the
``toolkits`` extra (part of ``all``), and read exactly as the same statistics in a ``.npy``."""

import numpy as np
import pytest
import torch

from hifigan.checkpoint import save_checkpoint
from hifigan.config import HiFiGANConfig
from hifigan.conventions import load_convention
from hifigan.generator import Generator
from hifigan.io import load_audio

h5py = pytest.importorskip("h5py", reason="h5py comes with pip install 'hifigan[toolkits]'")


def test_vocode_reads_stats_h5_like_the_same_stats_in_npy(run_cli, tmp_path):
    torch.manual_seed(0)
    config = HiFiGANConfig.preset("debug")
    save_checkpoint(tmp_path / "g.pt", config, Generator.from_config(config))
    convention = load_convention("parallel-wavegan")
    t = np.arange(int(1.2 * convention.sample_rate)) / convention.sample_rate
    wav = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(
        np.float32
    )
    mel = convention.mel_spectrogram()(torch.from_numpy(wav)).numpy().astype(np.float64)
    mean, scale = mel.mean(axis=1), mel.std(axis=1) + 1e-3
    np.save(tmp_path / "m.npy", ((mel - mean[:, None]) / scale[:, None]).astype(np.float32))
    with h5py.File(tmp_path / "stats.h5", "w") as f:
        f["mean"], f["scale"] = mean, scale
    np.save(tmp_path / "stats.npy", np.stack([mean, scale]))
    outputs = []
    for stats in ("stats.h5", "stats.npy"):
        code, _, err = run_cli(
            "vocode", tmp_path / "m.npy", "-o", tmp_path / f"out-{stats}", "--checkpoint",
            tmp_path / "g.pt", "--mel-convention", "parallel-wavegan",
            "--mel-stats", tmp_path / stats,
        )  # fmt: skip
        assert code == 0, err
        outputs.append(load_audio(tmp_path / f"out-{stats}" / "m.wav", config.mel.sample_rate)[0])
    assert outputs[0].size > 0 and np.array_equal(outputs[0], outputs[1])
