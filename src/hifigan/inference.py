"""Inference API: :class:`Vocoder` turns log-mel spectrograms (or audio, by copy synthesis)
into waveforms with a trained generator.

>>> from hifigan import Vocoder
>>> vocoder = Vocoder.from_checkpoint("generator_v2")        # config.json beside it
>>> audio = vocoder(mel)                                     # (80, T) -> (T * 256,)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .checkpoint import load_generator
from .config import HiFiGANConfig
from .errors import HiFiGANError, InputError
from .generator import Generator
from .mel import MelSpectrogram


def resolve_device(device: str | torch.device) -> torch.device:
    """A ``torch.device``, with a clear error when CUDA is asked for but absent."""
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise HiFiGANError(f"unknown device {device!r} (use cpu or cuda)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise HiFiGANError(
            f"device {device!r} requested, but CUDA is not available to torch {torch.__version__}"
        )
    return dev


class Vocoder:
    """A generator ready for inference: weight norm folded, eval mode, under ``inference_mode``.

    Args:
        generator: a :class:`Generator` (its weight norm is removed in place).
        config: the model's config (mel parameters and sample rate).
        device: where to run.
    """

    def __init__(
        self, generator: Generator, config: HiFiGANConfig, device: str | torch.device = "cpu"
    ) -> None:
        self.config = config
        self.device = resolve_device(device)
        if generator.has_weight_norm:
            generator.remove_weight_norm()
        self.generator = generator.eval().to(self.device)
        self.mel_transform = MelSpectrogram.from_config(config.mel).to(self.device)

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        config: HiFiGANConfig | str | Path | None = None,
        device: str | torch.device = "cpu",
    ) -> Vocoder:
        """Load any supported checkpoint (ours or the authors').

        ``config`` (an object, preset name or JSON path) is needed only when the checkpoint
        carries none and has no ``config.json`` beside it.
        """
        dev = resolve_device(device)
        generator, cfg = load_generator(path, config)
        return cls(generator, cfg, dev)

    # ------------------------------------------------------------------ properties
    @property
    def sample_rate(self) -> int:
        return self.config.mel.sample_rate

    @property
    def hop_length(self) -> int:
        return self.config.mel.hop_length

    @property
    def n_mels(self) -> int:
        return self.config.mel.n_mels

    # ------------------------------------------------------------------ synthesis
    def _as_tensor(self, x: Tensor | np.ndarray) -> Tensor:
        if isinstance(x, np.ndarray):
            x = torch.from_numpy(np.ascontiguousarray(x))
        return x.to(self.device, torch.float32)

    @torch.inference_mode()
    def __call__(self, mel: Tensor | np.ndarray) -> Tensor:
        """Synthesize audio from a log-mel spectrogram.

        Args:
            mel: ``(n_mels, frames)`` or ``(batch, n_mels, frames)``.

        Returns:
            ``(frames * hop,)`` or ``(batch, frames * hop)`` float32 in [-1, 1], on the
            vocoder's device.
        """
        x = self._as_tensor(mel)
        squeeze = x.dim() == 2
        if squeeze:
            x = x.unsqueeze(0)
        if x.dim() != 3 or x.shape[1] != self.n_mels:
            raise InputError(
                f"mel must have shape ({self.n_mels}, frames) or (batch, {self.n_mels}, frames), "
                f"got {tuple(mel.shape)}"
            )
        audio = self.generator(x).squeeze(1)
        return audio.squeeze(0) if squeeze else audio

    @torch.inference_mode()
    def mel(self, audio: Tensor | np.ndarray) -> Tensor:
        """The generator-input log-mel of ``(samples,)`` or ``(batch, samples)`` audio at the
        model's sample rate: ``(n_mels, frames)`` or ``(batch, n_mels, frames)``."""
        x = self._as_tensor(audio)
        if x.shape[-1] < self.mel_transform.min_samples:
            raise InputError(
                f"audio is too short: {x.shape[-1]} samples, at least "
                f"{self.mel_transform.min_samples} needed for one mel frame"
            )
        return self.mel_transform(x)

    def copy_synthesis(self, audio: Tensor | np.ndarray) -> Tensor:
        """Re-synthesize audio through its own mel: ``(samples,)`` -> ``(frames * hop,)``."""
        return self(self.mel(audio))

    @classmethod
    def from_pretrained(cls, name: str, **kwargs: object) -> Vocoder:
        """Load a built-in model by name (``lj-v1``, ``universal-v1``; see ``hifigan models``),
        or a checkpoint by path.

        A registered model's weight file is verified against its sha256 first. ``kwargs``
        (``device``, ``config`` to override the registered preset, ...) go to
        :meth:`from_checkpoint`.
        """
        from .pretrained import resolve_model

        path, config = resolve_model(name)
        kwargs.setdefault("config", config)
        return cls.from_checkpoint(path, **kwargs)
