"""What the Vocoder API accepts: one-line InputErrors for everything it cannot vocode, never
NaN audio, a silent zero output or an AttributeError."""

import numpy as np
import pytest
import torch

from hifigan import InputError, Vocoder
from hifigan.io import HiFiGANWarning
from inference_helpers import log_mel

from conftest import LJ_V2, need

EXPECTED = (
    "expected a mel of shape (80, frames) or (batch, 80, frames) as a tensor or array, "
    "or a list of them; got "
)


@pytest.fixture(scope="module")
def vocoder():
    with pytest.warns(HiFiGANWarning, match="loaded unverified"):
        return Vocoder.from_checkpoint(need(LJ_V2))


def refused(call, message: str) -> None:
    """``call()`` raises InputError whose whole text is ``message``."""
    with pytest.raises(InputError) as caught:
        call()
    assert str(caught.value) == message


def test_a_mel_overflowing_the_generator_is_refused_not_written_as_silence(vocoder):
    huge = np.full((80, 6), 1e38, np.float32)
    # what the generator makes of it: NaN everywhere (its first layers overflow)
    with torch.inference_mode():
        raw = vocoder.backend(torch.from_numpy(huge)[None])
    assert torch.isnan(raw).all()
    tail = "the mel values (max 1e+38) are far outside a log-mel's range"
    refused(lambda: vocoder(huge), f"the generator produced non-finite audio (NaN or inf); {tail}")
    refused(
        lambda: vocoder([log_mel(4), huge]),
        f"mel 1 of the list: the generator produced non-finite audio (NaN or inf); {tail}",
    )
    refused(
        lambda: list(vocoder.stream([log_mel(20), huge[:, :2]])),
        f"chunk 1 of the stream: the generator produced non-finite audio (NaN or inf); {tail}",
    )


@pytest.mark.parametrize(
    ("scale", "extreme"), [(1e3, "min -1.1e+04"), (1e30, "min -1.1e+31"), (-1e30, "max 1.1e+31")]
)
def test_values_no_log_mel_can_hold_are_refused(vocoder, scale, extreme):
    mel = log_mel(6).clamp(-11.0, 2.0)
    mel[0, 0] = -11.0  # the extreme value, after scaling
    mel = mel * scale
    problem = f"the mel values ({extreme}) are far outside a log-mel's range"
    refused(lambda: vocoder(mel), f"{problem} (no log scale reaches beyond ±1000); not vocoded")
    refused(
        lambda: list(vocoder.stream([log_mel(20), mel])),
        f"chunk 1 of the stream: {problem} (no log scale reaches beyond ±1000); not vocoded",
    )
    refused(
        lambda: list(vocoder.stream([mel])),  # all held back, not synthesized yet: refused
        f"chunk 0 of the stream: {problem} (no log scale reaches beyond ±1000); not vocoded",
    )


def test_in_range_mels_of_other_scales_still_vocode(vocoder):
    """Within ±1000 a mel may be a log-mel of another convention (dB, log10): vocoded, finite
    and in [-1, 1] (telling conventions apart is not the vocoder's job)."""
    for mel in (log_mel(6) * 20, log_mel(6).abs() * 50, torch.full((80, 6), 999.0)):
        audio = vocoder(mel)
        assert audio.shape == (6 * 256,)
        assert torch.isfinite(audio).all() and audio.abs().max() <= 1


def test_nan_anywhere_is_refused_and_located(vocoder):
    mel = log_mel(6)
    mel[3, 4] = float("nan")
    refused(lambda: vocoder(mel), "mel contains 1 NaN or infinite values")
    refused(lambda: vocoder(mel.numpy()), "mel contains 1 NaN or infinite values")
    refused(lambda: vocoder(mel[None]), "mel contains 1 NaN or infinite values")
    refused(
        lambda: vocoder([log_mel(4), mel]),
        "mel 1 of the list: mel contains 1 NaN or infinite values",
    )
    chunks = [log_mel(3), log_mel(3), mel[:, 3:]]
    refused(
        lambda: list(vocoder.stream(chunks)),
        "chunk 2 of the stream: mel contains 1 NaN or infinite values",
    )
    inf = log_mel(6).double()
    inf[0, 0] = 1e300  # finite in float64, infinite in float32
    refused(lambda: vocoder(inf), "mel holds 1 values beyond float32's range")
    audio = np.zeros(4096, np.float32)
    audio[[10, 20]] = [np.nan, np.inf]
    refused(lambda: vocoder.mel(audio), "audio contains 2 NaN or infinite samples")
    refused(lambda: vocoder.copy_synthesis(audio), "audio contains 2 NaN or infinite samples")
    loud = np.full(4096, 1e30, np.float32)
    refused(
        lambda: vocoder.mel(loud),
        "the mel of this audio is not finite: its samples reach max 1e+30, far beyond full "
        "scale (1.0)",
    )


def test_a_push_stream_refuses_nan_too(vocoder):
    stream = vocoder.streamer()
    mel = log_mel(30)
    mel[5, 20] = float("inf")
    refused(lambda: stream.push(mel), "mel contains NaN or infinite values")


@pytest.mark.parametrize(
    ("value", "got"),
    [
        ("text", "str"),
        (None, "NoneType"),
        (3.5, "float"),
        ({"mel": 1}, "dict"),
    ],
)
def test_other_types_say_what_is_expected(vocoder, value, got):
    refused(lambda: vocoder(value), EXPECTED + got)


def test_wrong_shapes_dtypes_and_list_items(vocoder):
    refused(
        lambda: vocoder([[1.0, 2.0]]),
        "mel 0 of the list: expected a mel of shape (80, frames) as a tensor or array; got list",
    )
    refused(
        lambda: vocoder(np.zeros(5, np.float32)),
        "mel must have shape (80, frames) or (batch, 80, frames), got (5,)",
    )
    refused(
        lambda: vocoder(np.zeros((1, 1, 80, 5), np.float32)),
        "mel must have shape (80, frames) or (batch, 80, frames), got (1, 1, 80, 5)",
    )
    refused(
        lambda: vocoder(np.zeros((80, 5), int)), "mel must hold floating-point values, got int64"
    )
    refused(
        lambda: vocoder(torch.zeros(80, 5, dtype=torch.bool)),
        "mel must hold floating-point values, got torch.bool",
    )
    refused(lambda: vocoder(np.zeros((80, 0), np.float32)), "mel has no frames")
    refused(
        lambda: list(vocoder.stream(["text"])),
        "chunk 0 of the stream: expected a mel of shape (80, frames) as a tensor or array; got str",
    )
    assert vocoder([]) == []
    half = vocoder(log_mel(4).half().numpy())  # float16 and float64 are converted
    assert torch.allclose(half, vocoder(log_mel(4).half().float()))
    assert vocoder(log_mel(4).double()).dtype == torch.float32


def test_multichannel_audio_is_mixed_down_in_either_layout(vocoder):
    rng = np.random.default_rng(0)
    left = (0.1 * rng.standard_normal(5000)).astype(np.float32)
    right = (0.1 * rng.standard_normal(5000)).astype(np.float32)
    mono = vocoder.mel((left + right) / 2)
    stereo = np.stack([left, right], axis=1)  # (samples, channels), as soundfile.read gives it
    for audio, shape in (
        (stereo, (5000, 2)),
        (stereo.T, (2, 5000)),
        (torch.from_numpy(stereo), (5000, 2)),
    ):
        with pytest.warns(HiFiGANWarning) as warned:
            mel = vocoder.mel(audio)
        assert [str(w.message) for w in warned] == [
            f"audio of shape {shape}: mixed 2 channels down to mono"
        ]
        assert mel.shape == mono.shape == (80, 19)
        assert (mel - mono).abs().max() < 1e-5
    with pytest.warns(HiFiGANWarning, match="mixed 2 channels"):
        assert vocoder.copy_synthesis(stereo).shape == (19 * 256,)
    assert vocoder.mel(left[:, None]).shape == (80, 19)  # one channel: no warning needed
    refused(
        lambda: vocoder.mel(np.zeros((9, 5000), np.float32)),
        "audio has shape (9, 5000): expected (samples,), or (samples, channels) or "
        "(channels, samples) with at most 8 channels",
    )
    refused(
        lambda: vocoder.mel(np.zeros(5000, np.int16)),
        "audio must hold floating-point samples in [-1, 1], got int16 (divide 16-bit PCM by 32768)",
    )
    refused(
        lambda: vocoder.mel("speech.wav"),
        "expected audio of shape (samples,) or (samples, channels) as a tensor or array; got str",
    )
    refused(
        lambda: vocoder.mel(np.zeros((2, 2, 5000), np.float32)),
        "expected audio of shape (samples,) or (samples, channels) as a tensor or array; "
        "got shape (2, 2, 5000)",
    )
    refused(
        lambda: vocoder.mel(np.zeros((100, 2), np.float32)),
        "audio is too short: 100 samples, at least 385 needed for one mel frame",
    )


def test_raw_frames_are_one_parser_with_one_message():
    """The frames of hifigan vocode's standard input and of the service's stream messages."""
    from hifigan.inference.inputs import raw_frames

    mel = log_mel(3).numpy()
    data = np.ascontiguousarray(mel.T, "<f4").tobytes()
    frames = raw_frames(data, 80)
    assert frames.shape == (80, 3) and frames.flags.writeable and np.array_equal(frames, mel)
    assert raw_frames(b"", 80).shape == (80, 0)
    with pytest.raises(InputError) as caught:
        raw_frames(data[:-4], 80, "standard input")
    assert str(caught.value) == (
        "standard input of 956 bytes is not a whole number of frames (a frame is 320 bytes: "
        "80 float32 values)"
    )
    bad = mel.copy()
    bad[0, :2] = [np.nan, np.inf]
    with pytest.raises(InputError) as caught:
        raw_frames(np.ascontiguousarray(bad.T, "<f4").tobytes(), 80)
    assert str(caught.value) == "mel contains 2 NaN or infinite values"


def test_a_mel_of_another_band_count_is_refused_alike_alone_and_in_a_list(vocoder):
    mel = np.zeros((100, 20), np.float32)
    shape = "mel has shape (100, 20), but the model expects 80 bands (shape (80, frames))"
    refused(lambda: vocoder(mel), shape)
    refused(lambda: vocoder([log_mel(4), mel]), f"mel 1 of the list: {shape}")
    refused(lambda: vocoder.prepare_input(mel, label="x.npy"), f"x.npy: {shape}")
