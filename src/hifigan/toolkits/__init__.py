"""Other toolkits' HiFi-GAN models: ParallelWaveGAN/ESPnet, Coqui TTS, NeMo, SpeechBrain and
NVIDIA DeepLearningExamples (see ``docs/toolkits.md``).

:func:`read_model_file` finds which toolkit wrote a file from its content and returns its
generator weights and a config that describes the toolkit's variant and mel convention;
:mod:`hifigan.toolkits.writers` writes the ParallelWaveGAN and Coqui formats.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from ..errors import CheckpointError
from .readers import (
    TOOLKITS,
    ToolkitModel,
    is_tar,
    load_lightning_file,
    read_nemo_archive,
    read_toolkit_checkpoint,
)

EDGE_PADDINGS = ("authors", "toolkit")


def read_model_file(path: Path, checkpoint: dict | None) -> ToolkitModel | None:
    """The toolkit model in ``path`` (``checkpoint``: its content when torch could load it
    as plain data, else None), or None when the file is not one of theirs."""
    if checkpoint is None:
        if is_tar(path):
            return read_nemo_archive(path)
        obj = load_lightning_file(path)
        model = read_toolkit_checkpoint(obj, path)
        if model is None:
            raise CheckpointError(
                "refused: the checkpoint holds Python objects besides tensors, and it is not "
                "a Lightning checkpoint of a NeMo HiFi-GAN",
                path,
            )
        return model
    return read_toolkit_checkpoint(checkpoint, path)


def edge_frames(inference_padding: int, edge_padding: str) -> int:
    """Frames to repeat at each end of a mel: the toolkit's inference padding with
    ``edge_padding="toolkit"``, none with ``"authors"`` (the default)."""
    if edge_padding not in EDGE_PADDINGS:
        raise CheckpointError(
            f"unknown edge padding {edge_padding!r} (use {' or '.join(EDGE_PADDINGS)})"
        )
    return inference_padding if edge_padding == "toolkit" else 0


def pad_edges(mel: Tensor, frames: int) -> Tensor:
    """``(..., n_mels, T)`` -> ``(..., n_mels, T + 2 * frames)``, the first and last frames
    repeated ``frames`` times (Coqui's and SpeechBrain's ``inference()``)."""
    if frames <= 0:
        return mel
    first = mel[..., :1].expand(*mel.shape[:-1], frames)
    last = mel[..., -1:].expand(*mel.shape[:-1], frames)
    return torch.cat([first, mel, last], dim=-1)


__all__ = [
    "EDGE_PADDINGS",
    "TOOLKITS",
    "ToolkitModel",
    "edge_frames",
    "is_tar",
    "pad_edges",
    "read_model_file",
]
