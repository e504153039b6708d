"""Inference: :class:`Vocoder` (mel -> audio) and what it is built on.

``vocoder`` holds the API; ``backends`` the interchangeable ways to run the generator (``fast``:
the fused generator of ``fast``; ``onnx``: ONNX Runtime and the export, in ``onnx``);
``streaming`` the exact windowed synthesis; ``benchmark`` the speed measurements.
"""

from __future__ import annotations

from .backends import BACKENDS, check_backend, make_backend, resolve_backend
from .fast import FastGenerator
from .onnx import ExportError, ExportReport, OnnxBackend, export_onnx
from .streaming import (
    MelStream,
    MelToAudio,
    ReceptiveField,
    receptive_field,
    synthesize_batch,
    synthesize_blocks,
)
from .vocoder import BLOCK_FRAMES, Vocoder, resolve_device

__all__ = [
    "BACKENDS",
    "BLOCK_FRAMES",
    "ExportError",
    "ExportReport",
    "FastGenerator",
    "MelStream",
    "MelToAudio",
    "OnnxBackend",
    "ReceptiveField",
    "Vocoder",
    "check_backend",
    "export_onnx",
    "make_backend",
    "receptive_field",
    "resolve_backend",
    "resolve_device",
    "synthesize_batch",
    "synthesize_blocks",
]
