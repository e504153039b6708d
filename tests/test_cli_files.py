"""Batch commands never lose a user's files and report each problem once, in one line."""

from __future__ import annotations

import numpy as np
import soundfile as sf

from conftest import LJ_V2, need


def _speech(path, seconds=0.5, rate=22050):
    t = np.arange(int(seconds * rate)) / rate
    sf.write(path, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), rate)
    return path


def test_vocode_refuses_to_write_over_its_inputs(tmp_path, run_cli):
    folder = tmp_path / "ow"
    folder.mkdir()
    clip = _speech(folder / "x.wav")
    before = clip.read_bytes()
    for extra in ([], ["--overwrite"]):
        code, _, err = run_cli("vocode", clip, "-o", folder, "--checkpoint", need(LJ_V2), *extra)
        assert code == 1
        assert err.strip() == (
            f"error: {clip}: exists and is one of the inputs; choose another output "
            "(--overwrite never replaces an input)"
        )
        assert clip.read_bytes() == before


def test_output_that_is_a_file_is_said_once(tmp_path, run_cli):
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    clips = [_speech(tmp_path / f"{n}.wav") for n in ("a", "b")]
    code, _, err = run_cli("mel", *clips, "-o", afile, "--overwrite")
    assert code == 1
    assert (
        err.strip() == f"error: {afile}: exists and is a file, not a folder; choose another output "
        "(--overwrite never replaces a file with a folder)"
    )
    assert afile.read_text() == "keep me"


def test_missing_input_without_suffix_is_not_found(tmp_path, run_cli):
    code, _, err = run_cli("mel", tmp_path / "mistyped_folder", "-o", tmp_path / "out")
    assert code == 1
    assert f"{tmp_path / 'mistyped_folder'}: not found" in err


def test_two_inputs_for_one_output_are_refused_before_any_work(tmp_path, run_cli):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = _speech(tmp_path / "a" / "x.wav")
    also = _speech(tmp_path / "b" / "y.wav")
    twin = _speech(tmp_path / "b" / "x.flac")
    out = tmp_path / "out"
    code, _, err = run_cli("mel", first, also, twin, "-o", out)
    assert code == 1
    assert err.strip() == (
        f"error: {out / 'x.npy'}: two inputs would both be written here ({first} and {twin}); "
        "rename one or write them to separate folders"
    )
    assert not out.exists()  # nothing written, not even the folder


def test_a_broken_input_does_not_stop_the_others(tmp_path, run_cli):
    broken = tmp_path / "x.wav"
    broken.write_bytes(b"not audio")
    good = _speech(tmp_path / "y.wav")
    out = tmp_path / "out"
    code, _, err = run_cli("mel", broken, good, "-o", out)
    assert code == 1
    assert f"error: 1 of 2 files failed:\n  {broken}: " in err  # its reader's reason
    assert "wrote 1 file" in err
    assert sorted(p.name for p in out.iterdir()) == ["mel_convention.json", "y.npy"]


def test_full_disk_fails_one_file_and_the_batch_goes_on(tmp_path, small_disk, run_cli):
    rng = np.random.default_rng(0)
    big = tmp_path / "big.npy"
    np.save(big, rng.uniform(-8, -2, (80, 2400)).astype(np.float32))  # 1.2 MiB of 16-bit audio
    small = tmp_path / "small.npy"
    np.save(small, rng.uniform(-8, -2, (80, 20)).astype(np.float32))
    code, _, err = run_cli("vocode", big, small, "-o", small_disk, "--checkpoint", need(LJ_V2))
    assert code == 1
    assert f"{small_disk / 'big.wav'}: cannot write (No space left on device)" in err
    assert "Traceback" not in err and "wrote 1 file" in err
    assert sorted(p.name for p in small_disk.iterdir()) == ["small.wav"]
    assert sf.info(small_disk / "small.wav").frames == 20 * 256


def test_a_folder_reports_its_dangling_links_and_passes_over_hidden_files(tmp_path, run_cli):
    folder = tmp_path / "in"
    folder.mkdir()
    _speech(folder / "a.wav")
    (folder / "b.wav").symlink_to(tmp_path / "gone.wav")
    (folder / "._a.wav").write_bytes(b"\x00\x05\x16\x07AppleDouble metadata")
    code, _, err = run_cli("mel", folder, "-o", tmp_path / "mels")
    assert code == 1
    assert (
        f"{folder / 'b.wav'}: dangling symlink (to {tmp_path / 'gone.wav'}, which does not " in err
    )
    assert "._a" not in err
    assert sorted(p.name for p in (tmp_path / "mels").iterdir()) == ["a.npy", "mel_convention.json"]
