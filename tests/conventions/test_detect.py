"""Which convention is a mel? Detection from statistics, identification with the audio, and
the guard that stays silent on the authors' mels of real speech and fires on the others."""

import warnings

import numpy as np
import pytest
import torch

from hifigan.conventions import (
    check_convention,
    convention_names,
    detect_convention,
    identify_convention,
    load_convention,
    mel_statistics,
    stats_from_mels,
)
from hifigan.conventions.detect import detect_shared_convention
from hifigan.errors import InputError
from hifigan.io import load_audio, resample

from conftest import LJSPEECH, SHARED, need

# conventions whose numbers statistics cannot tell from the authors' (framing, fmax, window)
LOOK_THE_SAME = {"hifigan", "tacotron2", "bigvgan-22k", "nemo", "nemo-fastpitch"}


def clips(folder, every=1, limit=None):
    files = sorted(need(SHARED / "data" / folder / "wavs").glob("*.flac"))[::every]
    return files[:limit]


@pytest.fixture(scope="module")
def speech():
    """Two LJSpeech clips and two VCTK speakers (22.05 kHz)."""
    files = clips("ljspeech", every=18) + clips("unseen", every=2, limit=2)
    return {f.stem: load_audio(f, 22050)[0] for f in files}


@pytest.fixture(scope="module")
def mels(speech):
    out = {}
    for name in convention_names():
        c = load_convention(name)
        module = c.mel_spectrogram()
        out[name] = {
            k: module(torch.from_numpy(resample(w, 22050, c.sample_rate))).numpy()
            for k, w in speech.items()
        }
    return out


def best(candidates):
    """The names that share the top score (the same statistics)."""
    top = candidates[0].score
    return {c.name for c in candidates if c.score == top}


@pytest.mark.parametrize("name", convention_names())
def test_detection_finds_the_convention_or_its_family(mels, name):
    for clip, mel in mels[name].items():
        ranked = detect_convention(mel)
        assert ranked and all(load_convention(c.name).n_mels == mel.shape[0] for c in ranked)
        found = best(ranked)
        if name == "coqui-tacotron2" and mel.min() >= np.log(1e-5):
            assert "tacotron2" in found  # no value below 1e-5: the same numbers as tacotron2
        else:
            assert name in found, (clip, ranked[:3])
        if name in ("coqui", "vocos", "nemo-log1p", "bigvgan-24k", "bigvgan-44k"):
            assert ranked[0].name == name and len(found) == 1
        if name in LOOK_THE_SAME:
            assert found >= {"hifigan", "tacotron2", "bigvgan-22k", "nemo"}


def test_detection_reasons(mels):
    coqui = detect_convention(mels["coqui"]["LJ001-0001"])[0]
    assert coqui.name == "coqui" and "exactly at its floor -4" in coqui.reasons[0]
    pwg = detect_convention(mels["parallel-wavegan"]["LJ001-0001"])[0]
    assert pwg.name == "parallel-wavegan" and pwg.same_values == ("espnet",)
    hifigan = {c.name: c for c in detect_convention(mels["parallel-wavegan"]["LJ001-0001"])}
    assert any("spread" in r for r in hifigan["hifigan"].reasons)


def test_normalised_mels_are_detected(mels):
    pwg = load_convention("parallel-wavegan")
    stats = stats_from_mels(list(mels["parallel-wavegan"].values()), pwg)
    normed = stats.normalize(torch.from_numpy(mels["parallel-wavegan"]["LJ001-0001"])).numpy()
    ranked = detect_convention(normed)
    assert ranked[0].name == "parallel-wavegan" and "normalised" in ranked[0].reasons[0]
    warnings = check_convention(normed, "hifigan")
    assert len(warnings) == 1 and "--mel-convention parallel-wavegan" in warnings[0]


@pytest.mark.parametrize("name", convention_names())
def test_identification_with_the_audio_is_exact(mels, speech, name):
    for clip, mel in list(mels[name].items())[:2]:
        ranked = identify_convention(mel, speech[clip], 22050)
        assert ranked[0].error < 1e-6
        assert name == ranked[0].name or name in ranked[0].same_values
        same = {name, ranked[0].name, *ranked[0].same_values}
        others = [c for c in ranked if c.name not in same]
        if others:
            assert others[0].error > ranked[0].error
        # pairs that differ only in a floor or a 1e-10 guard are close; the others are not
        if others and name not in ("parallel-wavegan", "espnet", "tacotron2", "coqui-tacotron2"):
            assert others[0].error > 1e-3


def test_identification_of_a_normalised_mel(mels, speech):
    pwg = load_convention("parallel-wavegan")
    raw = mels["parallel-wavegan"]["LJ001-0001"]
    normed = stats_from_mels([raw], pwg).normalize(torch.from_numpy(raw)).numpy()
    ranked = identify_convention(normed, speech["LJ001-0001"], 22050)
    assert ranked[0].name in ("parallel-wavegan", "espnet") and ranked[0].error < 1e-4
    assert ranked[2].error > 0.05


# ---------------------------------------------------------------------- the guard
def hifigan_mels(files):
    module = load_convention("hifigan").mel_spectrogram()
    for f in files:
        yield f, module(torch.from_numpy(load_audio(f, 22050)[0])).numpy()


@pytest.mark.slow
def test_guard_is_silent_on_the_authors_mels_of_real_speech():
    # every LJSpeech and VCTK clip, and 200 of Kathleen's
    kathleen = clips("kathleen")
    rng = np.random.default_rng(0)
    kathleen = [kathleen[i] for i in sorted(rng.choice(len(kathleen), 200, replace=False))]
    files = clips("ljspeech") + clips("unseen") + kathleen
    assert len(files) == 242
    for f, mel in hifigan_mels(files):
        assert check_convention(mel, "hifigan", f) == []
        # and on a quieter take (-20 dB)
        quiet = np.log(np.maximum(np.exp(mel) * 0.1, 1e-5))
        assert check_convention(quiet, "hifigan", f) == []


@pytest.mark.parametrize("name", sorted(set(convention_names()) - LOOK_THE_SAME))
def test_guard_fires_on_other_conventions(mels, name):
    for clip, mel in mels[name].items():
        if name == "coqui-tacotron2" and mel.min() >= np.log(1e-5):
            assert check_convention(mel, "hifigan") == []  # identical numbers to tacotron2's
            continue
        if mel.shape[0] != 80:
            with pytest.raises(InputError, match=f"has {mel.shape[0]} bands, convention hifigan"):
                check_convention(mel, "hifigan", f"{clip}.npy")
            continue
        warnings = check_convention(mel, "hifigan", f"{clip}.npy")
        assert len(warnings) == 1, (clip, warnings)
        assert warnings[0].startswith(f"{clip}.npy: mel statistics do not fit convention hifigan")
        flag = warnings[0].split("--mel-convention ")[1]
        assert (
            flag == name or load_convention(flag).compression == load_convention(name).compression
        )


@pytest.mark.parametrize("name", sorted(LOOK_THE_SAME))
def test_guard_is_silent_on_conventions_with_the_same_numbers(mels, name):
    # a half-hop shift, a symmetric window or fmax leave statistics unchanged: use --audio
    for mel in mels[name].values():
        assert check_convention(mel, "hifigan") == []


def test_guard_on_the_expected_convention_of_another_model(mels):
    for mel in mels["vocos"].values():
        assert check_convention(mel, "vocos") == []
    warnings = check_convention(mels["bigvgan-24k"]["LJ001-0001"], "vocos")
    assert "look like bigvgan-24k" in warnings[0]


def test_values_that_are_no_log_mel_are_errors(mels):
    mel = mels["hifigan"]["LJ001-0001"]
    with pytest.raises(InputError, match=r"x.npy: .*looks like a linear-magnitude mel"):
        check_convention(np.exp(mel), "hifigan", "x.npy")
    with pytest.raises(InputError, match="not a log-mel of any convention"):
        check_convention(np.exp(mel) ** 2 * 1e6, "hifigan")
    with pytest.raises(InputError, match="NaN or infinite"):
        check_convention(np.full((80, 10), np.nan), "hifigan")
    with pytest.raises(InputError, match="has 100 bands, convention hifigan has 80; it looks like"):
        check_convention(mels["vocos"]["LJ001-0001"], "hifigan")


def test_ljspeech_is_there():
    need(LJSPEECH)


def test_a_value_that_overflows_when_read_as_log10_still_ranks_without_warnings():
    # found by the vocoder's property test: 309 read as log10 is 1e309, past float64's range
    rng = np.random.default_rng(0)
    mel = rng.uniform(-11, 2, size=(80, 1)).astype(np.float16)
    mel[:2] = 309.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ranked = detect_convention(mel)
    assert ranked and all(np.isfinite(r.score) for r in ranked)


# ---------------------------------------------------------------------- several mels together
def test_a_non_negative_mel_is_never_read_as_normalised():
    """ln(x + 1) of real speech has a per-band mean and deviation that can look standardised,
    but no negative value: it is nemo-log1p, not a normalised parallel-wavegan mel."""
    module = load_convention("nemo-log1p").mel_spectrogram()
    for f in clips("unseen"):
        mel = module(torch.from_numpy(load_audio(f, 22050)[0])).numpy()
        assert not mel_statistics(mel).normalized
        ranked = detect_convention(mel)
        assert ranked[0].name == "nemo-log1p", (f.name, ranked[:2])


def test_pooled_statistics_show_what_one_loud_mel_cannot(speech):
    """coqui-tacotron2 floors at 1e-8: a loud mel never goes below 1e-5 and has tacotron2's
    numbers; a quiet take of the same source goes below, and decides for both."""
    module = load_convention("coqui-tacotron2").mel_spectrogram()
    loud = {k: module(torch.from_numpy(w)).numpy() for k, w in speech.items()}
    clip = next(k for k, m in loud.items() if m.min() >= np.log(1e-5))
    loud, quiet = loud[clip], module(torch.from_numpy(speech[clip] * 0.03)).numpy()
    assert quiet.min() < np.log(1e-5)
    assert detect_convention(loud)[0].name == "hifigan"  # tied: the more common one
    shared = detect_shared_convention([loud, quiet])
    assert shared.ranked[0].name == "coqui-tacotron2"
    hifigan = next(c for c in shared.ranked if c.name == "hifigan")
    assert hifigan.score < -10 and "values go below its floor" in hifigan.reasons[0]
    assert [a[0].name for a in shared.alone] == ["hifigan", "coqui-tacotron2"]
    with pytest.raises(InputError, match=r"different band counts \(\[80, 100\]\)"):
        detect_shared_convention([loud, np.zeros((100, 5))])


def test_a_clamped_floor_and_an_offset_floor_are_told_apart():
    """max(x, 1e-5) piles the quietest values exactly on ln(1e-5); ln(x + 1e-5) brings them
    ever closer without reaching it."""
    wav = load_audio(clips("ljspeech")[0], 22050)[0] * 0.001
    for name, other in (("hifigan", "nemo-fastpitch"), ("nemo-fastpitch", "hifigan")):
        mel = load_convention(name).mel_spectrogram()(torch.from_numpy(wav)).numpy()
        ranked = {c.name: c for c in detect_convention(mel)}
        assert ranked[name].score > ranked[other].score + 3, (name, ranked[name], ranked[other])


def test_mel_check_judges_a_folder_together(run_cli, tmp_path):
    """hifigan mel-check of a folder adds the pooled verdict, where a loud mel alone reads as
    the authors' numbers."""
    module = load_convention("nemo-fastpitch").mel_spectrogram()
    wav = load_audio(clips("ljspeech")[0], 22050)[0][: 2 * 22050]
    for name, gain in (("loud", 1.0), ("near-silent", 0.001)):
        np.save(tmp_path / f"{name}.npy", module(torch.from_numpy(wav * gain)).numpy())
    out = run_cli("mel-check", tmp_path)[1]
    assert f"{tmp_path}: its 2 mels judged together: nemo-fastpitch" in out.splitlines(), out
    code, out, _ = run_cli("mel-check", tmp_path / "loud.npy")
    assert code == 0 and "convention: hifigan" in out and "judged together" not in out, out
