"""The served models: :class:`ModelSlot` is one loaded model with its own thread (all torch
work for the model runs there, never on the event loop) and its dynamic batcher;
:func:`load_slots` loads the models a :class:`~hifigan.serve.config.ServeConfig` names.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..errors import HiFiGANError
from ..inference import Vocoder
from ..pretrained import DEFAULT_MODEL, ModelChoice, choose_model
from .batching import Batcher, ModelThread, batch_settings
from .config import ServeConfig
from .counters import Metrics

WARMUP_FRAMES = 16
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def resolve_sources(specs: list[str], config: str | None) -> list[ModelChoice]:
    """``--model`` values -> what to load, first one first (the default model of requests).

    A spec is a registered name, a checkpoint path (served under its file stem), or
    ``NAME=PATH``; no spec: the default model. Registered weight files are verified against
    their sha256 here, as every command does (:func:`hifigan.pretrained.choose_model`).
    """
    sources: list[ModelChoice] = []
    for spec in specs or [None]:
        name = None
        if spec is not None and "=" in spec and not Path(spec).exists():
            name, spec = spec.split("=", 1)
            if not _NAME.match(name):
                raise HiFiGANError(
                    f"model name {name!r} must be letters, digits, '.', '_' or '-' (in {spec!r})"
                )
        choice = choose_model(spec, config=config, default=DEFAULT_MODEL)
        if name is not None:
            choice = replace(choice, name=name)
        if any(s.name == choice.name for s in sources):
            raise HiFiGANError(
                f"two models are named {choice.name!r}: name them with --model NAME=PATH"
            )
        sources.append(choice)
    return sources


class ModelSlot:
    """One served model: the vocoder, its thread and its batcher."""

    def __init__(self, name: str, vocoder: Vocoder, config: ServeConfig, metrics: Metrics):
        self.name = name
        self.vocoder = vocoder
        self.metrics = metrics
        self.pending = 0  # vocode requests admitted and not yet answered
        self.executor = ModelThread(f"hifigan-{name}")  # takes turns: uploads, batches, streams
        batching = batch_settings(vocoder.device, config.max_batch, config.max_batch_seconds)
        self.batcher = Batcher(
            self.synthesize,
            self.executor.lane("batches"),
            max_batch=batching.max_batch,
            max_wait=config.max_wait_ms / 1000.0,
            max_frames=batching.max_frames(vocoder.sample_rate, vocoder.hop_length),
            on_batch=lambda n: metrics.batch_size.observe(n, model=name),
        )

    def synthesize(self, mels: list[np.ndarray]) -> list[np.ndarray]:
        """``[(n_mels, T_i), ...] -> [(T_i * hop_length,), ...]``: one exact batched call."""
        # no convention guard here: it would add to every batch's latency (docs/serving.md)
        return [audio.cpu().numpy() for audio in self.vocoder(list(mels), check=False)]

    def mel(self, audio: np.ndarray) -> np.ndarray:
        """``(samples,)`` at the model's rate -> its generator-input ``(n_mels, frames)``."""
        return self.vocoder.mel(audio).cpu().numpy()

    def admit(self, limit: int) -> bool:
        if self.pending >= limit:
            return False
        self.pending += 1
        self.metrics.queue_depth.set(self.pending, model=self.name)
        return True

    def release(self) -> None:
        self.pending -= 1
        self.metrics.queue_depth.set(self.pending, model=self.name)

    def info(self) -> dict:
        v = self.vocoder
        return {
            "name": self.name,
            "sample_rate": v.sample_rate,
            "n_mels": v.n_mels,
            "hop_length": v.hop_length,
            "hop": v.hop_length,  # the old name, kept for existing clients
            "mel": v.convention.name,
            "latency_frames": v.latency_frames,
            "backend": v.backend_name,
            "precision": v.precision,
        }


def load_slots(
    config: ServeConfig, metrics: Metrics, sources: list[ModelChoice] | None = None
) -> list[ModelSlot]:
    """Load every model of ``config`` (``sources``: already resolved from it) and run each
    once, so that the first request does not pay for one-time initialisation."""
    slots = []
    if sources is None:
        sources = resolve_sources(config.models, config.config)
    for source in sources:
        vocoder = Vocoder.from_checkpoint(
            source.checkpoint,
            config=source.config,
            device=config.device,
            backend=config.backend,
            precision=config.precision,
            edge_padding=config.edge_padding,
        )
        vocoder(np.full((vocoder.n_mels, WARMUP_FRAMES), -5.0, dtype=np.float32), check=False)
        slots.append(ModelSlot(source.name, vocoder, config, metrics))
        metrics.declare_model(source.name)
    return slots
