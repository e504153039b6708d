"""``hifigan vocode`` with backends, streaming and mel frames on standard input."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from inference_helpers import log_mel

from conftest import GOLDEN, LJ_V2, LJSPEECH, assert_near_golden_audio, need

CLIP = LJSPEECH / "wavs" / "LJ001-0001.flac"


def test_vocode_fast_backend_reproduces_the_golden_samples(run_cli, tmp_path):
    code, _, err = run_cli(
        "vocode", need(CLIP), "-o", tmp_path, "--checkpoint", need(LJ_V2), "--backend", "fast"
    )
    assert code == 0, err
    audio, _ = sf.read(tmp_path / "LJ001-0001.wav", dtype="int16")
    golden = np.load(need(GOLDEN / "generator_lj_v2_LJ001-0001.npz"))["wav_int16"]
    assert_near_golden_audio(audio, golden)


def test_vocode_stream_writes_the_offline_samples_and_reports_latency(run_cli, tmp_path):
    np.save(tmp_path / "m.npy", log_mel(50).numpy())
    args = ["vocode", tmp_path / "m.npy", "--checkpoint", need(LJ_V2)]
    assert run_cli(*args, "-o", tmp_path / "offline")[0] == 0
    code, _, err = run_cli(*args, "-o", tmp_path / "stream", "--stream", "--chunk-frames", "7")
    assert code == 0, err
    assert "streamed 8 chunks; latency 13 frames = 151 ms; compute per chunk median" in err
    offline, _ = sf.read(tmp_path / "offline" / "m.wav", dtype="int16")
    streamed, _ = sf.read(tmp_path / "stream" / "m.wav", dtype="int16")
    assert offline.shape == streamed.shape == (50 * 256,)
    assert np.abs(offline.astype(int) - streamed).max() <= 1


def test_vocode_streams_raw_frames_from_stdin(tmp_path):
    mel = log_mel(40).numpy()
    frames = np.ascontiguousarray(mel.T, dtype="<f4").tobytes()
    base = [sys.executable, "-m", "hifigan", "vocode", "-", "--checkpoint", str(need(LJ_V2))]
    raw = subprocess.run([*base, "-o", "-"], input=frames, capture_output=True, check=True)
    pcm = np.frombuffer(raw.stdout, dtype="<i2")
    saved = subprocess.run([*base, "-o", str(tmp_path)], input=frames, capture_output=True)
    assert saved.returncode == 0, saved.stderr.decode()
    wav, rate = sf.read(tmp_path / "stdin.wav", dtype="int16")
    assert rate == 22050 and pcm.shape == wav.shape == (40 * 256,)
    assert np.array_equal(pcm, wav)
    assert b"latency 13 frames" in raw.stderr
    broken = subprocess.run([*base, "-o", "-"], input=frames[:-3], capture_output=True)
    assert broken.returncode == 1
    assert b"error: <stdin>: standard input ended inside a frame (317 bytes left" in broken.stderr


def test_vocode_stream_option_errors(run_cli, tmp_path):
    ckpt = need(LJ_V2)
    code, _, err = run_cli("vocode", need(CLIP), "-", "-o", tmp_path, "--checkpoint", ckpt)
    assert code == 1 and "standard input (-) cannot be combined with other inputs" in err
    code, _, err = run_cli("vocode", need(CLIP), "-o", "-", "--checkpoint", ckpt)
    assert code == 1 and "-o - (raw PCM on standard output) needs the input -" in err
    with pytest.raises(SystemExit, match="2"):  # a usage error: tests/test_options.py
        run_cli("vocode", need(CLIP), "-o", tmp_path, "--checkpoint", ckpt, "--chunk-frames=0")
    code, _, err = run_cli(
        "vocode", need(CLIP), "-o", tmp_path, "--checkpoint", ckpt, "--backend", "eager",
        "--precision", "bf16",
    )  # fmt: skip
    assert code == 1 and "backend 'eager' runs in fp32 only" in err


def failure_lines(err: str) -> list[str]:
    """The per-file lines of a failure summary, without their indentation."""
    return [line[2:] for line in err.splitlines() if line.startswith("  ")]


def test_non_finite_output_and_impossible_mels_are_errors_not_silent_files(run_cli, tmp_path):
    good = log_mel(8).numpy()
    np.save(tmp_path / "good.npy", good)
    np.save(tmp_path / "huge.npy", np.full((80, 20), 1e38, np.float32))  # overflows: NaN
    np.save(tmp_path / "scaled.npy", np.clip(good, -11, 2) * 1000)  # log-mel x 1000
    args = ["vocode", *(tmp_path / n for n in ("good.npy", "huge.npy", "scaled.npy"))]
    args += ["--checkpoint", need(LJ_V2)]
    nan_out = f"{tmp_path / 'huge.npy'}: the generator produced non-finite audio (NaN or inf); "
    nan_out += "the mel values (max 1e+38) are far outside a log-mel's range"
    scaled = f"{tmp_path / 'scaled.npy'}: the mel values (min -1.1e+04) are far outside a "
    scaled += "log-mel's range (no log scale reaches beyond ±1000); not vocoded"
    code, _, err = run_cli(*args, "-o", tmp_path / "offline")
    assert code == 1 and failure_lines(err) == [nan_out, scaled], err
    assert sorted(p.name for p in (tmp_path / "offline").iterdir()) == ["good.wav"]
    code, _, err = run_cli(*args, "-o", tmp_path / "streamed", "--stream")
    stream_nan = nan_out.replace(": the generator", ": chunk 0 of the stream: the generator")
    stream_scaled = scaled.replace(": the mel values", ": chunk 0 of the stream: the mel values")
    assert code == 1 and failure_lines(err) == [stream_nan, stream_scaled], err
    assert sorted(p.name for p in (tmp_path / "streamed").iterdir()) == ["good.wav"]


def test_raw_standard_output_stops_before_non_finite_audio(tmp_path):
    good = log_mel(40).numpy()
    huge = np.full((80, 8), 1e38, np.float32)
    frames = np.ascontiguousarray(np.concatenate([good, huge], axis=1).T, "<f4").tobytes()
    base = [sys.executable, "-m", "hifigan", "vocode", "-", "--checkpoint", str(need(LJ_V2))]
    done = subprocess.run([*base, "-o", "-"], input=frames, capture_output=True)
    assert done.returncode == 1
    last = done.stderr.decode().strip().splitlines()[-1]
    assert re.fullmatch(
        r"error: <stdin>: chunk \d+ of the stream: the generator produced non-finite audio "
        r"\(NaN or inf\); the mel values \(max 1e\+38\) are far outside a log-mel's range",
        last,
    ), last
    # what was written before is the (finite) start of the good part, nothing after it
    pcm = np.frombuffer(done.stdout, dtype="<i2")
    offline = subprocess.run(
        [*base, "-o", "-"], input=np.ascontiguousarray(good.T, "<f4").tobytes(), capture_output=True
    )
    assert pcm.size < 40 * 256 and pcm.size % 256 == 0
    assert np.array_equal(pcm, np.frombuffer(offline.stdout, dtype="<i2")[: pcm.size])


def broken_checkpoint(tmp_path, change) -> Path:
    """A copy of the authors' LJ_V2 (config.json beside it) with ``change`` applied to its
    generator state dict."""
    ckpt = torch.load(need(LJ_V2), map_location="cpu", weights_only=True)
    change(ckpt["generator"])
    folder = tmp_path / "broken"
    folder.mkdir()
    shutil.copy(LJ_V2.parent / "config.json", folder / "config.json")
    torch.save(ckpt, folder / "generator")
    return folder / "generator"


def poison(state):
    state["conv_pre.bias"] = state["conv_pre.bias"].clone()
    state["conv_pre.bias"][0] = float("nan")


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            poison,
            "checkpoint contains non-finite generator weights (1 tensors, e.g. conv_pre.bias)",
        ),
        (
            lambda state: state.update({"conv_pre.bias": [0.5, 1.0]}),
            "generator weights hold 1 entries that are not tensors (e.g. conv_pre.bias)",
        ),
    ],
)
def test_broken_weights_are_refused_before_anything_is_written(run_cli, tmp_path, change, problem):
    ckpt = broken_checkpoint(tmp_path, change)
    np.save(tmp_path / "m.npy", log_mel(8).numpy())
    code, out, err = run_cli(
        "vocode", tmp_path / "m.npy", "-o", tmp_path / "out", "--checkpoint", ckpt
    )
    assert (code, out, err) == (1, "", f"error: {ckpt}: {problem}\n")
    assert not (tmp_path / "out").exists()


def test_file_types_are_told_apart_in_any_case_and_missing_files_are_not_found(run_cli, tmp_path):
    mel = log_mel(8)
    folder = tmp_path / "in"
    folder.mkdir()
    with open(folder / "upper.NPY", "wb") as f:  # a path would get ".npy" appended
        np.save(f, mel.numpy())
    torch.save(mel, folder / "mixed.Pt")
    sf.write(folder / "loud.WAV", np.zeros(4096, np.float32), 22050, format="WAV")
    inputs = [folder / n for n in ("upper.NPY", "mixed.Pt", "loud.WAV", "missing", "gone.npy")]
    code, _, err = run_cli("vocode", *inputs, "-o", tmp_path / "out", "--checkpoint", need(LJ_V2))
    assert code == 1
    assert failure_lines(err) == [
        f"{folder / 'missing'}: not found",
        f"{folder / 'gone.npy'}: not found",
    ]
    assert "unsupported file type" not in err
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["loud.wav", "mixed.wav", "upper.wav"]
    assert sf.info(out / "upper.wav").frames == sf.info(out / "mixed.wav").frames == 8 * 256
    # and a folder holding upper-case suffixes contributes them
    code, _, err = run_cli("vocode", folder, "-o", tmp_path / "again", "--checkpoint", LJ_V2)
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "again").iterdir()) == sorted(
        p.name for p in out.iterdir()
    )


def torchrun_vocode(*args) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc_per_node 2 -m hifigan vocode ARGS``."""
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone"]  # a free port
    return subprocess.run(
        [*torchrun, "--nproc_per_node", "2", "-m", "hifigan", "vocode", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_torchrun_splits_the_files_and_each_is_written_once(run_cli, tmp_path):
    mels = tmp_path / "mels"
    mels.mkdir()
    for i in range(6):
        np.save(mels / f"m{i}.npy", log_mel(3 + i, seed=i).numpy())
    ckpt = need(LJ_V2)
    code, _, err = run_cli("vocode", mels, "-o", tmp_path / "one", "--checkpoint", ckpt)
    assert code == 0, err
    done = torchrun_vocode(mels, "-o", tmp_path / "two", "--checkpoint", ckpt)
    assert done.returncode == 0, done.stderr[-3000:]
    # names sorted, split by index modulo 2: m0 m2 m4 to process 0, m1 m3 m5 to process 1
    assert "process 0 of 2: 3 of 6 inputs" in done.stderr
    assert "process 1 of 2: 3 of 6 inputs" in done.stderr
    assert done.stderr.count(f"wrote 3 files to {tmp_path / 'two'}") == 2  # one per process
    names = sorted(p.name for p in (tmp_path / "two").iterdir())
    assert names == [f"m{i}.wav" for i in range(6)]  # no temporary files either
    for name in names:
        assert (tmp_path / "two" / name).read_bytes() == (tmp_path / "one" / name).read_bytes()


def test_under_torchrun_a_failing_file_does_not_cut_the_other_process_short(tmp_path):
    """torchrun stops every process once one exits with an error; the processes wait for each
    other first, so the others still write all their files, and the status says it failed."""
    mels = tmp_path / "mels"
    mels.mkdir()
    for i in range(6):  # process 1 (m1, m3, m5) gets the long mels: it finishes last
        np.save(mels / f"m{i}.npy", log_mel(300 if i % 2 else 3, seed=i).numpy())
    np.save(mels / "z.npy", np.full((80, 3), np.nan, np.float32))  # index 6: process 0
    done = torchrun_vocode(mels, "-o", tmp_path / "out", "--checkpoint", need(LJ_V2))
    assert done.returncode != 0
    assert f"  {mels / 'z.npy'}: mel contains 240 NaN or infinite values" in done.stderr
    assert "error: 1 of 4 files failed:" in done.stderr
    assert f"wrote 3 files to {tmp_path / 'out'}" in done.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"m{i}.wav" for i in range(6)]
    assert sf.info(tmp_path / "out" / "m5.wav").frames == 300 * 256


def test_stdin_frames_are_refused_with_the_streams_words(tmp_path):
    """Standard input and the service's stream parse raw frames with one function: NaN is
    counted alike (tests/serve/test_serve_stream.py has the stream's side)."""
    from hifigan.checkpoint import save_checkpoint
    from hifigan.config import HiFiGANConfig
    from hifigan.generator import Generator

    config = HiFiGANConfig.preset("debug")
    save_checkpoint(tmp_path / "g.pt", config, Generator.from_config(config))
    mel = log_mel(6).numpy()
    mel[:, 3] = np.nan
    frames = np.ascontiguousarray(mel.T, dtype="<f4").tobytes()
    base = [sys.executable, "-m", "hifigan", "vocode", "-", "--checkpoint", str(tmp_path / "g.pt")]
    done = subprocess.run([*base, "-o", "-"], input=frames, capture_output=True)
    assert done.returncode == 1
    last = done.stderr.decode().strip().splitlines()[-1]
    assert last == "error: <stdin>: mel contains 80 NaN or infinite values", last
