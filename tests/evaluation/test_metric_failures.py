"""One failing metric or one missing package never costs the whole report."""

from __future__ import annotations

import csv

import pytest
import soundfile as sf

from hifigan.evaluation import metrics as metrics_module

from conftest import LJSPEECH, need


def _pair_folders(tmp_path):
    ref, gen = tmp_path / "ref", tmp_path / "gen"
    ref.mkdir()
    gen.mkdir()
    for name in ("LJ001-0001", "LJ001-0002"):
        audio, rate = sf.read(need(LJSPEECH / "wavs" / f"{name}.flac"), dtype="float32")
        sf.write(ref / f"{name}.wav", audio, rate)
        sf.write(gen / f"{name}.wav", audio if name.endswith("1") else 0 * audio, rate)
    return ref, gen


def _rows(out):
    return {r["file"]: r for r in csv.DictReader((out / "metrics.csv").open())}


def test_a_metric_that_fails_on_one_file_leaves_one_cell_empty(tmp_path, run_cli):
    ref, gen = _pair_folders(tmp_path)
    out = tmp_path / "report"
    args = ["evaluate", "--ref", ref, "--gen", gen, "--quick", "--no-plots", "-o", out]
    with pytest.warns(UserWarning, match=r"LJ001-0002.*: pesq not scored \("):
        code, _, err = run_cli(*args)
    assert code == 0, err
    assert "Traceback" not in err
    rows = _rows(out)
    silent = next(r for f, r in rows.items() if "LJ001-0002" in f and r["system"] != "ground truth")
    same = next(r for f, r in rows.items() if "LJ001-0001" in f and r["system"] != "ground truth")
    assert silent["pesq"] == "" and silent["mel_l1"] != ""
    assert float(same["pesq"]) > 4.0
    assert (out / "report.md").is_file() and (out / "summary.json").is_file()


def test_a_missing_optional_package_leaves_its_metric_out(tmp_path, run_cli, monkeypatch):
    ref, gen = _pair_folders(tmp_path)
    real = metrics_module.installed
    monkeypatch.setattr(
        metrics_module, "installed", lambda package: package != "torchcrepe" and real(package)
    )
    out = tmp_path / "report"
    metrics = "mel_l1,periodicity,vuv_f1"
    args = ["evaluate", "--ref", ref, "--gen", gen, "--metrics", metrics, "--no-plots", "-o", out]
    with pytest.warns(UserWarning, match="left out periodicity, vuv_f1: optional packages"):
        code, _, err = run_cli(*args)
    assert code == 0, err
    header = next(csv.reader((out / "metrics.csv").open()))
    assert "mel_l1" in header and "periodicity" not in header
