"""Inference backends: interchangeable ways to run one generator.

Every backend is a :data:`~hifigan.inference.streaming.MelToAudio` callable, ``(B, n_mels,
frames) float32 -> (B, frames * hop_length) float32`` on the vocoder's device, so streaming,
batching and long inputs work the same way for all of them:

========== ============================================================ ========================
backend    what runs                                                    precisions
========== ============================================================ ========================
eager      the reference :class:`~hifigan.generator.Generator`          fp32
fast       :class:`~hifigan.inference.fast.FastGenerator`               fp32, bf16 (fp16: CUDA)
compiled   ``fast`` under ``torch.compile`` (first call: 10-60 s)       fp32, bf16 (fp16: CUDA)
onnx       ONNX Runtime on the exported graph (CPU)                     fp32
========== ============================================================ ========================

``auto``, the default everywhere, stands for the fastest backend that matches ``eager`` within
1e-4 on the device at hand (:func:`resolve_backend`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ..errors import HiFiGANError
from ..generator import Generator
from ..precision import PRECISIONS, bf16_supported
from .fast import FastGenerator, default_reduced_stages
from .onnx import OnnxBackend, onnx_bytes
from .streaming import MelToAudio

BACKENDS = ("eager", "fast", "compiled", "onnx")
AUTO = "auto"
#: what a ``backend`` argument accepts: ``auto`` (the default) or a name of :data:`BACKENDS`
BACKEND_CHOICES = (AUTO, *BACKENDS)


def resolve_backend(name: str, device: str | torch.device, precision: str = "fp32") -> str:
    """The backend that ``name`` runs on ``device``: ``name`` itself, or for ``auto`` the
    fastest backend that is exact (within 1e-4 of ``eager``) there.

    * CPU: ``fast`` (V1, V2 and V3 1.24-1.98x the speed of ``eager`` in one process,
      docs/inference.md).
    * Other devices, fp32: ``eager``. ``fast`` runs there without its CPU-specific parts
      (oneDNN fusion, tiling, the narrow-stage kernel) and has no measured gain on a GPU yet,
      so the reference path stays the default until one is measured.
    * Reduced precision (bf16, fp16): ``fast``, the one backend that offers it without
      ``torch.compile``'s start-up cost.

    ``compiled`` is never chosen (10-60 s per new length range) and neither is ``onnx`` (slower
    than ``fast`` on CPUs). Unknown names are returned as given, for :func:`check_backend` to
    refuse.
    """
    if name != AUTO:
        return name
    if precision != "fp32":
        return "fast"
    return "fast" if torch.device(device).type == "cpu" else "eager"


def check_backend(backend: str, precision: str, device: torch.device) -> None:
    """Raise :class:`HiFiGANError` for an unknown or unsupported combination (``auto`` is
    checked as the backend it resolves to)."""
    backend = resolve_backend(backend, device, precision)
    if backend not in BACKENDS:
        raise HiFiGANError(
            f"unknown backend {backend!r} (available: {', '.join(BACKENDS)}, or {AUTO} for "
            "the fastest exact one)"
        )
    if precision not in PRECISIONS:
        raise HiFiGANError(f"unknown precision {precision!r} (available: {', '.join(PRECISIONS)})")
    if precision != "fp32" and backend in ("eager", "onnx"):
        raise HiFiGANError(
            f"backend {backend!r} runs in fp32 only; use backend 'fast' for {precision}"
        )
    if precision == "fp16" and device.type == "cpu":
        raise HiFiGANError("fp16 is offered on CUDA only; use bf16 on CPU")
    if precision == "bf16" and not bf16_supported(device.type):
        raise HiFiGANError(
            f"bf16 has no kernels on this {device.type} (on a CPU it needs AVX-512 BW/VL/DQ, "
            "AVX-NE-CONVERT or AMX); use fp32"
        )
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
        precision: ``fp32``, ``bf16`` or ``fp16``; reduced precision applies to the stages
            chosen by :func:`~hifigan.inference.fast.default_reduced_stages` unless
            ``reduced_stages`` is given.
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
            reduced_dtype=PRECISIONS.get(precision, torch.bfloat16),
            fuse=None if not compile else False,
            narrow=None if not compile and device.type == "cpu" else False,
        ).to(device)
        self._run: Callable[[Tensor], Tensor] = self.module
        if compile:
            options = {"freezing": True} if device.type == "cpu" else None
            self._run = torch.compile(self.module, dynamic=True, options=options)

    def __call__(self, mel: Tensor) -> Tensor:
        return self._run(mel).squeeze(1)


def make_backend(
    name: str, generator: Generator, *, precision: str = "fp32", device: torch.device
) -> MelToAudio:
    """Build backend ``name`` (``auto``: see :func:`resolve_backend`) for a folded generator
    that already sits on ``device``."""
    name = resolve_backend(name, device, precision)
    check_backend(name, precision, device)
    if name == "eager":
        return EagerBackend(generator)
    if name in ("fast", "compiled"):
        return FastBackend(generator, precision=precision, compile=name == "compiled")
    return OnnxBackend(onnx_bytes(generator))


__all__ = [
    "AUTO",
    "BACKENDS",
    "BACKEND_CHOICES",
    "EagerBackend",
    "FastBackend",
    "check_backend",
    "make_backend",
    "resolve_backend",
]
