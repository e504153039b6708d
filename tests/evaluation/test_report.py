"""The report of an evaluation without audio: statistics, the CSV and the Markdown tables."""

import sys

import numpy as np
import pytest

from hifigan.evaluation import EVAL_HINT, GRIFFIN_LIM, GROUND_TRUTH, METRICS, Report
from hifigan.evaluation.metrics import SCORING_RATE
from hifigan.evaluation.render import blind_metrics
from hifigan.evaluation.stats import mean_ci95, t_quantile_975


def test_confidence_interval_uses_student_t():
    pytest.importorskip("scipy")
    mean, half = mean_ci95([1.0, 2.0, 3.0])
    assert mean == 2.0 and half == pytest.approx(4.302653 / np.sqrt(3), rel=1e-4)
    assert mean_ci95([5.0]) == (5.0, None)


def test_t_quantile_without_scipy_is_close_for_ten_clips_or_more(monkeypatch):
    pytest.importorskip("scipy")
    exact = {dof: t_quantile_975(dof) for dof in (3, 10, 40)}
    for name in ("scipy", "scipy.stats"):  # neither importable nor found
        monkeypatch.setitem(sys.modules, name, None)
    assert t_quantile_975(3) == pytest.approx(exact[3], rel=0.04)
    assert t_quantile_975(10) == pytest.approx(exact[10], rel=2e-3)
    assert t_quantile_975(40) == pytest.approx(exact[40], rel=1e-4)
    assert t_quantile_975(10) != exact[10]  # the fallback really ran


@pytest.fixture
def report():
    """Two clips scored by the ground truth, a model and Griffin-Lim; one Griffin-Lim M-STFT
    score is missing (a failed file)."""
    scores = {
        GROUND_TRUTH: [(4.644, 0.0), (4.644, 0.0)],
        "model": [(3.0, 1.0), (3.5, 1.5)],
        GRIFFIN_LIM: [(3.4, 2.0), (3.6, None)],
    }
    rows = [
        {"dataset": "lj", "system": system, "file": f"clip{i}", "pesq": pesq, "stft": stft}
        for system, values in scores.items()
        for i, (pesq, stft) in enumerate(values)
    ]
    return Report(metrics=("pesq", "stft"), rows=rows, command="hifigan evaluate ...")


def test_summary_groups_rows_and_skips_missing_scores(report):
    pytest.importorskip("scipy")
    summary = report.summary()
    assert list(summary) == ["lj"] and list(summary["lj"]) == [GROUND_TRUTH, "model", GRIFFIN_LIM]
    model = summary["lj"]["model"]["pesq"]
    assert model["n"] == 2 and model["mean"] == pytest.approx(3.25)
    assert model["ci95"] == pytest.approx(12.7062 * 0.25, rel=1e-4)  # t * s / sqrt(n)
    assert summary["lj"][GRIFFIN_LIM]["stft"] == {"n": 1, "mean": 2.0, "ci95": None}


def test_csv_has_one_line_per_row(report):
    lines = report.csv_text().splitlines()
    assert lines[0] == "dataset,system,file,pesq,stft"
    assert lines[1] == "lj,ground truth,clip0,4.644,0"
    assert lines[-1] == "lj,griffin-lim,clip1,3.6,"
    assert len(lines) == 7


def test_markdown_marks_the_best_system_and_the_metrics_blind_to_griffin_lim(report):
    pytest.importorskip("scipy")
    text = report.markdown(report.summary())
    assert text.startswith("# Objective evaluation\n\n```bash\nhifigan evaluate ...\n```\n")
    table = [
        "## lj (2 clips)",
        "",
        "| system | PESQ-WB ↑ | M-STFT ↓ |",
        "|---|---|---|",
        "| ground truth | 4.644 ± 0.000 | 0.000 ± 0.000 |",
        "| model | 3.250 ± 3.177 | **1.250 ± 3.177** |",
        "| griffin-lim | **3.500 ± 1.271** | 2.000 |",
        "",
        "Griffin-Lim scores as well as or better than **model** on: PESQ-WB.",
    ]
    assert "\n".join(table) in text
    assert f"| M-STFT | 22.05 kHz | {METRICS['stft'].description} |" in text
    assert blind_metrics(report.summary()["lj"]) == {"model": ["pesq"]}
    without_gl = Report(metrics=report.metrics, rows=report.rows[:4]).summary()["lj"]
    assert blind_metrics(without_gl) == {}


def test_every_metric_describes_itself():
    for name, metric in METRICS.items():
        assert metric.name == name and metric.description
        assert metric.rate.endswith("kHz") or metric.rate == SCORING_RATE
    assert METRICS["dnsmos"].packages == ("speechmos", "onnxruntime")
    assert EVAL_HINT == "pip install 'hifigan[eval]'"
