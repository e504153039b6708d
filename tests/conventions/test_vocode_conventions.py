"""Other conventions' mels through the vocoder: the guard, the converters and the folder's
convention file, in the Python API and in ``hifigan vocode``."""

from pathlib import Path

import numpy as np
import pytest
import torch

from hifigan import Vocoder
from hifigan.checkpoint import save_checkpoint
from hifigan.config import HiFiGANConfig
from hifigan.conventions import convention_names, convert_mel, load_convention
from hifigan.generator import Generator
from hifigan.io import HiFiGANWarning, load_audio

from conftest import LJSPEECH, need

CLIP = LJSPEECH / "wavs" / "LJ001-0002.flac"  # the shortest clip (1.9 s)


@pytest.fixture(scope="module")
def audio():
    return load_audio(need(CLIP), 22050)[0]


def mel_of(name: str, audio: np.ndarray) -> np.ndarray:
    c = load_convention(name)
    from hifigan.io import resample

    wav = resample(audio, 22050, c.sample_rate)
    return c.mel_spectrogram()(torch.from_numpy(np.ascontiguousarray(wav))).numpy()


@pytest.fixture(scope="module")
def vocoder():
    """A debug-size generator with the authors' 22.05 kHz mel (weights do not matter here)."""
    torch.manual_seed(0)
    config = HiFiGANConfig.preset("debug")
    return Vocoder(Generator.from_config(config), config)


def hifigan_warnings(record) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, HiFiGANWarning)]


def test_the_model_knows_its_convention(vocoder):
    assert vocoder.convention.name == "hifigan"
    assert vocoder.convention == load_convention("hifigan").replace(
        used_by=vocoder.convention.used_by, description=vocoder.convention.description
    )


def test_the_guard_warns_on_another_convention_and_not_on_the_models(vocoder, audio):
    native, coqui = mel_of("hifigan", audio), mel_of("coqui", audio)
    with pytest.warns(HiFiGANWarning, match="they look like coqui: .*--mel-convention coqui"):
        vocoder(coqui)
    with pytest.warns(HiFiGANWarning, match=r"mel 1 of the list: .*look like parallel-wavegan"):
        vocoder([native, mel_of("parallel-wavegan", audio)])
    with pytest.warns(HiFiGANWarning, match=r"mel 0 of the batch: .*look like coqui"):
        vocoder(coqui[None])
    import warnings

    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        vocoder(native)
        vocoder(coqui, check=False)
        vocoder.copy_synthesis(audio)
    assert hifigan_warnings(record) == []


def test_values_no_log_mel_can_hold_are_an_error(vocoder, audio):
    from hifigan.errors import InputError

    with pytest.raises(InputError, match="linear-magnitude mel"):
        vocoder(np.exp(mel_of("hifigan", audio)))


def test_conversion_in_the_api_equals_convert_mel(vocoder, audio):
    mel = mel_of("coqui", audio)
    expected = vocoder(convert_mel(mel, "coqui", "hifigan"), check=False)
    assert torch.equal(vocoder(mel, convention="coqui"), expected)
    assert torch.equal(vocoder([mel], convention="coqui")[0], expected)
    # auto detects it from the statistics
    assert vocoder.detect_convention(mel).name == "coqui"
    assert torch.equal(vocoder(mel, convention="auto"), expected)
    # another band count converts too
    vocos = mel_of("vocos", audio)
    out = vocoder(vocos, convention="vocos")
    assert out.shape[0] == convert_mel(vocos, "vocos", "hifigan").shape[1] * 256


def test_auto_keeps_the_models_convention_when_statistics_cannot_tell(vocoder, audio):
    # tacotron2's values are the authors' (half a hop earlier): detection cannot tell them apart
    assert vocoder.detect_convention(mel_of("tacotron2", audio)) == vocoder.convention


def round_trip_mad(out_wav, audio) -> float:
    fn = load_convention("hifigan").mel_spectrogram()
    ref = fn(torch.from_numpy(audio)).numpy()
    got = fn(torch.from_numpy(load_audio(out_wav, 22050)[0])).numpy()
    frames = min(ref.shape[1], got.shape[1])
    return float(np.abs(ref[:, :frames] - got[:, :frames]).mean())


def test_npy_and_convention_file_round_trip_through_vocode(run_cli, tmp_path, audio):
    """hifigan mel --convention coqui, then hifigan vocode of the folder: the folder's
    mel_convention.json is used, and the result is as close as the native mel's."""
    need(CLIP)
    for name, args in (("native", ()), ("coqui", ("--convention", "coqui"))):
        code, _, err = run_cli("mel", CLIP, "-o", tmp_path / name, *args)
        assert code == 0, err
    code, _, err = run_cli("vocode", tmp_path / "native", "-o", tmp_path / "out-native")
    assert code == 0, err
    code, _, err = run_cli("vocode", tmp_path / "coqui", "-o", tmp_path / "out-coqui")
    assert code == 0, err
    assert "mel_convention.json: mels read as convention coqui" in err
    native = round_trip_mad(tmp_path / "out-native" / "LJ001-0002.wav", audio)
    converted = round_trip_mad(tmp_path / "out-coqui" / "LJ001-0002.wav", audio)
    assert native < 0.3 and converted < native + 0.04, (native, converted)
    # the same .npy without its convention file: a warning, and noise
    lone = tmp_path / "lone"
    lone.mkdir()
    (lone / "x.npy").write_bytes((tmp_path / "coqui" / "LJ001-0002.npy").read_bytes())
    with pytest.warns(HiFiGANWarning, match="x.npy: mel statistics do not fit convention hifigan"):
        code, _, err = run_cli("vocode", lone / "x.npy", "-o", tmp_path / "out-lone")
    assert code == 0, err
    assert round_trip_mad(tmp_path / "out-lone" / "x.wav", audio) > 1.0


def test_vocode_with_a_named_convention_and_auto(run_cli, tmp_path, vocoder, audio):
    save_checkpoint(tmp_path / "g.pt", vocoder.config, Generator.from_config(vocoder.config))
    np.save(tmp_path / "m.npy", mel_of("nemo-log1p", audio))
    outs = {}
    for flag in ("nemo-log1p", "auto"):
        code, _, err = run_cli(
            "vocode", tmp_path / "m.npy", "-o", tmp_path / flag, "--checkpoint",
            tmp_path / "g.pt", "--mel-convention", flag,
        )  # fmt: skip
        assert code == 0, err
        assert "converting mels from convention nemo-log1p to hifigan" in err
        outs[flag] = load_audio(tmp_path / flag / "m.wav", 22050)[0]
    assert "m.npy: detected mel convention nemo-log1p" in err
    assert np.array_equal(outs["nemo-log1p"], outs["auto"])


def test_vocode_convention_errors(run_cli, tmp_path, vocoder, audio):
    save_checkpoint(tmp_path / "g.pt", vocoder.config, Generator.from_config(vocoder.config))
    model = ("--checkpoint", tmp_path / "g.pt")
    np.save(tmp_path / "vocos.npy", mel_of("vocos", audio))
    code, _, err = run_cli("vocode", tmp_path / "vocos.npy", "-o", tmp_path / "o", *model)
    assert code != 0
    assert "vocos.npy: mel has shape (100, " in err and "the model expects 80 bands" in err
    assert "it looks like" in err
    assert "--mel-convention" in err and "Traceback" not in err
    cases = [
        (("--mel-convention", "nope"), "unknown mel convention 'nope'"),
        (("--mel-stats", tmp_path / "s.npy"), "--mel-stats needs --mel-convention"),
        (("--mel-convention", "espnet", "--mel-stats", tmp_path / "s.npy"), "stats file not found"),
    ]
    for args, message in cases:
        code, _, err = run_cli(
            "vocode", tmp_path / "vocos.npy", "-o", tmp_path / "o", *model, *args
        )
        assert code != 0 and message in err, err
    # a normalised mel without its statistics
    m = mel_of("parallel-wavegan", audio)
    np.save(tmp_path / "norm.npy", (m - m.mean(1, keepdims=True)) / m.std(1, keepdims=True))
    code, _, err = run_cli(
        "vocode", tmp_path / "norm.npy", "-o", tmp_path / "o", *model,
        "--mel-convention", "parallel-wavegan",
    )  # fmt: skip
    assert code != 0 and "norm.npy: the mel looks normalised" in err and "--mel-stats" in err


def test_a_model_of_another_rate_guards_against_its_own_convention(audio):
    """A 48 kHz preset's mel is no named convention: the guard and auto use the model's own."""
    config = HiFiGANConfig.preset("v2-48k")
    vocoder = Vocoder(Generator.from_config(config), config)
    from hifigan.io import resample

    mel = vocoder.mel(resample(audio, 22050, 48000)).numpy()
    import warnings

    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        assert vocoder.prepare_mel(mel).shape == mel.shape
    assert hifigan_warnings(record) == []
    assert vocoder.detect_convention(mel) == vocoder.convention
    from hifigan.errors import InputError

    with pytest.raises(InputError, match=r"mel has 80 bands, .* has 128; it looks like coqui"):
        vocoder.prepare_mel(mel_of("coqui", audio))


# ---------------------------------------------------------------------- auto, per folder
DEMO = Path(__file__).resolve().parents[2] / "src" / "hifigan" / "data" / "sonnet1_librivox.flac"
# conventions whose values statistics cannot tell apart (a half-hop shift, fmax, a window, or
# only the level of the filterbank): auto decides for the first, the model's own or the most
# common; mel_convention.json or hifigan mel-check --audio tell them apart
SAME_STATISTICS = {
    "hifigan": {"tacotron2", "bigvgan-22k", "nemo"},
    "parallel-wavegan": {"parallel-wavegan-24k", "espnet"},
}
LEVELS = {"loud": 1.0, "quiet": 0.03, "near-silent": 0.001}


def mixed_levels(folder: Path, seconds: float = 2.0) -> Path:
    """The demo clip's first ``seconds`` at three levels, as float wavs (no 16-bit rounding
    of the near-silent one)."""
    import soundfile as sf

    audio = load_audio(DEMO, 22050)[0][: int(seconds * 22050)]
    folder.mkdir(parents=True)
    for name, gain in LEVELS.items():
        sf.write(folder / f"{name}.wav", audio * gain, 22050, subtype="FLOAT")
    return folder


@pytest.fixture
def checkpoint(tmp_path, vocoder):
    path = tmp_path / "g.pt"
    save_checkpoint(path, vocoder.config, Generator.from_config(vocoder.config))
    return path


def auto_folder(run_cli, tmp_path, wavs, name, checkpoint, keep_file=False):
    """``hifigan mel --convention NAME`` of ``wavs``, then ``hifigan vocode --mel-convention
    auto`` of the folder: (its standard error, the wavs written)."""
    mels = tmp_path / f"mels-{name}"
    code, _, err = run_cli("mel", wavs, "-o", mels, "--convention", name)
    assert code == 0, err
    if not keep_file:
        (mels / "mel_convention.json").unlink()
    out = tmp_path / f"out-{name}"
    code, _, err = run_cli(
        "vocode", mels, "-o", out, "--checkpoint", checkpoint, "--mel-convention", "auto"
    )
    assert code == 0, err
    return err, sorted(p.name for p in out.iterdir())


def detected(err: str) -> dict[str, int]:
    """``{convention: mels}`` from the lines ``FOLDER: detected mel convention NAME (k of n
    mels, judged together)``."""
    import re

    found = re.findall(r"detected mel convention (\S+) \((\d+) of (\d+) mels", err)
    return {name: int(k) for name, k, _ in found}


def test_auto_decides_a_folder_together_where_its_mels_alone_disagree(
    run_cli, tmp_path, checkpoint
):
    """nemo-fastpitch's ln(x + 1e-5) gives the authors' numbers wherever the signal is well
    above 1e-5: alone, the loud mel reads as hifigan; the near-silent one shows values that
    approach the floor without reaching it, and decides the folder."""
    wavs = mixed_levels(tmp_path / "wavs")
    err, written = auto_folder(run_cli, tmp_path, wavs, "nemo-fastpitch", checkpoint)
    assert detected(err) == {"nemo-fastpitch": 3}, err
    assert written == ["loud.wav", "near-silent.wav", "quiet.wav"]
    assert "loud.npy: on its own it looks like hifigan; read as nemo-fastpitch" in err
    assert "converting mels from convention nemo-fastpitch to hifigan" in err
    # the same mel alone is read as the model's own (statistics cannot tell them apart)
    mels = tmp_path / "mels-nemo-fastpitch"
    code, _, err = run_cli(
        "vocode", mels / "loud.npy", "-o", tmp_path / "alone", "--checkpoint", checkpoint,
        "--mel-convention", "auto",
    )  # fmt: skip
    assert code == 0 and f"{mels / 'loud.npy'}: detected mel convention hifigan" in err, err


def test_auto_reads_a_folders_convention_file(run_cli, tmp_path, checkpoint):
    """A folder written by hifigan mel --convention says what it holds: auto takes it, also
    for conventions whose statistics are another's."""
    wavs = mixed_levels(tmp_path / "wavs", seconds=1.0)
    err, _ = auto_folder(run_cli, tmp_path, wavs, "tacotron2", checkpoint, keep_file=True)
    assert "mel_convention.json: mels read as convention tacotron2" in err
    assert "detected" not in err


def test_a_quiet_log1p_folder_of_real_speech_is_read_as_one(run_cli, tmp_path, checkpoint):
    """Real speech in NeMo's non-negative ln(x + 1): a quiet take alone looks like a linear
    mel (ln(1 + x) is x for small x) and is refused; with its folder it is read as
    nemo-log1p, with one line saying so."""
    import soundfile as sf

    from conftest import SHARED

    files = sorted(need(SHARED / "data" / "unseen" / "wavs").glob("*.flac"))[:2]
    files += sorted(need(LJSPEECH / "wavs").glob("*.flac"))[1:2]
    wavs = tmp_path / "wavs"
    wavs.mkdir()
    for i, f in enumerate(files):
        audio = load_audio(f, 22050)[0][: 2 * 22050]
        sf.write(wavs / f"{i}-loud.wav", audio, 22050, subtype="FLOAT")
        sf.write(wavs / f"{i}-quiet.wav", audio * 0.1, 22050, subtype="FLOAT")
    mels = tmp_path / "mels"
    assert run_cli("mel", wavs, "-o", mels, "--convention", "nemo-log1p")[0] == 0
    (mels / "mel_convention.json").unlink()
    lone = []
    for npy in sorted(mels.glob("*.npy")):
        code, _, err = run_cli(
            "vocode", npy, "-o", tmp_path / "alone", "--checkpoint", checkpoint,
            "--mel-convention", "auto",
        )  # fmt: skip
        lone.append(code)
        if code:
            assert "looks like a linear-magnitude mel" in err, err
    assert any(lone), "no mel is misread alone: the case is not shown"
    code, _, err = run_cli(
        "vocode", mels, "-o", tmp_path / "out", "--checkpoint", checkpoint,
        "--mel-convention", "auto",
    )  # fmt: skip
    assert code == 0, err
    assert detected(err) == {"nemo-log1p": 6}, err
    notes = [line for line in err.splitlines() if "on its own" in line]
    assert len(notes) == sum(lone) and all("read as nemo-log1p" in n for n in notes), notes
    assert len(list((tmp_path / "out").iterdir())) == 6


def sweep_row(run_cli, tmp_path, wavs, name, checkpoint) -> dict[str, int]:
    err, written = auto_folder(run_cli, tmp_path, wavs, name, checkpoint)
    assert len(written) == len(LEVELS)
    return detected(err)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(set(convention_names())))
def test_auto_detects_every_named_convention_from_a_folder_of_mixed_levels(
    run_cli, tmp_path, checkpoint, name
):
    wavs = mixed_levels(tmp_path / "wavs", seconds=1.5)
    found = sweep_row(run_cli, tmp_path, wavs, name, checkpoint)
    assert len(found) == 1 and sum(found.values()) == len(LEVELS), found
    (decided,) = found
    assert decided == name or name in SAME_STATISTICS.get(decided, ()), found


def test_the_api_decides_several_mels_together(vocoder):
    """Vocoder.detect_conventions: the pooled decision, a note for each mel that alone reads
    otherwise; convention="auto" on a list decides it as one."""
    audio = load_audio(DEMO, 22050)[0][: 2 * 22050]
    loud, near_silent = (mel_of("nemo-fastpitch", audio * g) for g in (1.0, 0.001))
    assert vocoder.detect_convention(loud) == vocoder.convention  # alone: the same numbers
    found = vocoder.detect_conventions([loud, near_silent, np.full((80, 4), np.nan)], ["a", "b"])
    assert [c.name if c else None for c in found.conventions] == [
        "nemo-fastpitch", "nemo-fastpitch", None,
    ]  # fmt: skip
    assert found.problems == (None, None, "mel contains NaN or infinite values")
    note = "a: on its own it looks like hifigan; read as nemo-fastpitch, with the other mel"
    assert found.notes == (note,)
    assert vocoder.detect_convention([loud, near_silent]).name == "nemo-fastpitch"
    together = vocoder([loud, near_silent], convention="auto")
    named = vocoder([loud, near_silent], convention="nemo-fastpitch")
    assert all(torch.equal(a, b) for a, b in zip(together, named))
