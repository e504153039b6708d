"""Property-based tests: whatever arrays or bytes come in, the readers either return what they
document or raise the package's own error, never anything else."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from hifigan.errors import HiFiGANError
from hifigan.io import check_mel, load_audio, load_mel

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

dtypes = st.sampled_from(
    [np.float16, np.float32, np.float64, np.int16, np.int64, np.uint8, np.bool_, np.complex64]
)
values = st.floats(allow_nan=True, allow_infinity=True, width=64)


def _cast(value: float, dtype: type) -> float:
    with np.errstate(over="ignore"):  # huge values become inf in narrow dtypes, on purpose
        return np.asarray(value).astype(dtype).item()


arrays = dtypes.flatmap(
    lambda dt: hnp.arrays(
        dt,
        hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=12),
        elements=values.map(lambda v: _cast(v, dt)) if np.issubdtype(dt, np.floating) else None,
    )
)


def _write(data: bytes, suffix: str) -> Path:
    folder = Path(tempfile.mkdtemp())
    path = folder / f"input{suffix}"
    path.write_bytes(data)
    return path


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def _pt(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    torch.save(torch.from_numpy(np.ascontiguousarray(array)), buf)
    return buf.getvalue()


def _mel_contract(path: Path) -> None:
    try:
        mel = load_mel(path)
    except HiFiGANError as e:
        assert str(e).startswith(f"{path}: ") and "\n" not in str(e)
        return
    assert mel.dtype == np.float32 and mel.ndim == 2
    try:
        check_mel(mel, mel.shape[0], path)
    except HiFiGANError as e:
        assert "\n" not in str(e)
        return
    assert np.isfinite(mel).all() and mel.shape[1] > 0


@SETTINGS
@given(array=arrays, as_pt=st.booleans())
def test_load_mel_on_any_array(array, as_pt):
    as_pt = as_pt and array.dtype != np.complex64  # torch.save of complex is not our concern
    data = _pt(array) if as_pt else _npy(array)
    _mel_contract(_write(data, ".pt" if as_pt else ".npy"))


@SETTINGS
@given(data=st.binary(max_size=2048), suffix=st.sampled_from([".npy", ".pt", ".NPY", ".Pt"]))
def test_load_mel_on_any_bytes(data, suffix):
    _mel_contract(_write(data, suffix))


@SETTINGS
@given(
    data=st.binary(max_size=2048),
    suffix=st.sampled_from([".wav", ".flac", ".ogg", ".mp3", ".WAV", ".aiff"]),
)
def test_load_audio_on_any_bytes(data, suffix):
    path = _write(data, suffix)
    try:
        audio, rate = load_audio(path, 22050)
    except HiFiGANError as e:
        assert str(e).startswith(f"{path}: ") and "\n" not in str(e)
        return
    assert audio.dtype == np.float32 and audio.ndim == 1 and audio.size > 0
    assert np.isfinite(audio).all() and rate == 22050


@SETTINGS
@given(
    samples=hnp.arrays(
        np.float32,
        st.tuples(st.integers(1, 400), st.integers(1, 3)),
        elements=st.floats(-4, 4, width=32),
    ),
    rate=st.sampled_from([8000, 16000, 22050, 44100]),
)
def test_load_audio_on_any_wav(samples, rate):
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format="WAV", subtype="FLOAT")
    path = _write(buf.getvalue(), ".wav")
    try:
        audio, out_rate = load_audio(path, 22050)
    except HiFiGANError as e:
        assert "too short" in str(e)
        return
    assert audio.ndim == 1 and np.isfinite(audio).all() and out_rate == 22050
