"""Readers and writers: one-line errors naming the file, nothing half-written."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from hifigan.checkpoint import read_checkpoint, save_checkpoint
from hifigan.config import HiFiGANConfig
from hifigan.conventions import load_stats
from hifigan.errors import HiFiGANError, InputError
from hifigan.generator import Generator
from hifigan.io import atomic_path, load_audio, load_mel, save_torch, save_wav


def test_full_disk_is_one_line_for_every_writer(small_disk):
    big = np.zeros(2_000_000, dtype=np.float32)
    writers = {
        "a.wav": lambda p: save_wav(p, big, 22050),
        "b.pt": lambda p: save_torch({"x": torch.zeros(1_000_000)}, p),
        "c.npy": lambda p: _save_npy(p, big),
    }
    for name, write in writers.items():
        path = small_disk / name
        with pytest.raises(HiFiGANError) as e:
            write(path)
        assert str(e.value) == f"{path}: cannot write (No space left on device)", name
        assert list(small_disk.iterdir()) == [], f"{name} left a file behind"


def _save_npy(path, array):
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, array)


def test_a_failed_write_keeps_the_old_file(small_disk):
    path = small_disk / "keep.wav"
    save_wav(path, np.zeros(1000, dtype=np.float32), 22050)
    before = path.read_bytes()
    with pytest.raises(HiFiGANError, match="No space left on device"):
        save_wav(path, np.zeros(2_000_000, dtype=np.float32), 22050)
    assert path.read_bytes() == before


def test_output_folder_that_is_a_file(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(HiFiGANError) as e:
        save_wav(tmp_path / "afile" / "good.wav", np.zeros(10, dtype=np.float32), 22050)
    assert "cannot write" in str(e.value)


def test_mel_suffixes_are_case_insensitive(tmp_path):
    mel = np.random.default_rng(0).standard_normal((80, 12)).astype(np.float32)
    with open(tmp_path / "MEL.NPY", "wb") as f:  # np.save would append ".npy"
        np.save(f, mel)
    assert np.array_equal(load_mel(tmp_path / "MEL.NPY"), mel)
    torch.save(torch.from_numpy(mel), tmp_path / "MEL.PT")
    assert np.array_equal(load_mel(tmp_path / "MEL.PT"), mel)


def test_integer_mels_are_refused_in_both_formats(tmp_path):
    ints = np.ones((80, 5), dtype=np.int64)
    np.save(tmp_path / "i.npy", ints)
    torch.save(torch.from_numpy(ints), tmp_path / "i.pt")
    for name in ("i.npy", "i.pt"):
        with pytest.raises(InputError, match=f"{name}: mel must hold floating-point values"):
            load_mel(tmp_path / name)


def test_pickled_mel_is_refused(tmp_path):
    torch.save({"mel": HiFiGANConfig()}, tmp_path / "p.pt")
    with pytest.raises(InputError) as e:
        load_mel(tmp_path / "p.pt")
    assert str(e.value).endswith("refused: the mel file holds Python objects, not just tensors")


def test_fake_mp3_is_named_as_such(tmp_path, capfd):
    fake = tmp_path / "song.mp3"
    fake.write_bytes(b"this is text, not audio\n" * 50)
    with pytest.raises(InputError) as e:
        load_audio(fake)
    assert str(e.value) == f"{fake}: not a valid MP3 file: it is a text file"
    assert "Note" not in capfd.readouterr().err


def test_garbage_wav_is_named_as_such(tmp_path):
    fake = tmp_path / "x.wav"
    fake.write_bytes(b"RIFF0000WAVEgarbage" * 10)
    with pytest.raises(InputError, match=r"x\.wav: not a valid WAV file \(error in WAV file"):
        load_audio(fake)


def test_unreadable_file_says_permission_denied(tmp_path, monkeypatch):
    path = tmp_path / "locked.wav"
    sf.write(path, np.zeros(100, dtype=np.float32), 22050)
    real_open = open

    def deny(file, *args, **kwargs):
        if str(file) == str(path):
            raise PermissionError(13, "Permission denied")
        return real_open(file, *args, **kwargs)

    # root reads any file, so the denial is injected where the reader opens the file
    monkeypatch.setattr("builtins.open", deny)
    monkeypatch.setattr(
        "soundfile.read", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("System error."))
    )
    with pytest.raises(InputError) as e:
        load_audio(path)
    assert str(e.value) == f"{path}: cannot read audio (permission denied)"


def test_float_audio_beyond_full_scale_warns(tmp_path):
    path = tmp_path / "loud.wav"
    sf.write(path, np.full(1000, 1.5, dtype=np.float32), 22050, subtype="FLOAT")
    with pytest.warns(UserWarning, match=r"loud\.wav: samples reach 1\.5, beyond full scale"):
        audio, _ = load_audio(path)
    assert audio.max() == pytest.approx(1.5)


def test_huge_float_samples_do_not_become_inf_when_resampled(tmp_path):
    # found by scripts/fuzz_readers.py: float32 samples near their maximum overflowed in soxr
    path = tmp_path / "huge.wav"
    samples = np.zeros(1921, dtype=np.float32)
    samples[100], samples[101] = 3.15e38, -3.15e38
    sf.write(path, samples, 32802, subtype="FLOAT")
    with pytest.warns(UserWarning), pytest.raises(InputError) as e:
        load_audio(path, 22050)
    assert str(e.value) == f"{path}: samples too large to resample (peak 3.15e+38)"


def _flac_without_length(path, audio, rate):
    """A FLAC file as a streaming encoder leaves it: STREAMINFO's 36-bit total-samples field
    (the low 4 bits of byte 21 of the file and bytes 22-25: "fLaC", a 4-byte block header,
    then 13 bytes of block sizes, rate, channels and bits before it) is 0, "unknown"."""
    sf.write(path, audio, rate, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    assert data[:4] == b"fLaC" and data[4] & 0x7F == 0  # STREAMINFO comes first
    data[21] &= 0xF0
    data[22:26] = bytes(4)
    path.write_bytes(bytes(data))


def test_flac_without_a_recorded_length_reads_like_the_original(tmp_path):
    audio = (np.sin(np.arange(30001) / 7.0) * 0.5).astype(np.float32)
    sf.write(tmp_path / "whole.flac", audio, 22050, subtype="PCM_16")
    _flac_without_length(tmp_path / "stream.flac", audio, 22050)
    assert sf.info(str(tmp_path / "stream.flac")).frames > 1 << 62  # what libsndfile makes of it
    original, rate = load_audio(tmp_path / "whole.flac")
    streamed, rate2 = load_audio(tmp_path / "stream.flac")
    assert rate == rate2 == 22050 and streamed.shape == (30001,)
    assert np.array_equal(streamed, original)


def test_wav_whose_data_size_is_zero_reads_to_the_end(tmp_path):
    audio = (np.sin(np.arange(5000) / 5.0) * 0.5).astype(np.float32)
    sf.write(tmp_path / "a.wav", audio, 16000, subtype="PCM_16")
    data = bytearray((tmp_path / "a.wav").read_bytes())
    at = data.index(b"data")
    data[at + 4 : at + 8] = bytes(4)  # a streaming writer that never came back to fill it in
    (tmp_path / "b.wav").write_bytes(bytes(data))
    assert np.array_equal(load_audio(tmp_path / "b.wav")[0], load_audio(tmp_path / "a.wav")[0])


def test_a_damaged_flac_of_unknown_length_is_still_not_valid(tmp_path):
    path = tmp_path / "cut.flac"
    _flac_without_length(path, np.zeros(40000, dtype=np.float32) + 0.1, 22050)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] + b"\xff" * 64 + data[len(data) // 2 + 64 :])
    with pytest.raises(InputError, match=r"cut\.flac: not a valid FLAC file"):
        load_audio(path)


def test_audio_of_unknown_length_is_bounded_while_it_is_read(tmp_path, monkeypatch):
    path = tmp_path / "long.flac"
    _flac_without_length(path, np.zeros(200_000, dtype=np.float32), 8000)
    monkeypatch.setattr("hifigan.io.INPUT_BUDGET_BYTES", 100_000 * 4)
    with pytest.raises(InputError) as e:
        load_audio(path)
    assert str(e.value).startswith(f"{path}: more than ")
    assert "of audio would take" in str(e.value) and "over the input limit of 391 KiB" in str(
        e.value
    )


def test_a_npy_is_checked_from_its_header(tmp_path):
    path = tmp_path / "cut.npy"
    np.save(path, np.zeros((80, 1000), dtype=np.float32))
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(InputError) as e:
        load_mel(path)
    assert str(e.value) == (
        f"{path}: mel file is truncated: its header promises an array of shape (80, 1000) "
        "(312 KiB), the file holds 4.76 KiB"
    )


def _checkpoint(path):
    config = HiFiGANConfig.preset("debug")
    save_checkpoint(path, config, Generator.from_config(config))


@pytest.mark.parametrize(
    ("name", "make", "read", "message"),
    [
        (
            "t.wav",
            lambda p: p.write_text("hello\n"),
            load_audio,
            "not a valid WAV file: it is a text file",
        ),
        ("t.npy", lambda p: p.write_text("1 2 3\n"), load_mel, "is a text file, not a mel file"),
        (
            "c.json",
            lambda p: p.write_text("{}"),
            load_audio,
            "not a valid audio file: it is a JSON text file",
        ),
        (
            "m.npy",
            lambda p: np.save(p, np.zeros((80, 4), dtype=np.float32)),
            load_audio,
            "not a valid audio file: it is a NumPy array (.npy); a mel is vocoded with `hifigan",
        ),
        (
            "a.wav",
            lambda p: sf.write(p, np.zeros(100, dtype=np.float32), 22050),
            load_mel,
            "is a WAV audio file, not a mel file: make its mel with `hifigan mel ",
        ),
        (
            "a.npy",  # audio behind a mel's name
            lambda p: sf.write(p, np.zeros(100, dtype=np.float32), 22050, format="FLAC"),
            load_mel,
            "is a FLAC audio file, not a mel file: make its mel with `hifigan mel ",
        ),
        (
            "g.pt",
            _checkpoint,
            load_mel,
            "is a model checkpoint, not a mel file: pass it as --model",
        ),
        (
            "g.wav",
            _checkpoint,
            load_audio,
            "not a valid WAV file: it is a PyTorch file (a checkpoint or a tensor)",
        ),
        (
            "a.pt",
            lambda p: sf.write(p, np.zeros(100, dtype=np.float32), 22050, format="WAV"),
            read_checkpoint,
            "is a WAV audio file, not a checkpoint (audio is an input, not a model)",
        ),
        (
            "m.pt",
            lambda p: torch.save(torch.zeros(80, 4), p),
            read_checkpoint,
            "is a tensor of shape (80, 4) (a mel?), not a checkpoint",
        ),
        ("dir.npy", lambda p: p.mkdir(), load_mel, "is a folder, not a mel file"),
        ("dir.wav", lambda p: p.mkdir(), load_audio, "is a folder, not an audio file"),
        ("dir.pt", lambda p: p.mkdir(), read_checkpoint, "is a folder, not a checkpoint"),
        ("dir.npy", lambda p: p.mkdir(), load_stats, "is a folder, not a stats file"),
        (
            "s.npy",
            lambda p: sf.write(p, np.zeros(100, dtype=np.float32), 22050, format="WAV"),
            load_stats,
            "is a WAV audio file, not a stats file",
        ),
    ],
)
def test_a_file_of_the_wrong_kind_is_named_for_what_it_is(tmp_path, name, make, read, message):
    path = tmp_path / name
    make(path)
    with pytest.raises(HiFiGANError) as e:
        read(path)
    assert str(e.value).startswith(f"{path}: {message}"), str(e.value)
    assert "\n" not in str(e.value)


def test_a_stats_npy_with_a_huge_header_is_refused_before_loading(tmp_path):
    path = tmp_path / "stats.npy"
    with open(path, "wb") as f:
        header = {"descr": "<f8", "fortran_order": False, "shape": (2, 10**10)}
        np.lib.format.write_array_header_1_0(f, header)
    with pytest.raises(InputError) as e:
        load_stats(path)
    assert str(e.value) == (
        f"{path}: an array of shape (2, 10000000000) would take 149 GiB in memory, over the "
        "input limit of 2 GiB: split it into shorter files"
    )
