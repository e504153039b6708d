"""Perceptual metrics from optional packages (``pip install 'hifigan[eval]'``), imported lazily.

Each scorer takes 22.05 kHz ``(samples,)`` float audio, resamples to its own rate, and raises a
one-line :class:`~hifigan.errors.HiFiGANError` with the install command when its package is
missing. Models (DNSMOS sessions, ViSQOL's SVR) are loaded on first use and kept by the object.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import HiFiGANError
from ..io import resample as soxr_resample
from ..pretrained import package_dir
from .deps import EVAL_HINT, require
from .signal import resample_for_metric, to_int16_truncated


def pesq_wb(
    reference: np.ndarray, generated: np.ndarray, sample_rate: int, *, resampler: str = "sinc"
) -> float:
    """Wide-band PESQ (ITU-T P.862.2) on 16 kHz 16-bit audio, range about 1.04 to 4.64.

    Both signals are resampled to 16 kHz (windowed sinc by default) and converted to int16 by
    truncation, as the published vocoder evaluations did.
    """
    require("pesq", "pesq")
    from pesq import pesq
    from pesq.cypesq import PesqError

    ref = to_int16_truncated(resample_for_metric(reference, sample_rate, 16000, resampler))
    gen = to_int16_truncated(resample_for_metric(generated, sample_rate, 16000, resampler))
    try:
        with np.errstate(invalid="ignore", divide="ignore"):  # pesq divides silent input by 0
            return float(pesq(16000, ref, gen, "wb"))
    except PesqError as e:  # e.g. no utterance detected in a silent clip
        raise HiFiGANError(f"PESQ failed: {type(e).__name__}") from None


def estoi(reference: np.ndarray, generated: np.ndarray, sample_rate: int) -> float:
    """Extended STOI (Jensen & Taal 2016) by ``pystoi``, which resamples to 10 kHz; 0 to 1."""
    require("pystoi", "pystoi")
    from pystoi import stoi

    return float(stoi(reference, generated, sample_rate, extended=True))


class DNSMOS:
    """Microsoft's DNSMOS P.835 (non-intrusive): predicted overall, signal and background MOS
    of the generated audio alone, at 16 kHz (soxr). The ONNX model is the one the ``speechmos``
    wheel carries (``dnsmos_models/sig_bak_ovr.onnx``), run with onnxruntime; ``speechmos``
    itself is not imported.

    Clips shorter than 9.01 s are repeated to that length; longer clips are scored on 9.01 s
    windows every second and averaged; raw outputs are mapped by DNSMOS' published
    polynomials.
    """

    rate = 16000
    window_seconds = 9.01
    # P.835 calibration polynomials (highest power first), non-personalised model
    polynomials = (
        ("sig", (-0.08397278, 1.22083953, 0.0052439)),
        ("bak", (-0.13166888, 1.60915514, -0.39604546)),
        ("ovrl", (-0.06766283, 1.11546468, 0.04602535)),
    )

    def __init__(self) -> None:
        self._session = None

    @staticmethod
    def model_path() -> Path:
        """The ONNX model file inside the installed ``speechmos`` package."""
        root = package_dir("speechmos")
        if root is None:
            raise HiFiGANError(f"DNSMOS needs the speechmos package's model: {EVAL_HINT}")
        return root / "dnsmos_models" / "sig_bak_ovr.onnx"

    @property
    def session(self):
        if self._session is None:
            require("onnxruntime", "onnxruntime")
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
            self._session = ort.InferenceSession(
                str(self.model_path()), options, providers=["CPUExecutionProvider"]
            )
        return self._session

    def __call__(self, audio: np.ndarray, sample_rate: int) -> dict[str, float]:
        x = soxr_resample(np.asarray(audio, dtype=np.float32), sample_rate, self.rate)
        x = np.clip(x, -1.0, 1.0)
        need = int(self.window_seconds * self.rate)
        while x.shape[0] < need:
            x = np.concatenate([x, x])
        starts = range(0, int(np.floor(x.shape[0] / self.rate) - self.window_seconds) + 1)
        windows = np.stack([x[s * self.rate : s * self.rate + need] for s in starts])
        raw = self.session.run(None, {"input_1": windows.astype(np.float32)})[0]
        scores = {}
        for i, (name, polynomial) in enumerate(self.polynomials):
            scores[name] = float(np.mean(np.polyval(polynomial, raw[:, i])))
        return scores


class ViSQOLAudio:
    """ViSQOL v3 in audio mode (48 kHz, SVR model; MOS-LQO about 1 to 4.75), from the pure-Python
    ``visqol-python`` package, whose wheel carries the model. Input resampled with soxr."""

    rate = 48000

    def __init__(self) -> None:
        self._api = None

    @property
    def api(self):
        if self._api is None:
            require("visqol", "visqol-python")
            from visqol import VisqolApi

            api = VisqolApi()
            api.create(mode="audio")
            self._api = api
        return self._api

    def __call__(self, reference: np.ndarray, generated: np.ndarray, sample_rate: int) -> float:
        ref = soxr_resample(np.asarray(reference, dtype=np.float32), sample_rate, self.rate)
        gen = soxr_resample(np.asarray(generated, dtype=np.float32), sample_rate, self.rate)
        result = self.api.measure_from_arrays(
            ref.astype(np.float64), gen.astype(np.float64), self.rate
        )
        return float(result.moslqo)
