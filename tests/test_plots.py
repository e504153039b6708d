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


def test_pyplot_without_matplotlib_is_one_line_naming_the_extra(monkeypatch):
    import sys

    from hifigan.errors import HiFiGANError
    from hifigan.plots import pyplot

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
    with pytest.raises(HiFiGANError, match=r"^plotting needs .*pip install 'hifigan\[eval\]'"):
        pyplot()


def test_evaluation_mel_figures_are_named_where_the_report_claims_them(tmp_path):
    from hifigan.evaluation.figures import mel_figure_name, save_mel_figures
    from hifigan.evaluation.render import Report, figure_path

    rng = np.random.default_rng(1)
    ref = (0.1 * rng.normal(size=4096)).astype(np.float32)
    key = ("LJ Speech", "LJ001/0001", "lj-v1 (fast)")
    assert mel_figure_name(*key) == "LJ_Speech_LJ001_0001_lj-v1_fast.png"
    report = Report(metrics=("mel_l1",), plot_audio={key: (ref, ref * 0.5)})
    written = save_mel_figures(report.plot_audio, tmp_path / "mels", dpi=20)
    assert written == [figure_path(tmp_path, *key)]
    assert written[0] in report.output_files(tmp_path) and written[0].is_file()
