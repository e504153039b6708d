"""Exact windowed synthesis: streaming, long inputs and batches of different lengths.

The generator is purely convolutional with zero padding, so an output frame depends only on the
mel frames within its receptive field: ``left`` frames before it and ``right`` frames after it
(:func:`receptive_field`, derived from the config). Synthesizing frames ``[a, b)`` from the mel
window ``[max(0, a - left), min(n, b + right))`` and cropping therefore gives exactly the offline
output: wherever the window touches the true start or end of the utterance, the layers pad with
zeros exactly as they do offline. This module builds everything that synthesizes piecewise on
that fact:

* :class:`MelStream` consumes mel frames as they arrive and returns audio as soon as it is final
  (held back: ``right`` frames, the algorithmic latency);
* :func:`synthesize_blocks` synthesizes long inputs block by block in bounded memory;
* :func:`synthesize_batch` batches mels of different lengths and recomputes the tail of every
  padded item from a window that ends at its own end, so each equals its one-by-one output.

The synthesis function they take, :data:`MelToAudio`, is any ``(B, n_mels, T) float32 ->
(B, T * hop_length) float32`` callable (an inference backend, or a vocoder's block-wise synthesis).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from ..config import GeneratorConfig
from ..errors import InputError

# a batch of log-mels (B, n_mels, T) -> their waveforms (B, T * hop_length), both float32
MelToAudio = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class ReceptiveField:
    """How many mel frames around an output frame influence it.

    Attributes:
        left: past frames: output frame ``f`` depends on frames ``>= f - left``.
        right: future frames: output frame ``f`` depends on frames ``<= f + right``; a stream
            must hold back this many frames (the algorithmic latency).
    """

    left: int
    right: int


def _conv_span(kernel: int, dilation: int, padding: int) -> tuple[int, int]:
    """(past, future) input samples that one output sample of a stride-1 conv depends on."""
    return padding, dilation * (kernel - 1) - padding


def receptive_field(config: GeneratorConfig) -> ReceptiveField:
    """The generator's receptive field in frames, derived from its architecture.

    Walks back from the samples of output frame 0 through ``conv_post`` (kernel 7), each stage's
    residual blocks (the widest one counts: the stage output is their mean) and transposed
    convolution, to ``conv_pre`` (kernel 7), tracking the interval of positions that can
    influence them.
    """
    hop_length = 1
    for u in config.upsample_rates:
        hop_length *= u
    lo, hi = 0, hop_length - 1  # the samples of output frame 0
    past, future = _conv_span(7, 1, 3)  # conv_post
    lo, hi = lo - past, hi + future
    stages = list(zip(config.upsample_rates, config.upsample_kernel_sizes))
    pads = list(config.upsample_paddings) or [(k - u) // 2 for u, k in stages]
    for (u, k), pad in reversed(list(zip(stages, pads))):
        widest_past = widest_future = 0
        for rk, dilations in zip(config.resblock_kernel_sizes, config.resblock_dilation_sizes):
            block_past = block_future = 0
            for d in dilations:
                spans = [_conv_span(rk, d, (rk * d - d) // 2)]
                if config.resblock == 1:
                    spans.append(_conv_span(rk, 1, (rk - 1) // 2))
                for p, f in spans:
                    block_past, block_future = block_past + p, block_future + f
            widest_past = max(widest_past, block_past)
            widest_future = max(widest_future, block_future)
        lo, hi = lo - widest_past, hi + widest_future
        # transposed conv: output j = i * u - pad + t for taps t in [0, k)
        lo, hi = -((-(lo + pad - k + 1)) // u), (hi + pad) // u
    past, future = _conv_span(7, 1, 3)  # conv_pre
    lo, hi = lo - past, hi + future
    return ReceptiveField(left=-lo, right=hi)


class MelStream:
    """Incremental exact synthesis: push mel frames, get back the audio that became final.

    Args:
        synthesize: ``(B, n_mels, T) -> (B, T * hop_length)``.
        field: the generator's receptive field.
        hop_length: samples per frame.
        n_mels: mel bands (checked on every push).
        edge_frames: repeat the first and the last frame this many times before and after the
            utterance (the toolkit edge padding of Coqui and SpeechBrain models); the output
            then has ``2 * edge_frames`` more frames of audio.

    The concatenation of everything :meth:`push` and :meth:`finish` return equals the offline
    synthesis of the concatenated frames (to float rounding). Each push computes a window of
    ``new frames + left + right`` frames; the last ``right`` frames received are held back until
    more arrive or the stream finishes.
    """

    def __init__(
        self,
        synthesize: MelToAudio,
        *,
        field: ReceptiveField,
        hop_length: int,
        n_mels: int,
        edge_frames: int = 0,
    ) -> None:
        self.synthesize = synthesize
        self.edge_frames = edge_frames
        self.field = field
        self.hop_length = hop_length
        self.n_mels = n_mels
        self.received = 0  # frames pushed so far
        self.emitted = 0  # frames whose audio has been returned
        self._buffer: Tensor | None = None  # (B, n_mels, n): frames from index _start on
        self._start = 0
        self._finished = False

    def _check(self, frames: Tensor) -> Tensor:
        if self._finished:
            raise InputError("the stream is finished; start a new one")
        shape = tuple(frames.shape)
        if frames.dim() == 2:
            frames = frames.unsqueeze(0)
        if frames.dim() != 3 or frames.shape[1] != self.n_mels:
            raise InputError(f"mel chunk must have shape ({self.n_mels}, frames), got {shape}")
        if self._buffer is not None and frames.shape[0] != self._buffer.shape[0]:
            raise InputError(
                f"mel chunk has batch size {frames.shape[0]}, the stream {self._buffer.shape[0]}"
            )
        return frames

    def _emit(self, end: int) -> Tensor:
        """Synthesize frames ``[emitted, end)`` from a window that includes their context."""
        assert self._buffer is not None
        window_start = max(0, self.emitted - self.field.left)
        window = self._buffer[:, :, window_start - self._start : self.received - self._start]
        audio = self.synthesize(window)
        audio = audio[
            :,
            (self.emitted - window_start) * self.hop_length : (end - window_start)
            * self.hop_length,
        ]
        self.emitted = end
        keep_from = max(0, end - self.field.left)
        self._buffer = self._buffer[:, :, keep_from - self._start :]
        self._start = keep_from
        return audio

    def push(self, frames: Tensor) -> Tensor:
        """Add ``(n_mels, c)`` or ``(B, n_mels, c)`` frames (any ``c >= 0``).

        Returns:
            ``(B, samples)``: the audio that became final, possibly empty.
        """
        frames = self._check(frames)
        if self._buffer is None and self.edge_frames and frames.shape[2]:
            first = frames[:, :, :1].expand(-1, -1, self.edge_frames)
            frames = torch.cat([first, frames], dim=2)
        if self._buffer is None:
            if not frames.shape[2]:
                return frames.new_zeros(frames.shape[0], 0)
            self._buffer = frames
        else:
            self._buffer = torch.cat([self._buffer, frames.to(self._buffer.device)], dim=2)
        self.received += frames.shape[2]
        ready = self.received - self.field.right
        if ready <= self.emitted:
            return self._buffer.new_zeros(self._buffer.shape[0], 0)
        return self._emit(ready)

    def finish(self) -> Tensor:
        """End of the utterance: return the held-back audio, ``(B, samples)``."""
        if self._finished:
            raise InputError("the stream is already finished")
        self._finished = True
        if self._buffer is None:
            return torch.zeros(1, 0)
        if self.edge_frames:
            last = self._buffer[:, :, -1:].expand(-1, -1, self.edge_frames)
            self._buffer = torch.cat([self._buffer, last], dim=2)
            self.received += self.edge_frames
        if self.emitted == self.received:
            return self._buffer.new_zeros(self._buffer.shape[0], 0)
        return self._emit(self.received)


def synthesize_blocks(
    synthesize: MelToAudio,
    mel: Tensor,
    *,
    field: ReceptiveField,
    hop_length: int,
    block_frames: int,
) -> Tensor:
    """Offline synthesis of a long mel, ``block_frames`` output frames at a time.

    Peak memory is that of one window (``block_frames + left + right`` frames) plus the output.

    Args:
        mel: ``(B, n_mels, T)``.

    Returns:
        ``(B, T * hop_length)``, equal to ``synthesize(mel)`` to float rounding.
    """
    batch, _, frames = mel.shape
    out = mel.new_empty(batch, frames * hop_length)
    stream = MelStream(synthesize, field=field, hop_length=hop_length, n_mels=mel.shape[1])
    written = 0
    for start in range(0, frames, block_frames):
        audio = stream.push(mel[:, :, start : start + block_frames])
        out[:, written : written + audio.shape[1]] = audio
        written += audio.shape[1]
    audio = stream.finish()
    out[:, written : written + audio.shape[1]] = audio
    return out


def synthesize_batch(
    synthesize: MelToAudio,
    mels: Sequence[Tensor],
    *,
    field: ReceptiveField,
    hop_length: int,
    exact_tails: bool = True,
) -> list[Tensor]:
    """Synthesize ``(n_mels, T_i)`` mels of different lengths as one zero-padded batch.

    Zero-padding item ``i`` from ``T_i`` to the longest length changes its last ``field.right``
    frames (their receptive field reaches into the padding). With ``exact_tails`` (the default)
    those frames are recomputed, batched, from windows that end at each item's own end, so every
    output equals the item's one-by-one synthesis; without it, they are left as computed from
    the padded batch.

    Returns:
        one ``(T_i * hop_length,)`` waveform per mel.
    """
    lengths = [m.shape[-1] for m in mels]
    longest = max(lengths)
    batch = mels[0].new_zeros(len(mels), mels[0].shape[0], longest)
    for i, m in enumerate(mels):
        batch[i, :, : lengths[i]] = m
    audio = synthesize(batch)
    outputs = [audio[i, : n * hop_length] for i, n in enumerate(lengths)]
    if not exact_tails:
        return outputs
    # tail windows [start, n): the last `right` frames plus their left context, grouped by size
    groups: dict[int, list[int]] = {}
    for i, n in enumerate(lengths):
        if n < longest:
            start = max(0, n - field.right - field.left)
            groups.setdefault(n - start, []).append(i)
    for size, items in groups.items():
        windows = torch.stack([mels[i][:, lengths[i] - size :] for i in items])
        tails = synthesize(windows)
        fixed = min(field.right, size)
        for row, i in enumerate(items):
            if fixed:
                outputs[i] = outputs[i].clone()
                outputs[i][-fixed * hop_length :] = tails[row, -fixed * hop_length :]
    return outputs


__all__ = [
    "MelStream",
    "MelToAudio",
    "ReceptiveField",
    "receptive_field",
    "synthesize_batch",
    "synthesize_blocks",
]
