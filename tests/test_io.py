"""Readers and writers: one-line errors naming the file, nothing half-written."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

from hifigan.config import HiFiGANConfig
from hifigan.errors import HiFiGANError, InputError
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
    assert str(e.value) == f"{fake}: is a text file, not an MP3 audio file"
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
