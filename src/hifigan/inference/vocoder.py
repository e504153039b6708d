"""Inference API: :class:`Vocoder` turns log-mel spectrograms (or audio, by copy synthesis)
into waveforms with a trained generator.

>>> from hifigan import Vocoder
>>> vocoder = Vocoder.from_checkpoint("generator_v2")        # config.json beside it
>>> audio = vocoder(mel)                                     # (80, T) -> (T * 256,)
>>> fast = Vocoder.from_checkpoint("generator_v2", backend="fast", precision="bf16")
>>> waves = fast([mel_a, mel_b])                             # batched, each trimmed
>>> for piece in fast.stream(chunks_of_frames): ...          # exact streaming
>>> audio = vocoder(coqui_mel, convention="coqui")         # another toolkit's mel, converted

A mel given without ``convention`` is checked against the model's own convention: statistics
that fit another one give a warning naming it (see :meth:`Vocoder.prepare_mel`).

Backends and precisions are described in :mod:`hifigan.inference.backends`; streaming, long
inputs and batching in :mod:`hifigan.inference.streaming`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..allocator import keep_freed_memory
from ..checkpoint import load_generator
from ..config import HiFiGANConfig
from ..conventions import (
    Candidate,
    Convention,
    MelStats,
    check_convention,
    convention_from_mel_config,
    convention_names,
    convert_mel,
    load_convention,
)
from ..conventions.detect import (
    check_log_values,
    detect_shared_convention,
    linear_problem,
    looks_like,
)
from ..errors import HiFiGANError, InputError
from ..generator import Generator
from ..io import check_mel, warn
from ..pretrained import was_verified
from ..toolkits import edge_frames, model_mel, pad_edges
from .backends import AUTO, make_backend, resolve_backend
from .inputs import (
    as_audio,
    as_mel,
    check_audio_out,
    check_log_range,
    check_mel_out,
    labelled,
    range_problem,
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
    """A ``torch.device`` (``auto``: CUDA when available, else the CPU), with a clear error
    when CUDA is asked for but absent."""
    if device == AUTO:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise HiFiGANError(f"unknown device {device!r} (use auto, cpu or cuda)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise HiFiGANError(
            f"device {device!r} requested, but CUDA is not available to torch {torch.__version__}"
        )
    return dev


@dataclass(frozen=True)
class ConventionDetection:
    """The conventions :meth:`Vocoder.detect_conventions` decided, one per mel.

    ``conventions[i]``: mel ``i``'s (None when it can be no log-mel: ``problems[i]`` says
    why). ``notes``: one line per mel that on its own would have been read otherwise.
    """

    conventions: tuple[Convention | None, ...]
    problems: tuple[str | None, ...]
    notes: tuple[str, ...]

    @property
    def convention(self) -> Convention | None:
        """The convention of the most mels (None when no mel has one)."""
        found = [c for c in self.conventions if c is not None]
        if not found:
            return None
        names = [c.name for c in found]
        return found[names.index(max(names, key=names.count))]


def _dims(x: object) -> int:
    """The number of dimensions of a tensor or array (0 for anything else)."""
    return x.dim() if isinstance(x, Tensor) else getattr(x, "ndim", 0)


def _numpy(mel: Tensor | np.ndarray) -> np.ndarray:
    """A mel as a numpy array (on the CPU)."""
    return mel.detach().cpu().numpy() if isinstance(mel, Tensor) else np.asarray(mel)


class Vocoder:
    """A generator ready for inference: weight norm folded, eval mode, under ``inference_mode``.

    Args:
        generator: a :class:`Generator` (its weight norm is removed in place).
        config: the model's config (mel parameters and sample rate).
        device: where to run.
        backend: ``auto`` (the default: the fastest backend exact on ``device``, ``fast`` on
            the CPU, see :func:`~hifigan.inference.backends.resolve_backend`), ``eager`` (the
            reference), ``fast``, ``compiled`` or ``onnx``; :attr:`backend_name` is the one
            that runs.
        precision: ``fp32``; ``bf16`` (``fast``/``compiled``); ``fp16`` (CUDA only).
        block_frames: mels longer than this are synthesized in blocks of this many frames
            (exact, bounded memory).
        edge_padding: ``authors`` (default) or ``toolkit``: repeat the first and last frames
            as the toolkit's own inference does (Coqui, SpeechBrain: 5 frames each end, giving
            that many more frames of audio); see ``docs/toolkits.md``.
    """

    def __init__(
        self,
        generator: Generator,
        config: HiFiGANConfig,
        device: str | torch.device = "cpu",
        *,
        backend: str = "auto",
        precision: str = "fp32",
        block_frames: int = BLOCK_FRAMES,
        edge_padding: str = "authors",
    ) -> None:
        self.config = config
        self.edge_frames = edge_frames(config.generator.inference_padding, edge_padding)
        self.device = resolve_device(device)
        if self.device.type == "cpu":
            keep_freed_memory()  # large tensors reused, not page-faulted in on every call
        if block_frames < 1:
            raise HiFiGANError(f"block_frames must be at least 1, got {block_frames}")
        if generator.has_weight_norm:
            generator.remove_weight_norm()
        self.generator = generator.eval().to(self.device)
        self.backend_name = resolve_backend(backend, self.device, precision)
        self.precision = precision
        self.block_frames = block_frames
        self.backend = make_backend(
            self.backend_name, self.generator, precision=precision, device=self.device
        )
        self.receptive_field: ReceptiveField = receptive_field(config.generator)
        self.mel_transform = model_mel(config.mel).to(self.device)

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        config: HiFiGANConfig | str | Path | None = None,
        device: str | torch.device = "cpu",
        *,
        backend: str = "auto",
        precision: str = "fp32",
        block_frames: int = BLOCK_FRAMES,
        verified: bool = False,
        edge_padding: str = "authors",
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
            generator,
            cfg,
            dev,
            backend=backend,
            precision=precision,
            block_frames=block_frames,
            edge_padding=edge_padding,
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
    def convention(self) -> Convention:
        """The mel convention the generator reads (from its config)."""
        return convention_from_mel_config(self.config.mel)

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
        """``(B, n_mels, T)`` -> ``(B, T * hop_length)`` with the backend, in blocks when long."""
        if mel.shape[2] <= self.block_frames:
            return self.backend(mel)
        return synthesize_blocks(
            self.backend,
            mel,
            field=self.receptive_field,
            hop_length=self.hop_length,
            block_frames=self.block_frames,
        )

    def _mel(self, mel: object, label: str | None = None, **kwargs: bool) -> Tensor:
        """A checked mel input (see :func:`as_mel`) on the vocoder's device."""
        return as_mel(mel, self.n_mels, label=label, **kwargs).to(self.device)

    def _check(self, audio: Tensor, mel: Tensor | None, label: str | None = None) -> None:
        check_audio_out(audio, mel, label=label, precision=self.precision)

    # ------------------------------------------------------------------ conventions
    def detect_convention(
        self,
        mel: Tensor | np.ndarray | Sequence[Tensor | np.ndarray],
        label: str | None = None,
    ) -> Convention:
        """The convention a mel ``(bands, frames)`` most likely follows, judged from its
        statistics among the named ones and the model's own; the model's own when it fits as
        well as the best (statistics cannot tell, e.g., a half-hop shift apart).

        Several mels (a list, or a ``(batch, bands, frames)`` batch) of one source are judged
        together, as :meth:`detect_conventions` does; the convention of the most of them is
        returned.
        """
        if isinstance(mel, (list, tuple)) or _dims(mel) == 3:
            found = self.detect_conventions(list(mel))
            if found.convention is None:
                raise InputError(labelled(label, next(p for p in found.problems if p)))
            return found.convention
        found = self.detect_conventions([mel], [label] if label else None)
        if found.problems[0] is not None:
            raise InputError(labelled(label, found.problems[0]))
        return found.conventions[0]

    def detect_conventions(
        self,
        mels: Sequence[Tensor | np.ndarray],
        labels: Sequence[str] | None = None,
    ) -> ConventionDetection:
        """Decide the convention of several mels of one source (a TTS model's output: one
        convention) from their pooled statistics, as :meth:`detect_convention` decides one.

        Quiet mels show the floor, loud ones the level: together they tell conventions apart
        that each mel alone may not. Mels of another band count than most are decided among
        themselves. A mel that on its own would be read otherwise gets a note (one line, led
        by its label: ``labels``, default ``mel i of the list``); a mel no log-mel can be (NaN,
        huge values, another shape) gets its problem and no convention.
        """
        arrays = [_numpy(m) for m in mels]
        names = list(labels) if labels is not None else []
        names += [f"mel {i} of the list" for i in range(len(names), len(arrays))]
        problems: list[str | None] = [None] * len(arrays)
        conventions: list[Convention | None] = [None] * len(arrays)
        notes: list[str] = []
        groups: dict[int, list[int]] = {}
        for i, m in enumerate(arrays):
            try:
                check_log_values(m)
            except InputError as e:
                problems[i] = str(e)
                continue
            groups.setdefault(m.shape[0], []).append(i)
        order = sorted(groups.values(), key=len, reverse=True)
        own = self.convention
        candidates = convention_names()
        if own.name not in candidates:
            candidates = [*candidates, own]
        for k, group in enumerate(order):
            bands = arrays[group[0]].shape[0]
            try:
                shared = detect_shared_convention([arrays[i] for i in group], candidates)
            except InputError:  # every one looks linear: each says why
                for i in group:
                    problems[i] = linear_problem(arrays[i])
                continue
            if not shared.ranked:
                for i in group:
                    problems[i] = f"no named mel convention has {bands} bands"
                continue
            chosen = self._decide(shared.ranked)
            twins = {chosen.name, *shared.ranked[0].same_values}
            others = f"the {len(group) - 1} other mels" if len(group) > 2 else "the other mel"
            for i, alone in zip(group, shared.alone):
                conventions[i] = chosen
                if k and len(order[0]) > 1:
                    notes.append(
                        f"{names[i]}: {bands} bands, unlike most mels beside it: decided apart, "
                        f"as {chosen.name}"
                    )
                if isinstance(alone, str):
                    notes.append(
                        f"{names[i]}: on its own {alone}; read as {chosen.name}, with {others}"
                    )
                elif alone and len(group) > 1:
                    single = self._decide(alone)
                    if single.name not in twins:
                        notes.append(
                            f"{names[i]}: on its own it looks like {single.name}; read as "
                            f"{chosen.name}, with {others}"
                        )
        return ConventionDetection(tuple(conventions), tuple(problems), tuple(notes))

    def _decide(self, ranked: list[Candidate]) -> Convention:
        """The convention a ranking decides for: the best, or the model's own when it fits
        as well (or has the best one's values)."""
        own = self.convention
        best = ranked[0]
        mine = next((c for c in ranked if c.name == own.name), None)
        if mine is not None and (own.name in best.same_values or mine.score >= best.score):
            return own
        return load_convention(best.name)

    def prepare_mel(
        self,
        mel: Tensor | np.ndarray,
        convention: str | Path | Convention | None = None,
        stats: str | Path | MelStats | None = None,
        *,
        label: str | None = None,
    ) -> Tensor:
        """A mel ready for the generator: ``(bands, frames)`` -> ``(n_mels, frames')`` float32.

        With ``convention`` (a name, a JSON file, a :class:`Convention`, or ``"auto"`` to detect
        it from the statistics) the mel is converted into the model's convention (exactly for
        value differences, approximately for framing and frequency differences; see
        :func:`~hifigan.conventions.convert_mel`); ``stats`` undoes a normalisation. Without
        it the mel is checked against the model's convention: statistics that fit another
        convention give a warning (one line, naming ``label``, the likely convention and the
        flag to use), values no log-mel can hold raise :class:`InputError`.
        """
        m = _numpy(mel)
        if convention is None:
            check_log_range(torch.as_tensor(m), label)
            for line in check_convention(m, self.convention, label):
                warn(line)
            return torch.from_numpy(np.ascontiguousarray(m, dtype=np.float32))
        if isinstance(convention, str) and convention == AUTO:
            convention = self.detect_convention(m, label)
        out = convert_mel(m, convention, self.convention, stats=stats, path=label)
        return torch.from_numpy(out)

    @torch.inference_mode()
    def __call__(
        self,
        mel: Tensor | np.ndarray | Sequence[Tensor | np.ndarray],
        *,
        convention: str | Path | Convention | None = None,
        stats: str | Path | MelStats | None = None,
        check: bool = True,
    ) -> Tensor | list[Tensor]:
        """Synthesize audio from a log-mel spectrogram, or from a list of them.

        Args:
            mel: ``(n_mels, frames)``, ``(batch, n_mels, frames)``, or a list of
                ``(n_mels, frames_i)`` mels of any lengths (synthesized as one batch; each
                result equals its one-by-one synthesis, see :func:`synthesize_batch`); float
                tensors or arrays, all values finite.
            convention, stats: the mels' convention when it is not the model's (``"auto"``
                detects it, for a list's or batch's mels together; the band count may then
                differ), converted before synthesis (see :meth:`prepare_input`).
            check: without ``convention``, warn when a mel's statistics fit another
                convention (:meth:`prepare_mel`); off for mels known to be the model's own.

        Returns:
            ``(frames * hop_length,)``, ``(batch, frames * hop_length)``, or a list of
            ``(frames_i * hop_length,)``;
            float32 in [-1, 1], on the vocoder's device.

        Raises:
            InputError: anything else (other types, shapes or dtypes, NaN or infinite values,
                values no log-mel can hold, or a generator that produced non-finite audio).
        """
        if convention is not None or check:
            mel = self._prepared(mel, convention, stats)
        if isinstance(mel, (list, tuple)):
            return self._batch(mel)
        x = pad_edges(self._mel(mel), self.edge_frames)
        audio = self._synthesize(x)
        self._check(audio, x)
        return audio[0] if _dims(mel) == 2 else audio

    def _prepared(
        self,
        mel: Tensor | np.ndarray | Sequence[Tensor | np.ndarray],
        convention: str | Path | Convention | None,
        stats: str | Path | MelStats | None,
    ) -> Tensor | np.ndarray | list[Tensor]:
        """``mel`` with each of its mels through :meth:`prepare_input`; ``auto`` decides for
        a list's or batch's mels together."""
        several = isinstance(mel, (list, tuple)) or _dims(mel) == 3
        if several and isinstance(convention, str) and convention == AUTO and len(mel):
            convention = self.detect_convention(list(mel))
        if isinstance(mel, (list, tuple)):
            return [
                self.prepare_input(m, convention, stats, label=f"mel {i} of the list")
                for i, m in enumerate(mel)
            ]
        if _dims(mel) == 2:
            return self.prepare_input(mel, convention, stats)
        if convention is None:
            x = self._mel(mel)  # the batch's form first, and as a batch
            labels = [f"mel {i} of the batch" if _dims(mel) == 3 else None for i in range(len(x))]
            return torch.stack([self.prepare_input(m, label=lb) for m, lb in zip(x, labels)])
        if _dims(mel) == 3:
            items = [
                self.prepare_input(m, convention, stats, label=f"mel {i} of the batch")
                for i, m in enumerate(mel)
            ]
            return torch.stack(items)
        return self.prepare_input(mel, convention, stats)  # refused, and why

    def prepare_input(
        self,
        mel: Tensor | np.ndarray,
        convention: str | Path | Convention | None = None,
        stats: str | Path | MelStats | None = None,
        *,
        label: str | None = None,
    ) -> Tensor:
        """One mel as the generator will read it: ``(bands, frames)`` -> ``(n_mels, frames')``
        float32 (a converted mel on the CPU). The one path of :meth:`__call__`, ``hifigan
        vocode`` and the service.

        Without ``convention`` (or with the model's own and no ``stats``) the mel's form is
        checked (one of another band count is refused, naming the convention it looks like)
        and its statistics are guarded (:meth:`prepare_mel`'s warnings); values no log-mel can
        hold pass unguarded, for synthesis to refuse them and say why. With ``convention``
        (``"auto"`` too) it is converted by :meth:`prepare_mel`. Errors name ``label``.
        """
        named = convention is not None and not (isinstance(convention, str) and convention == AUTO)
        if named and stats is None and load_convention(convention) == self.convention:
            convention = None  # the model's own: nothing to convert, guard it
        try:
            if convention is None:
                self._check_form(_numpy(mel) if _dims(mel) == 2 else None)
                x = as_mel(mel, self.n_mels, batched=False)[0]
                if range_problem(x) is None:  # otherwise refused at synthesis, and why
                    self.prepare_mel(x, label=label)
                return x
            bands = mel.shape[0] if _dims(mel) == 2 else self.n_mels
            x = as_mel(mel, bands, batched=False)[0]
            return self.prepare_mel(x, convention, stats, label=label)
        except InputError as e:
            if e.path is not None or label is None:
                raise
            raise InputError(str(e), label) from None

    def _check_form(self, mel: np.ndarray | None) -> None:
        """Refuse a 2-D mel of another band count, naming the convention it looks like."""
        n = self.n_mels
        if mel is None or mel.shape[0] == n:
            return
        if mel.shape[1] not in (0, n):  # (frames, n_mels) is a transposed mel, not another one
            name = looks_like(mel)
            if name is not None:
                raise InputError(
                    f"mel has shape {mel.shape}, but the model expects {n} bands (shape ({n}, "
                    f"frames)); it looks like {name}: vocode it with --mel-convention {name}"
                )
        check_mel(mel, n)

    def _batch(self, mels: Sequence[Tensor | np.ndarray]) -> list[Tensor]:
        labels = [f"mel {i} of the list" for i in range(len(mels))]
        xs = [
            pad_edges(self._mel(m, label, batched=False)[0], self.edge_frames)
            for m, label in zip(mels, labels)
        ]
        if not xs:
            return []
        audio = synthesize_batch(
            self._synthesize, xs, field=self.receptive_field, hop_length=self.hop_length
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
            hop_length=self.hop_length,
            n_mels=self.n_mels,
            edge_frames=self.edge_frames,
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
        """Re-synthesize audio through its own mel: ``(samples,)`` -> ``(frames * hop_length,)``
        (the audio shapes of :meth:`mel`)."""
        return self(self.mel(audio), check=False)

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
