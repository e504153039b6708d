"""Other toolkits' HiFi-GAN models: ParallelWaveGAN/ESPnet, Coqui TTS, NeMo, SpeechBrain and
NVIDIA DeepLearningExamples (see ``docs/toolkits.md``).

:func:`read_model_file` finds which toolkit wrote a file from its content and returns its
generator weights and a config that describes the toolkit's variant and mel convention;
:mod:`hifigan.toolkits.writers` writes the ParallelWaveGAN and Coqui formats.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from ..config import MelConfig
from ..conventions import Convention, MelStats, convention_from_mel_config, load_stats
from ..errors import CheckpointError
from ..mel import MelSpectrogram
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


class ModelMel(nn.Module):
    """The mel a model reads, from audio: its convention's values, normalised with the
    statistics file the convention names (a ParallelWaveGAN model's ``stats.h5``).

    ``(..., samples)`` -> ``(..., n_mels, frames)``, like :class:`~hifigan.mel.MelSpectrogram`.
    """

    def __init__(self, convention: Convention) -> None:
        super().__init__()
        self.values = convention.mel_spectrogram()
        stats = convention.normalization.stats
        self.stats = None if stats is None or convention.normalization.kind == "none" else stats
        self._loaded: MelStats | None = None

    @property
    def min_samples(self) -> int:
        return self.values.min_samples

    def forward(self, audio: Tensor) -> Tensor:
        mel = self.values(audio)
        if self.stats is None:
            return mel
        if self._loaded is None:
            self._loaded = load_stats(self.stats)
        return self._loaded.normalize(mel)


def model_mel(mel_config: MelConfig) -> nn.Module:
    """The audio -> mel module of a model's config: the authors' mel, or the convention of the
    toolkit it was read from (:class:`ModelMel`)."""
    if mel_config.convention is None:
        return MelSpectrogram.from_config(mel_config)
    return ModelMel(convention_from_mel_config(mel_config))


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
    "ModelMel",
    "ToolkitModel",
    "edge_frames",
    "is_tar",
    "model_mel",
    "pad_edges",
    "read_model_file",
]
