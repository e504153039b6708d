"""``hifigan vocode`` with backends, streaming and mel frames on standard input."""

import subprocess
import sys

import numpy as np
import soundfile as sf

from inference_helpers import log_mel

from conftest import GOLDEN, LJ_V2, LJSPEECH, need

CLIP = LJSPEECH / "wavs" / "LJ001-0001.flac"


def test_vocode_fast_backend_reproduces_the_golden_samples(run_cli, tmp_path):
    code, _, err = run_cli(
        "vocode", need(CLIP), "-o", tmp_path, "--checkpoint", need(LJ_V2), "--backend", "fast"
    )
    assert code == 0, err
    audio, _ = sf.read(tmp_path / "LJ001-0001.wav", dtype="int16")
    golden = np.load(need(GOLDEN / "generator_lj_v2_LJ001-0001.npz"))["wav_int16"]
    assert audio.shape == golden.shape
    assert np.abs(audio.astype(int) - golden).max() <= 1


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
    code, _, err = run_cli(
        "vocode", need(CLIP), "-o", tmp_path, "--checkpoint", ckpt, "--chunk-frames", "0"
    )
    assert code == 1 and "--chunk-frames must be at least 1, got 0" in err
    code, _, err = run_cli(
        "vocode", need(CLIP), "-o", tmp_path, "--checkpoint", ckpt, "--precision", "bf16"
    )
    assert code == 1 and "backend 'eager' runs in fp32 only" in err
