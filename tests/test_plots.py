import numpy as np
import pytest

pytest.importorskip("matplotlib")

from hifigan.plots import mel_comparison_figure, save_figure


def test_mel_comparison_png(tmp_path):
    rng = np.random.default_rng(0)
    real = rng.normal(size=(80, 50)).astype(np.float32)
    fig = mel_comparison_figure(real, real[:, :40] + 0.1, title="clip", hop_seconds=256 / 22050)
    assert len(fig.axes) == 6  # three panels, each with a colour bar
    save_figure(fig, tmp_path / "mel.png")
    data = (tmp_path / "mel.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert not list(tmp_path.glob(".*tmp"))
