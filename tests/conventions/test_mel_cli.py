"""hifigan mel --convention and hifigan mel-check, end to end."""

import json

import numpy as np
import pytest

from hifigan.conventions import convert_mel, load_convention

from conftest import LJSPEECH, need

CLIP = LJSPEECH / "wavs" / "LJ001-0001.flac"


@pytest.fixture
def pwg_dir(run_cli, tmp_path):
    out = tmp_path / "pwg"
    code, _, err = run_cli("mel", need(CLIP), "-o", out, "--convention", "parallel-wavegan")
    assert code == 0, err
    return out


def test_mel_writes_the_convention_beside_the_mels(run_cli, tmp_path, pwg_dir):
    code, _, err = run_cli("mel", need(CLIP), "-o", tmp_path / "hg")
    assert code == 0, err
    native = np.load(tmp_path / "hg" / "LJ001-0001.npy")
    assert load_convention(tmp_path / "hg" / "mel_convention.json").name == "hifigan"
    mel = np.load(pwg_dir / "LJ001-0001.npy")
    assert mel.shape == (80, 832) and mel.dtype == np.float32
    convention = load_convention(pwg_dir / "mel_convention.json")
    assert convention == load_convention("parallel-wavegan")
    # the .npy + mel_convention.json pair converts back to the authors' mel
    back = convert_mel(mel, pwg_dir / "mel_convention.json", "hifigan")
    assert back.shape == native.shape and np.abs(back - native).mean() < 0.13


def test_mel_with_stats_and_a_user_convention(run_cli, tmp_path):
    stats = tmp_path / "stats.npy"
    np.save(stats, np.stack([np.full(80, -2.3), np.full(80, 0.9)]))
    out = tmp_path / "normed"
    code, _, err = run_cli("mel", need(CLIP), "-o", out, "--convention", "espnet", "--stats", stats)
    assert code == 0, err
    mel = np.load(out / "LJ001-0001.npy")
    declared = load_convention(out / "mel_convention.json")
    assert declared.normalization.stats == str((out / "mel_stats.npz").resolve())
    raw = convert_mel(mel, declared, "espnet")  # undoes the stats named in the file
    assert np.allclose(raw, mel * 0.9 - 2.3, atol=1e-5)
    # a user's convention file
    custom = load_convention("hifigan").replace(name="hifigan-16k", sample_rate=16000)
    (tmp_path / "c.json").write_text(custom.to_json())
    with pytest.warns(UserWarning, match="resampled from 22050 Hz to 16000 Hz"):
        code, _, err = run_cli(
            "mel", CLIP, "-o", tmp_path / "c", "--convention", tmp_path / "c.json"
        )
    assert code == 0, err
    assert np.load(tmp_path / "c" / "LJ001-0001.npy").shape == (80, 603)


def test_mel_option_errors(run_cli, tmp_path):
    code, _, err = run_cli("mel", need(CLIP), "-o", tmp_path, "--stats", tmp_path / "s.npy")
    assert code == 1 and "convention hifigan has no normalisation" in err
    code, _, err = run_cli("mel", CLIP, "-o", tmp_path, "--convention", "hifi")
    assert code == 1 and "unknown mel convention 'hifi'" in err


def test_mel_check_on_a_declared_folder(run_cli, pwg_dir):
    code, out, err = run_cli("mel-check", pwg_dir)
    assert code == 1, err  # it does not fit the authors' convention
    assert "80 bands x 832 frames" in out
    assert f"declared: parallel-wavegan ({pwg_dir / 'mel_convention.json'})" in out
    assert "likely: parallel-wavegan (or espnet: same statistics)" in out
    assert "does NOT fit the model's hifigan" in out
    npy = pwg_dir / "LJ001-0001.npy"
    assert f"vocode it with: hifigan vocode {npy} --mel-convention parallel-wavegan -o OUT" in out


def test_mel_check_with_the_audio_and_json(run_cli, pwg_dir, tmp_path):
    bare = tmp_path / "tts.npy"
    bare.write_bytes((pwg_dir / "LJ001-0001.npy").read_bytes())
    code, out, err = run_cli("mel-check", bare, "--audio", CLIP, "--json")
    assert code == 1, err
    (report,) = json.loads(out)
    assert report["convention"] == "parallel-wavegan"
    assert report["how"] == "identified with the audio"
    assert report["audio"]["identified"][0]["error"] == 0.0
    assert report["audio"]["expected_frames"]["parallel-wavegan"] == 832
    assert report["fits_model"] is False and "statistics" in report


def test_mel_check_on_the_authors_mel_fits(run_cli, tmp_path):
    code, _, err = run_cli("mel", need(CLIP), "-o", tmp_path)
    assert code == 0, err
    (tmp_path / "mel_convention.json").unlink()
    code, out, err = run_cli("mel-check", tmp_path / "LJ001-0001.npy", "--model", "lj-v1")
    assert code == 0, err
    assert "likely: hifigan (or tacotron2, bigvgan-22k, nemo: same statistics)" in out
    assert "fits the model's hifigan (model lj-v1)" in out
    npy = tmp_path / "LJ001-0001.npy"
    assert f"vocode it with: hifigan vocode {npy} --model lj-v1 -o OUT" in out


def test_mel_check_errors(run_cli, tmp_path):
    np.save(tmp_path / "lin.npy", np.abs(np.random.default_rng(0).normal(size=(80, 50))) ** 4)
    code, _, err = run_cli("mel-check", tmp_path / "lin.npy")
    assert code == 1 and "looks like a linear-magnitude mel" in err
    np.save(tmp_path / "b.npy", np.zeros((80, 20), dtype=np.float32))
    code, _, err = run_cli("mel-check", tmp_path, "--audio", CLIP)
    assert code == 1 and "--audio goes with one mel file, got 2" in err


def test_mel_check_and_mel_given_the_other_kind_of_file(run_cli, tmp_path):
    import soundfile as sf

    wav = tmp_path / "speech.wav"
    sf.write(wav, np.zeros(4000, dtype=np.float32), 22050)
    code, _, err = run_cli("mel-check", wav)
    assert code == 1
    assert err.strip() == (
        f"error: {wav}: is a WAV audio file, not a mel file: make its mel with "
        f"`hifigan mel {wav} -o OUTDIR`"
    )
    code, _, err = run_cli("mel-check", tmp_path)
    assert code == 1
    assert err.strip() == (
        f"error: {tmp_path}: folder holds no files of type .npy, .pt; it holds 1 audio file(s) "
        f"(`hifigan mel {tmp_path} -o OUTDIR` makes mels)"
    )
    mel = tmp_path / "m.npy"
    np.save(mel, np.full((80, 10), -5.0, dtype=np.float32))
    code, _, err = run_cli("mel", mel, "-o", tmp_path / "out")
    assert code == 1
    assert f"{mel}: not a valid audio file: it is a NumPy array (.npy); a mel is vocoded" in err
    assert "Traceback" not in err
