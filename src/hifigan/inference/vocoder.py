"""Inference API: :class:`Vocoder` turns log-mel spectrograms (or audio, by copy synthesis)
into waveforms with a trained generator.

>>> from hifigan import Vocoder
>>> vocoder = Vocoder.from_checkpoint("generator_v2")        # config.json beside it
>>> audio = vocoder(mel)                                     # (80, T) -> (T * 256,)
>>> fast = Vocoder.from_checkpoint("generator_v2", backend="fast", precision="bf16")
>>> waves = fast([mel_a, mel_b])                             # batched, each trimmed
>>> for piece in fast.stream(chunks_of_frames): ...          # exact streaming

Backends and precisions are described in :mod:`hifigan.inference.backends`; streaming, long
inputs and batching in :mod:`hifigan.inference.streaming`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..checkpoint import load_generator
from ..config import HiFiGANConfig
from ..errors import HiFiGANError, InputError
from ..generator import Generator
from ..mel import MelSpectrogram
from ..pretrained import was_verified
from .backends import make_backend
from .inputs import (
    as_audio,
    as_mel,
    check_audio_out,
    check_log_range,
    check_mel_out,
    labelled,
)
from .streaming import (
    MelStream,
    ReceptiveField,
    receptive_field,
    synthesize_batch,
    synthesize_blocks,
)

BLOCK_FRAMES = 2048


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


def _dims(x: object) -> int:
    """The number of dimensions of a tensor or array (0 for anything else)."""
    return x.dim() if isinstance(x, Tensor) else getattr(x, "ndim", 0)


class Vocoder:
    """A generator ready for inference: weight norm folded, eval mode, under ``inference_mode``.

    Args:
        generator: a :class:`Generator` (its weight norm is removed in place).
        config: the model's config (mel parameters and sample rate).
        device: where to run.
        backend: ``eager`` (the reference), ``fast``, ``compiled`` or ``onnx``
            (see :mod:`hifigan.inference.backends`).
        precision: ``fp32``; ``bf16`` (``fast``/``compiled``); ``fp16`` (CUDA only).
        block_frames: mels longer than this are synthesized in blocks of this many frames
            (exact, bounded memory).
    """

    def __init__(
        self,
        generator: Generator,
        config: HiFiGANConfig,
        device: str | torch.device = "cpu",
        *,
        backend: str = "eager",
        precision: str = "fp32",
        block_frames: int = BLOCK_FRAMES,
    ) -> None:
        self.config = config
        self.device = resolve_device(device)
        if block_frames < 1:
            raise HiFiGANError(f"block_frames must be at least 1, got {block_frames}")
        if generator.has_weight_norm:
            generator.remove_weight_norm()
        self.generator = generator.eval().to(self.device)
        self.backend_name = backend
        self.precision = precision
        self.block_frames = block_frames
        self.backend = make_backend(
            backend, self.generator, precision=precision, device=self.device
        )
        self.receptive_field: ReceptiveField = receptive_field(config.generator)
        self.mel_transform = MelSpectrogram.from_config(config.mel).to(self.device)

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        config: HiFiGANConfig | str | Path | None = None,
        device: str | torch.device = "cpu",
        *,
        backend: str = "eager",
        precision: str = "fp32",
        block_frames: int = BLOCK_FRAMES,
        verified: bool = False,
    ) -> Vocoder:
        """Load any supported checkpoint (ours or the authors').

        ``config`` (an object, preset name or JSON path) is needed only when the checkpoint
        carries none and has no ``config.json`` beside it. The other arguments are those of
        :class:`Vocoder`.

        Our checkpoints carry a sha256 digest of their weights, checked on loading. A file
        without one (the authors' format) is loaded with a warning that it is unverified,
        unless ``verified`` says the caller checked the whole file, or it is a built-in
        model's weight file whose sha256 was checked in this process (see
        :func:`~hifigan.pretrained.was_verified`).
        """
        dev = resolve_device(device)
        verified = verified or was_verified(path)
        generator, cfg = load_generator(path, config, warn_unverified=not verified)
        return cls(
            generator, cfg, dev, backend=backend, precision=precision, block_frames=block_frames
        )

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

    @property
    def latency_frames(self) -> int:
        """Frames a stream holds back: the receptive field's future context."""
        return self.receptive_field.right

    @property
    def latency_seconds(self) -> float:
        """Algorithmic latency of :meth:`stream`: held-back frames x hop / sample rate."""
        return self.latency_frames * self.hop_length / self.sample_rate

    # ------------------------------------------------------------------ synthesis
    def _synthesize(self, mel: Tensor) -> Tensor:
        """``(B, n_mels, T)`` -> ``(B, T * hop)`` with the backend, in blocks when long."""
        if mel.shape[2] <= self.block_frames:
            return self.backend(mel)
        return synthesize_blocks(
            self.backend,
            mel,
            field=self.receptive_field,
            hop=self.hop_length,
            block_frames=self.block_frames,
        )

    def _mel(self, mel: object, label: str | None = None, **kwargs: bool) -> Tensor:
        """A checked mel input (see :func:`as_mel`) on the vocoder's device."""
        return as_mel(mel, self.n_mels, label=label, **kwargs).to(self.device)

    def _check(self, audio: Tensor, mel: Tensor | None, label: str | None = None) -> None:
        check_audio_out(audio, mel, label=label, precision=self.precision)

    @torch.inference_mode()
    def __call__(
        self, mel: Tensor | np.ndarray | Sequence[Tensor | np.ndarray]
    ) -> Tensor | list[Tensor]:
        """Synthesize audio from a log-mel spectrogram, or from a list of them.

        Args:
            mel: ``(n_mels, frames)``, ``(batch, n_mels, frames)``, or a list of
                ``(n_mels, frames_i)`` mels of any lengths (synthesized as one batch; each
                result equals its one-by-one synthesis, see :func:`synthesize_batch`); float
                tensors or arrays, all values finite.

        Returns:
            ``(frames * hop,)``, ``(batch, frames * hop)``, or a list of ``(frames_i * hop,)``;
            float32 in [-1, 1], on the vocoder's device.

        Raises:
            InputError: anything else (other types, shapes or dtypes, NaN or infinite values,
                values no log-mel can hold, or a generator that produced non-finite audio).
        """
        if isinstance(mel, (list, tuple)):
            return self._batch(mel)
        x = self._mel(mel)
        audio = self._synthesize(x)
        self._check(audio, x)
        return audio[0] if _dims(mel) == 2 else audio

    def _batch(self, mels: Sequence[Tensor | np.ndarray]) -> list[Tensor]:
        labels = [f"mel {i} of the list" for i in range(len(mels))]
        xs = [self._mel(m, label, batched=False)[0] for m, label in zip(mels, labels)]
        if not xs:
            return []
        audio = synthesize_batch(
            self._synthesize, xs, field=self.receptive_field, hop=self.hop_length
        )
        for a, x, label in zip(audio, xs, labels):
            self._check(a, x, label)
        return audio

    def streamer(self) -> MelStream:
        """A push-style stream: ``push(frames) -> audio``, then ``finish() -> audio``; the
        tensors are ``(n_mels, c)`` in and ``(1, samples)`` out (see :class:`MelStream`).
        Non-finite input or output raises :class:`InputError` from the push that meets it."""
        return MelStream(
            self._synthesize_stream_window,
            field=self.receptive_field,
            hop=self.hop_length,
            n_mels=self.n_mels,
        )

    @torch.inference_mode()
    def _synthesize_stream_window(self, mel: Tensor) -> Tensor:
        mel = mel.to(self.device, torch.float32)
        if not bool(torch.isfinite(mel).all()):
            raise InputError("mel contains NaN or infinite values")
        audio = self._synthesize(mel)
        self._check(audio, mel)
        return audio

    def stream(self, chunks: Iterable[Tensor | np.ndarray]) -> Iterator[Tensor]:
        """Synthesize one utterance whose mel frames arrive in chunks of any size.

        Args:
            chunks: ``(n_mels, c)`` float tensors or arrays, ``c >= 0``, all values finite.

        Yields:
            ``(samples,)`` float32 audio as soon as it is final: all frames except the last
            :attr:`latency_frames` received, and those when ``chunks`` is exhausted. The
            concatenation equals ``self(whole_mel)`` to float rounding.

        Raises:
            InputError: as :meth:`__call__`, naming the chunk (``chunk 3 of the stream``).
        """
        stream = self.streamer()
        for k, chunk in enumerate(chunks):
            label = f"chunk {k} of the stream"
            x = self._mel(chunk, label, batched=False, allow_empty=True)[0]
            try:
                audio = stream.push(x)
            except InputError as e:
                raise InputError(labelled(label, str(e))) from None
            check_log_range(x, label)  # also when its audio is held back
            if audio.shape[1]:
                yield audio[0]
        try:
            audio = stream.finish()
        except InputError as e:
            raise InputError(labelled("the end of the stream", str(e))) from None
        if audio.shape[1]:
            yield audio[0]

    @torch.inference_mode()
    def mel(self, audio: Tensor | np.ndarray) -> Tensor:
        """The generator-input log-mel ``(n_mels, frames)`` of audio at the model's sample
        rate: ``(samples,)`` float values in [-1, 1], or multi-channel ``(samples, channels)``
        (as ``soundfile.read`` returns it) or ``(channels, samples)`` with at most 8 channels,
        averaged to mono with a warning.

        Raises:
            InputError: other types, shapes or dtypes (integer PCM: divide it by 32768 first),
                NaN or infinite samples, audio shorter than one frame, or samples so far
                beyond full scale that the mel overflows.
        """
        x = as_audio(audio, self.mel_transform.min_samples).to(self.device)
        mel = self.mel_transform(x)
        check_mel_out(mel, x)
        return mel

    def copy_synthesis(self, audio: Tensor | np.ndarray) -> Tensor:
        """Re-synthesize audio through its own mel: ``(samples,)`` -> ``(frames * hop,)``
        (the audio shapes of :meth:`mel`)."""
        return self(self.mel(audio))

    @classmethod
    def from_pretrained(cls, name: str, **kwargs: object) -> Vocoder:
        """Load a built-in model by name (``lj-v1``, ``universal-v1``; see ``hifigan models``),
        or a checkpoint by path.

        A registered model's weight file is verified against its sha256 first. ``kwargs``
        (``device``, ``config`` to override the registered preset, ...) go to
        :meth:`from_checkpoint`.
        """
        from ..pretrained import resolve_model

        path, config = resolve_model(name)
        kwargs.setdefault("config", config)
        return cls.from_checkpoint(path, **kwargs)
