"""ONNX: export with a parity check, and the ONNX Runtime inference backend.

The exported graph maps ``mel`` ``(batch, n_mels, frames)`` float32 (batch and frames dynamic)
to ``audio`` ``(batch, 1, frames * hop_length)`` and carries the config and receptive field as
``hifigan.*`` metadata. :func:`export_onnx` writes the file atomically, and only after ONNX
Runtime, running the written file, reproduces the eager generator on test mels.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..config import HiFiGANConfig
from ..errors import HiFiGANError
from ..extras import require
from ..generator import Generator
from ..io import atomic_path
from ..outputs import OutputPlan
from .streaming import receptive_field

# the opset torch's exporter writes natively; others are converted from it afterwards
OPSET = 18
CHECK_FRAMES = (1, 37, 200)


class ExportError(HiFiGANError):
    """The export failed or its output does not match the eager generator."""


def import_onnxruntime():
    """``onnxruntime``, or a one-line error saying how to install it."""
    require("onnx", "onnxruntime", purpose="the onnx backend")
    import onnxruntime

    return onnxruntime


class OnnxBackend:
    """ONNX Runtime (CPU) on a serialized model whose input is ``mel`` and output ``audio``:
    ``(B, n_mels, frames)`` -> ``(B, frames * hop_length)`` float32 on the CPU.

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


@dataclass(frozen=True)
class ExportReport:
    """What :func:`export_onnx` checked.

    Attributes:
        path: the written file.
        max_abs_diff: largest ``|onnx - eager|`` sample over the test mels.
        frames_checked: the test mel lengths (batch of 2 each).
        size_bytes: file size.
        opset: the ONNX opset the written file declares (read back from it).
    """

    path: Path
    max_abs_diff: float
    frames_checked: tuple[int, ...]
    size_bytes: int
    opset: int


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporter's deprecation chatter and its 'torchvision not installed' log."""
    # onnxscript logs a failed opset conversion with its traceback; the export reports it
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", UserWarning)
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _inference_copy(generator: Generator) -> Generator:
    """A float32 CPU copy in eval mode. Weight norm is folded in ``generator`` itself first:
    removing it from a deep copy would also break the original (the copies share their
    parametrized classes)."""
    if generator.has_weight_norm:
        generator.remove_weight_norm()
    return copy.deepcopy(generator).float().cpu().eval()


def max_opset() -> int:
    """The newest ONNX opset the installed ``onnx`` package knows."""
    import onnx

    return onnx.defs.onnx_opset_version()


def model_opset(model: bytes | str | Path) -> int | None:
    """The default-domain (``ai.onnx``) opset a serialized model or ONNX file declares."""
    import onnx

    if isinstance(model, bytes):
        proto = onnx.load_from_string(model)
    else:
        proto = onnx.load(str(model), load_external_data=False)
    versions = [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")]
    return versions[0] if versions else None


def _supported() -> str:
    return (
        f"supported opsets: {OPSET} to {max_opset()} (older ones only where the conversion "
        f"from {OPSET} succeeds)"
    )


def onnx_bytes(generator: Generator, *, opset: int = OPSET) -> bytes:
    """Export ``generator`` (float32, CPU; weight norm is folded in place) to a serialized ONNX
    model with dynamic batch and frame axes, in ``opset`` exactly. Needs ``onnx`` and
    ``onnxscript``.

    Raises:
        ExportError: the exporter failed, or cannot produce ``opset`` (it writes
            :data:`OPSET` and converts to others; not every conversion succeeds).
    """
    require("onnx", "onnx", "onnxscript", purpose="ONNX export", error=ExportError)
    if not 1 <= opset <= max_opset():
        raise ExportError(f"cannot export opset {opset}: {_supported()}")
    g = _inference_copy(generator)
    example = torch.zeros(1, g.n_mels, 16)
    batch = torch.export.Dim("batch", min=1, max=4096)
    frames = torch.export.Dim("frames", min=1, max=10_000_000)
    try:
        with _quiet_exporter(), torch.no_grad():
            program = torch.onnx.export(
                g,
                (example,),
                dynamo=True,
                input_names=["mel"],
                output_names=["audio"],
                dynamic_shapes={"mel": {0: batch, 2: frames}},
                opset_version=opset,
                verbose=False,
            )
    except Exception as e:  # the exporter raises many types
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ExportError(f"torch.onnx.export failed: {first}") from None
    buffer = io.BytesIO()
    program.save(buffer)
    model = buffer.getvalue()
    written = model_opset(model)
    if written != opset:  # the exporter keeps its own opset when the conversion fails
        raise ExportError(
            f"cannot export opset {opset}: the exporter could not convert its opset-{written} "
            f"graph to it; {_supported()}"
        )
    return model


def _with_metadata(model_bytes: bytes, config: HiFiGANConfig) -> bytes:
    """Add the config, sample rate, hop and receptive field as ONNX metadata."""
    import onnx

    from .. import __version__

    model = onnx.load_from_string(model_bytes)
    field = receptive_field(config.generator)
    entries = {
        "hifigan.version": __version__,
        "hifigan.config": json.dumps(config.to_dict()),
        "hifigan.sample_rate": str(config.mel.sample_rate),
        "hifigan.hop_length": str(config.mel.hop_length),
        "hifigan.n_mels": str(config.mel.n_mels),
        "hifigan.context_left_frames": str(field.left),
        "hifigan.context_right_frames": str(field.right),
    }
    del model.metadata_props[:]
    for key, value in entries.items():
        prop = model.metadata_props.add()
        prop.key, prop.value = key, value
    model.doc_string = (
        "HiFi-GAN generator: mel (batch, n_mels, frames) -> audio (batch, 1, frames * hop_length)"
    )
    return model.SerializeToString()


def check_onnx_file(
    path: str | Path,
    generator: Generator,
    *,
    frames: tuple[int, ...] = CHECK_FRAMES,
    threads: int | None = None,
) -> float:
    """Largest ``|onnx - eager|`` over deterministic log-mel-like test inputs (batch of 2 for
    each length in ``frames``), running ``path`` in ONNX Runtime."""
    g = _inference_copy(generator)
    session = OnnxBackend(str(path), threads=threads)
    rng = torch.Generator().manual_seed(0)
    worst = 0.0
    with torch.no_grad():
        for n in frames:
            mel = torch.randn(2, g.n_mels, n, generator=rng) * 2.0 - 5.0
            diff = (session(mel) - g(mel).squeeze(1)).abs().max().item()
            worst = max(worst, diff)
    return worst


def export_onnx(
    generator: Generator,
    config: HiFiGANConfig,
    path: str | Path,
    *,
    opset: int = OPSET,
    tolerance: float = 1e-4,
    outputs: OutputPlan | None = None,
) -> ExportReport:
    """Export to ``path`` (atomically) after checking ONNX Runtime against eager. Weight norm
    is folded in ``generator`` in place, as :class:`~hifigan.inference.Vocoder` does.

    ``path`` is claimed in ``outputs`` (by default a plan that refuses to replace an existing
    file; pass ``OutputPlan(overwrite=True)`` to allow it) before anything runs.

    Raises:
        ExportError: the export failed, or ONNX Runtime's output differs from eager by more
            than ``tolerance`` (the file is then not written).
    """
    path = Path(path)
    (outputs or OutputPlan()).claim(path)
    model = _with_metadata(onnx_bytes(generator, opset=opset), config)
    with atomic_path(path) as tmp:
        tmp.write_bytes(model)
        try:
            worst = check_onnx_file(tmp, generator)
        except HiFiGANError:
            raise
        except Exception as e:
            raise ExportError(f"ONNX Runtime cannot run the exported model ({e})", path) from None
        if not worst <= tolerance:
            raise ExportError(
                f"ONNX Runtime output differs from eager by {worst:.3g} (> {tolerance:g}); "
                "file not written",
                path,
            )
        size = tmp.stat().st_size
        written = model_opset(tmp)
        if written != opset:
            raise ExportError(f"the written file declares opset {written}, not {opset}", path)
    return ExportReport(
        path=path,
        max_abs_diff=worst,
        frames_checked=tuple(CHECK_FRAMES),
        size_bytes=size,
        opset=written,
    )


__all__ = [
    "CHECK_FRAMES",
    "OPSET",
    "ExportError",
    "ExportReport",
    "OnnxBackend",
    "check_onnx_file",
    "export_onnx",
    "import_onnxruntime",
    "max_opset",
    "model_opset",
    "onnx_bytes",
]
