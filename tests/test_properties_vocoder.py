"""Property-based tests of vocoding: whatever arrays, lists or files come in, the Vocoder API
and ``hifigan vocode`` either give finite audio in [-1, 1] or the package's own one-line error,
never anything else (no other exception, no NaN, no stray warning)."""

from __future__ import annotations

import io
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from hifigan import Vocoder
from hifigan.errors import HiFiGANError
from hifigan.io import HiFiGANWarning

from conftest import LJ_V2, need

SETTINGS = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

DTYPES = [np.float16, np.float32, np.float64, np.int16, np.int64, np.uint8, np.bool_]
# log-mel-like values, values of other scales, huge and tiny ones, and non-finite ones
special = st.sampled_from([np.nan, np.inf, -np.inf, 1e38, -1e38, 1e30, 1e-38, -1e-45, 0.0])
values = st.one_of(
    st.floats(-12.0, 3.0), st.floats(-1e3, 1e3), special, st.floats(allow_nan=True, width=64)
)
samples = st.one_of(st.floats(-1.0, 1.0), special, st.floats(allow_nan=True, width=64))

mel_shapes = st.one_of(
    hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=6),
    st.tuples(st.just(80), st.integers(0, 6)),
    st.tuples(st.integers(1, 2), st.just(80), st.integers(0, 6)),
)
audio_shapes = st.one_of(
    hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
    st.tuples(st.integers(0, 1200)),
    st.tuples(st.integers(300, 1200), st.integers(1, 10)),
    st.tuples(st.integers(1, 10), st.integers(300, 1200)),
)


def _cast(value: float, dtype: type):
    with np.errstate(over="ignore", invalid="ignore"):  # narrowing overflows, on purpose
        return np.asarray(value).astype(dtype).item()


def arrays(shapes, elements):
    """Arrays of any of :data:`DTYPES`; float ones hold ``elements``, some are read-only."""

    def build(dtype):
        floating = np.issubdtype(dtype, np.floating)
        fill = elements.map(lambda v: _cast(v, dtype)) if floating else None
        return hnp.arrays(dtype, shapes, elements=fill)

    def freeze(pair):
        array, writeable = pair
        array.flags.writeable = writeable
        return array

    made = st.sampled_from(DTYPES).flatmap(build)
    return st.tuples(made, st.booleans()).map(freeze)


def as_given(array: np.ndarray, tensor: bool):
    """The array itself, or as a torch tensor (same values)."""
    if not tensor:
        return array
    return torch.from_numpy(np.array(array))  # a writable copy


@st.composite
def near_mels(draw) -> np.ndarray:
    """A log-mel-like ``(80, frames)`` array, scaled (other conventions, or so large that the
    generator overflows), with a few cells set to one drawn value: the paths past the shape
    and dtype checks."""
    frames = draw(st.integers(1, 6))
    seed = draw(st.integers(0, 2**16))
    scale = draw(st.sampled_from([1.0, -1.0, 20.0, 1e3, 1e30, 3e36]))
    mel = np.random.default_rng(seed).uniform(-11.5, 2.0, (80, frames)) * scale
    cells = draw(st.lists(st.integers(0, 80 * frames - 1), min_size=1, max_size=4))
    mel.reshape(-1)[cells] = draw(values)
    with np.errstate(over="ignore"):  # float16 cannot hold the large ones: inf
        return mel.astype(draw(st.sampled_from([np.float16, np.float32, np.float64])))


mel_arrays = st.one_of(arrays(mel_shapes, values), near_mels())
mel_inputs = st.tuples(mel_arrays, st.booleans()).map(lambda p: as_given(*p))
mel_calls = st.one_of(
    mel_inputs,
    st.lists(mel_inputs, max_size=3),
    st.lists(st.lists(st.floats(-12, 3), max_size=3), max_size=2),  # a list of lists
    st.sampled_from(["text", None, 3.5, b"bytes", {"mel": 1}]),
)
audio_inputs = st.tuples(arrays(audio_shapes, samples), st.booleans()).map(lambda p: as_given(*p))


@pytest.fixture(scope="module")
def vocoder():
    return Vocoder.from_checkpoint(need(LJ_V2), verified=True)


def outcome(call):
    """``call()``'s result, or None when it raised a one-line HiFiGANError; any other
    exception or warning (but the package's own) fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", HiFiGANWarning)
        try:
            return call()
        except HiFiGANError as e:
            assert "\n" not in str(e) and str(e)
            return None


def finite_audio(audio: torch.Tensor) -> None:
    assert audio.dtype == torch.float32
    assert torch.isfinite(audio).all()
    assert audio.numel() == 0 or audio.abs().max() <= 1.0


@SETTINGS
@given(mel=mel_calls)
def test_vocoding_gives_finite_audio_or_an_input_error(vocoder, mel):
    result = outcome(lambda: vocoder(mel))
    if result is None:
        return
    for audio in result if isinstance(result, list) else [result]:
        finite_audio(audio)
        assert audio.shape[-1] % 256 == 0 and audio.shape[-1] > 0


@SETTINGS
@given(chunks=st.lists(mel_inputs, max_size=3))
def test_streaming_gives_finite_audio_or_an_input_error(vocoder, chunks):
    pieces = outcome(lambda: list(vocoder.stream(chunks)))
    for piece in pieces or []:
        finite_audio(piece)


@SETTINGS
@given(audio=audio_inputs)
def test_mel_of_audio_is_finite_or_an_input_error(vocoder, audio):
    mel = outcome(lambda: vocoder.mel(audio))
    if mel is not None:
        assert mel.dtype == torch.float32 and mel.dim() == 2 and mel.shape[0] == 80
        assert torch.isfinite(mel).all() and mel.shape[1] >= 1


def _saved(data: np.ndarray, kind: str) -> bytes:
    buf = io.BytesIO()
    if kind == ".npy":
        np.save(buf, data)
    elif kind == ".pt":
        torch.save(torch.from_numpy(np.array(data)), buf)
    else:  # float wavs can hold any value, NaN included; integer ones are clipped PCM
        float_data = np.asarray(data, dtype=np.float64).reshape(data.shape[0], -1)
        sf.write(buf, float_data, 22050, format="WAV", subtype="FLOAT")
    return buf.getvalue()


wav_arrays = hnp.arrays(
    np.float32,
    st.tuples(st.integers(1, 1200), st.integers(1, 3)),
    elements=samples.map(lambda v: _cast(v, np.float32)),
)
files = st.one_of(
    st.tuples(mel_arrays, st.sampled_from([".npy", ".pt"])).map(lambda p: (_saved(*p), p[1])),
    wav_arrays.map(lambda a: (_saved(a, ".wav"), ".wav")),
    st.tuples(st.binary(max_size=200), st.sampled_from([".npy", ".pt", ".wav", ".NPY"])),
)


@settings(SETTINGS, max_examples=25)
@given(file=files)
def test_vocode_command_writes_a_wav_or_reports_one_line(run_cli, file):
    data, suffix = file
    folder = Path(tempfile.mkdtemp())
    path = folder / f"input{suffix}"
    path.write_bytes(data)
    code, out, err = outcome(
        lambda: run_cli("vocode", path, "-o", folder / "out", "--checkpoint", need(LJ_V2))
    )
    assert out == "" and "Traceback" not in err
    wav = folder / "out" / "input.wav"
    if code == 0:
        info = sf.info(wav)
        assert (info.samplerate, info.channels, info.subtype) == (22050, 1, "PCM_16")
        assert info.frames > 0 and info.frames % 256 == 0
    else:
        lines = err.splitlines()
        assert code == 1 and lines[-3] == "error: 1 of 1 files failed:"
        assert lines[-2].startswith(f"  {path}: ") and lines[-1].startswith("wrote 0 files")
        assert not wav.exists() and not list(folder.glob("out/.*tmp"))
