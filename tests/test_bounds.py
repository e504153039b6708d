"""Bounded resources: every mel front end and every input file is checked against a budget
before anything large is allocated, with one line naming the file, the field and the range."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import soundfile as sf
import torch

from hifigan import Generator, HiFiGANConfig, MelSpectrogram, Vocoder
from hifigan.checkpoint import save_checkpoint
from hifigan.conventions import load_convention
from hifigan.errors import ConfigError
from hifigan.frontend import MEL_MEMORY_BUDGET, mel_memory_estimate
from hifigan.mel import mel_filterbank

# Runs CLI commands with the address space capped at what the interpreter already maps plus
# HEADROOM: an allocation of the sizes these inputs ask for (gigabytes) fails there, so each
# command must refuse its input before allocating. The probe shows the cap is in force.
_CAPPED = textwrap.dedent(
    """
    import contextlib, io, json, resource, sys
    import numpy as np
    import torch
    from hifigan.cli import main

    HEADROOM = 1 << 30
    with open("/proc/self/status") as f:
        size = next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmSize:"))
    resource.setrlimit(resource.RLIMIT_AS, (size + HEADROOM, size + HEADROOM))
    try:
        np.ones(2 * HEADROOM, dtype=np.uint8)
        probe = "allocated"
    except MemoryError:
        probe = "refused"
    results = []
    for args in json.loads(sys.argv[1]):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            try:
                code = main(args)
            except BaseException as e:
                code = f"raised {type(e).__name__}"
        results.append([code, err.getvalue()])
    print(json.dumps({"probe": probe, "results": results}))
    """
)


def _write_json(path, data):
    path.write_text(json.dumps(data))
    return path


def _sparse_wav(path, hours: float, rate: int = 8000):
    """A valid 8-bit mono WAV of ``hours`` whose samples are a hole in the file system."""
    n = int(hours * 3600 * rate)
    with open(path, "wb") as f:
        f.write(b"RIFF" + struct.pack("<I", 36 + n) + b"WAVEfmt ")
        f.write(struct.pack("<IHHIIHH", 16, 1, 1, rate, rate, 1, 8) + b"data")
        f.write(struct.pack("<I", n))
        f.truncate(44 + n)
    return path


def _huge_npy(path, shape):
    """A .npy whose header promises ``shape`` float32 values; the data are not there."""
    with open(path, "wb") as f:
        header = {"descr": "<f4", "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_1_0(f, header)
        f.write(b"\0" * 64)
    return path


def test_every_entry_point_refuses_huge_front_ends_and_inputs_before_allocating(tmp_path):
    wav = tmp_path / "a.wav"
    sf.write(wav, np.zeros(22050, dtype=np.float32), 22050)
    hifigan = load_convention("hifigan").to_dict()
    big_fft = _write_json(tmp_path / "big_fft.json", {**hifigan, "n_fft": 16_777_216})
    many_mels = _write_json(tmp_path / "many_mels.json", {**hifigan, "n_mels": 1_000_000})
    costly = {**hifigan, "n_fft": 65536, "win_length": 65536, "n_mels": 2048, "fmax": None}
    costly_json = _write_json(tmp_path / "costly.json", costly)
    config = HiFiGANConfig.preset("debug").to_dict()
    config["mel"]["n_mels"] = 1_000_000
    config_json = _write_json(tmp_path / "cfg.json", config)
    declared = tmp_path / "declared"
    declared.mkdir()
    np.save(declared / "x.npy", np.full((80, 20), -5.0, dtype=np.float32))
    _write_json(declared / "mel_convention.json", {**hifigan, "n_fft": 16_777_216})
    debug = HiFiGANConfig.preset("debug")
    save_checkpoint(tmp_path / "g.pt", debug, Generator.from_config(debug))
    long_wav = _sparse_wav(tmp_path / "long.wav", hours=100)
    huge_npy = _huge_npy(tmp_path / "huge.npy", (80, 10**9))
    out = str(tmp_path / "out")
    cases = [
        (["mel", wav, "-o", out, "--convention", big_fft], f"{big_fft}: n_fft (16777216)"),
        (["mel", wav, "-o", out, "--convention", many_mels], "n_mels (1000000) must lie"),
        (["mel", wav, "-o", out, "--convention", costly_json], "GiB, over the 1 GiB budget"),
        (["mel", wav, "-o", out, "--config", config_json], f"{config_json}: mel.n_mels (1000000)"),
        (["mel-check", declared / "x.npy"], f"{declared / 'mel_convention.json'}: n_fft (16777"),
        (
            ["vocode", declared / "x.npy", "-o", out, "--checkpoint", tmp_path / "g.pt",
             "--mel-convention", big_fft],
            f"{big_fft}: n_fft (16777216) must lie in [2, 65536]",
        ),
        (["mel", long_wav, "-o", out], f"{long_wav}: 100 hours of 8000 Hz audio in 1 channel"),
        (["mel-check", huge_npy], f"{huge_npy}: an array of shape (80, 1000000000) would take"),
    ]  # fmt: skip
    args = [[str(a) for a in case] for case, _ in cases]
    run = subprocess.run(
        [sys.executable, "-c", _CAPPED, json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report["probe"] == "refused"  # the cap is in force
    for (case, message), (code, err) in zip(cases, report["results"]):
        assert code == 1, (case, code, err)
        assert sum(message in line for line in err.splitlines()) == 1, (case, err)
        assert "Traceback" not in err and "MemoryError" not in err, err


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_fft": 2**24}, "n_fft (16777216) must lie in [2, 65536]"),
        ({"n_mels": 1_000_000}, "n_mels (1000000) must lie in [1, 2048]"),
        ({"n_mels": 600}, "n_mels (600) exceeds the 513 frequency bins of n_fft (1024)"),
        ({"hop_length": 0}, "hop_length must be positive, got 0"),
        ({"hop_length": 2048}, "hop_length (2048) must not exceed n_fft (1024)"),
        ({"sample_rate": 10**7}, "sample_rate (10000000) must lie in [1000, 768000]"),
        ({"n_fft": True}, "n_fft must be an integer in [2, 65536], got True"),
        ({"fmin": float("nan")}, "fmin (nan) must lie in [0, sample_rate / 2)"),
        ({"fmax": float("inf")}, "fmax (inf) must lie in (fmin, sample_rate / 2]"),
        ({"fmax": 20000.0}, "fmax (20000.0) must lie in (fmin, sample_rate / 2] = (0.0, 11025.0]"),
        (
            {"n_fft": 65536, "win_length": 65536, "n_mels": 2048, "fmax": None},
            "GiB, over the 1 GiB budget (lower n_fft or n_mels, or raise hop_length)",
        ),
    ],
)
def test_the_mel_module_checks_its_budget_first(kwargs, message):
    with pytest.raises(ConfigError) as e:
        MelSpectrogram(**kwargs)
    assert str(e.value).startswith("mel front end: ") and message in str(e.value)


def test_the_filterbank_and_the_vocoder_api_go_through_the_same_budget():
    with pytest.raises(ConfigError, match=r"mel filterbank: n_mels \(1000000\) must lie"):
        mel_filterbank(22050, 1024, 1_000_000, 0.0, None)
    config = HiFiGANConfig.preset("debug")
    generator = Generator.from_config(config)
    config.mel.n_fft = 2**24  # a config built in Python, never validated
    with pytest.raises(ConfigError, match=r"n_fft \(16777216\) must lie in \[2, 65536\]"):
        Vocoder(generator, config)


def test_the_memory_estimate_separates_real_front_ends_from_absurd_ones():
    for name in ("hifigan", "bigvgan-44k", "parallel-wavegan-24k"):
        c = load_convention(name)
        assert mel_memory_estimate(c.sample_rate, c.n_fft, c.hop_length, c.n_mels, 60) < (
            MEL_MEMORY_BUDGET / 4
        )
    assert mel_memory_estimate(22050, 65536, 256, 2048, 60) > MEL_MEMORY_BUDGET
    # a hop of one sample: the mel of a minute holds 1.3 million frames
    assert mel_memory_estimate(22050, 1024, 1, 2048, 60) > MEL_MEMORY_BUDGET


def test_a_long_input_is_transformed_in_blocks_with_the_same_values(monkeypatch):
    mel = MelSpectrogram()
    audio = torch.randn(2, 22050 * 2, generator=torch.Generator().manual_seed(0)) * 0.1
    whole = mel(audio)
    # blocks of about 20 frames: the same frames, computed piecewise
    monkeypatch.setattr("hifigan.mel.MEL_BLOCK_BYTES", 20 * 2 * 17000)
    blocked = mel(audio)
    assert blocked.shape == whole.shape == (2, 80, 172)
    assert torch.allclose(blocked, whole, atol=1e-5)


def test_the_service_measures_a_flac_whose_header_has_no_length(tmp_path):
    from hifigan.serve.payload import RequestError, decode_audio

    audio = (np.sin(np.arange(44100) / 9.0) * 0.4).astype(np.float32)
    sf.write(tmp_path / "a.flac", audio, 22050, subtype="PCM_16")
    data = bytearray((tmp_path / "a.flac").read_bytes())
    data[21] &= 0xF0  # STREAMINFO's total samples: 0, unknown (see test_io)
    data[22:26] = bytes(4)
    decoded = decode_audio(bytes(data), 22050, max_seconds=60)
    assert np.array_equal(decoded, sf.read(tmp_path / "a.flac", dtype="float32")[0])
    with pytest.raises(RequestError) as e:
        decode_audio(bytes(data), 22050, max_seconds=1.5)
    assert e.value.status == 413
    assert str(e.value) == "audio is 2.0 s long, over this server's limit of 1.5 s"
