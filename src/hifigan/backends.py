"""Inference backends: interchangeable ways to run one generator.

Every backend is a callable ``(B, n_mels, frames) float32 -> (B, frames * hop) float32`` on the
vocoder's device; :class:`~hifigan.inference.Vocoder` builds streaming, batching and long-input
synthesis on top of it, the same way for all of them.

========== ============================================================== ==================
backend    what runs                                                      precisions
========== ============================================================== ==================
eager      the reference :class:`~hifigan.generator.Generator`            fp32
fast       :class:`~hifigan.fast.FastGenerator` (fused, channels-last)    fp32, bf16 (fp16 on CUDA)
compiled   ``fast`` under ``torch.compile`` (first call: 10-60 s)         fp32, bf16 (fp16 on CUDA)
onnx       ONNX Runtime on the exported graph (CPU)                        fp32
========== ============================================================== ==================
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from .errors import HiFiGANError
from .fast import FastGenerator, default_reduced_stages
from .generator import Generator

BACKENDS = ("eager", "fast", "compiled", "onnx")
PRECISIONS = ("fp32", "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}

Backend = Callable[[Tensor], Tensor]


def check_backend(backend: str, precision: str, device: torch.device) -> None:
    """Raise :class:`HiFiGANError` for an unknown or unsupported combination."""
    if backend not in BACKENDS:
        raise HiFiGANError(f"unknown backend {backend!r} (available: {', '.join(BACKENDS)})")
    if precision not in PRECISIONS:
        raise HiFiGANError(f"unknown precision {precision!r} (available: {', '.join(PRECISIONS)})")
    if precision != "fp32" and backend in ("eager", "onnx"):
        raise HiFiGANError(
            f"backend {backend!r} runs in fp32 only; use backend 'fast' for {precision}"
        )
    if precision == "fp16" and device.type == "cpu":
        raise HiFiGANError("fp16 is offered on CUDA only; use bf16 on CPU")
    if backend == "onnx" and device.type != "cpu":
        raise HiFiGANError("backend 'onnx' runs on the CPU only (ONNX Runtime CPU provider)")


class EagerBackend:
    """The reference generator, as is."""

    def __init__(self, generator: Generator) -> None:
        self.generator = generator

    def __call__(self, mel: Tensor) -> Tensor:
        return self.generator(mel).squeeze(1)


class FastBackend:
    """:class:`FastGenerator`, optionally under ``torch.compile``.

    Args:
        generator: the (folded) reference generator, on its device.
        precision: ``fp32``, ``bf16`` or ``fp16``; reduced precision applies to the stages chosen
            by :func:`~hifigan.fast.default_reduced_stages` unless ``reduced_stages`` is given.
        compile: wrap the module in ``torch.compile`` (inductor, dynamic frame axis, frozen
            weights). The first call compiles (10-60 s on a CPU, cached across processes by
            torch in its temporary folder); later calls with new lengths rarely recompile.
    """

    def __init__(
        self,
        generator: Generator,
        *,
        precision: str = "fp32",
        compile: bool = False,
        reduced_stages: int | None = None,
    ) -> None:
        device = next(generator.parameters()).device
        if precision == "fp32":
            stages = 0
        elif reduced_stages is not None:
            stages = reduced_stages
        else:
            stages = default_reduced_stages(generator)
        self.module = FastGenerator(
            generator,
            reduced_stages=stages,
            reduced_dtype=_DTYPES.get(precision, torch.bfloat16),
            fuse=None if not compile else False,
        ).to(device)
        self._run: Callable[[Tensor], Tensor] = self.module
        if compile:
            options = {"freezing": True} if device.type == "cpu" else None
            self._run = torch.compile(self.module, dynamic=True, options=options)

    def __call__(self, mel: Tensor) -> Tensor:
        return self._run(mel).squeeze(1)


class OnnxBackend:
    """ONNX Runtime (CPU) on a serialized model whose input is ``mel`` and output ``audio``.

    Args:
        model: the ONNX model as bytes or a file path.
        threads: intra-op threads (default: torch's current thread count).
    """

    def __init__(self, model: bytes | str, *, threads: int | None = None) -> None:
        ort = import_onnxruntime()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        # no busy-waiting after a run: spinning threads would steal the cores from whatever
        # runs next (torch, another session), which a vocoder inside a service always has
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, mel: Tensor) -> Tensor:
        feed = {self.input_name: np.ascontiguousarray(mel.detach().cpu().numpy(), np.float32)}
        audio = self.session.run(None, feed)[0]
        return torch.from_numpy(audio).squeeze(1)


def import_onnxruntime():
    """``onnxruntime``, or a one-line error saying how to install it."""
    try:
        import onnxruntime
    except ImportError:
        raise HiFiGANError(
            "ONNX support needs onnx, onnxscript and onnxruntime: pip install 'hifigan[onnx]'"
        ) from None
    return onnxruntime


def make_backend(
    name: str, generator: Generator, *, precision: str = "fp32", device: torch.device
) -> Backend:
    """Build backend ``name`` for a folded generator that already sits on ``device``."""
    check_backend(name, precision, device)
    if name == "eager":
        return EagerBackend(generator)
    if name in ("fast", "compiled"):
        return FastBackend(generator, precision=precision, compile=name == "compiled")
    from .export import onnx_bytes

    return OnnxBackend(onnx_bytes(generator))


__all__ = [
    "BACKENDS",
    "PRECISIONS",
    "Backend",
    "EagerBackend",
    "FastBackend",
    "OnnxBackend",
    "check_backend",
    "import_onnxruntime",
    "make_backend",
]
