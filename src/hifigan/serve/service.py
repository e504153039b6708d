"""The service's configuration and its loaded models.

:class:`ServeConfig` is everything ``hifigan serve`` was asked for; it travels to worker
processes as JSON in the environment variable :data:`CONFIG_ENV`. :class:`ModelSlot` is one
loaded model with its own thread (all torch work for the model runs there, never on the event
loop) and its dynamic batcher.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from hifigan import HiFiGANError, Vocoder
from hifigan.conventions import convention_from_mel_config

from .batching import Batcher
from .metrics import Metrics

CONFIG_ENV = "HIFIGAN_SERVE_CONFIG"
API_KEY_ENV = "HIFIGAN_API_KEY"
WARMUP_FRAMES = 16
# Measured on a 2-core CPU (docs/serving.md): batches of up to 8 s of padded audio make
# short requests faster over HTTP; unbounded ones were up to a third slower than none.
CPU_MAX_BATCH_SECONDS = 8.0
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass
class ServeConfig:
    """What ``hifigan serve`` was asked for (see its ``--help`` for each option)."""

    models: list[str] = field(default_factory=list)
    """``NAME`` (registered), ``PATH`` (a checkpoint) or ``NAME=PATH``; empty: the default."""
    config: str | None = None
    device: str = "cpu"
    backend: str = "eager"
    precision: str = "fp32"
    threads: int | None = None
    max_batch: int = 8
    max_wait_ms: float = 5.0
    max_batch_seconds: float | None = None
    """None: :data:`CPU_MAX_BATCH_SECONDS` on the CPU, no limit on CUDA; 0: no limit."""
    max_queue: int = 64
    max_body_mb: float = 64.0
    max_seconds: float = 300.0
    api_key: str | None = None
    host: str = "127.0.0.1"
    """The address listened on: decides which ``Host`` headers are served (serve/guard.py)."""
    allow_hosts: list[str] = field(default_factory=list)
    allow_origins: list[str] = field(default_factory=list)
    max_streams: int = 16
    stream_idle_seconds: float = 60.0

    def check(self) -> None:
        """Raise :class:`HiFiGANError` for an option out of range."""
        for option, value, low in (
            ("--max-batch", self.max_batch, 1),
            ("--max-queue", self.max_queue, 1),
            ("--max-streams", self.max_streams, 1),
            ("--max-wait-ms", self.max_wait_ms, 0),
            ("--max-batch-seconds", self.max_batch_seconds or 0, 0),
        ):
            if value < low:
                raise HiFiGANError(f"{option} must be at least {low}, got {value:g}")
        for option, value in (
            ("--max-body-mb", self.max_body_mb),
            ("--max-seconds", self.max_seconds),
            ("--stream-idle-seconds", self.stream_idle_seconds),
        ):
            if value <= 0:
                raise HiFiGANError(f"{option} must be positive, got {value:g}")
        if self.api_key is not None and not self.api_key.strip():
            raise HiFiGANError("--api-key is empty")

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 1024 * 1024)

    def to_env(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_env(cls) -> ServeConfig:
        text = os.environ.get(CONFIG_ENV)
        if not text:
            raise HiFiGANError(f"{CONFIG_ENV} is not set: start the service with `hifigan serve`")
        return cls(**json.loads(text))


@dataclass(frozen=True)
class ModelSource:
    """A model to load: the name it is served under, its checkpoint and config."""

    name: str
    checkpoint: Path
    config: str | None


def resolve_sources(specs: list[str], config: str | None) -> list[ModelSource]:
    """``--model`` values -> what to load, first one first (the default model of requests).

    A spec is a registered name, a checkpoint path (served under its file stem), or
    ``NAME=PATH``. Registered weight files are verified against their sha256 here, as
    ``hifigan vocode`` does (through :func:`hifigan.cli.common.model_source`).
    """
    from hifigan.cli.common import model_source
    from hifigan.pretrained import DEFAULT_MODEL, get_model

    sources: list[ModelSource] = []
    for spec in specs or [None]:
        name = None
        if spec is not None and "=" in spec and not Path(spec).exists():
            name, spec = spec.split("=", 1)
            if not _NAME.match(name):
                raise HiFiGANError(
                    f"model name {name!r} must be letters, digits, '.', '_' or '-' (in {spec!r})"
                )
        args = argparse.Namespace(
            model=spec, checkpoint=None, config=config, default_model=DEFAULT_MODEL
        )
        checkpoint, model_config = model_source(args)
        if name is None:
            registered = get_model(spec or DEFAULT_MODEL)
            name = registered.name if registered is not None else Path(checkpoint).stem
        if any(s.name == name for s in sources):
            raise HiFiGANError(f"two models are named {name!r}: name them with --model NAME=PATH")
        sources.append(ModelSource(name, Path(checkpoint), model_config))
    return sources


class ModelSlot:
    """One served model: the vocoder, its thread and its batcher."""

    def __init__(self, name: str, vocoder: Vocoder, config: ServeConfig, metrics: Metrics):
        self.name = name
        self.vocoder = vocoder
        self.metrics = metrics
        self.pending = 0  # vocode requests admitted and not yet answered
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"hifigan-{name}")
        self.batcher = Batcher(
            self.synthesize,
            self.executor,
            max_batch=config.max_batch,
            max_wait=config.max_wait_ms / 1000.0,
            max_frames=batch_frames(config.max_batch_seconds, vocoder),
            on_batch=lambda n: metrics.batch_size.observe(n, model=name),
        )

    def synthesize(self, mels: list[np.ndarray]) -> list[np.ndarray]:
        """``[(n_mels, T_i), ...] -> [(T_i * hop,), ...]``: one exact batched call."""
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
            "mel": convention_from_mel_config(v.config.mel).name,
            "latency_frames": v.latency_frames,
            "backend": v.backend_name,
            "precision": v.precision,
        }


def batch_frames(seconds: float | None, vocoder: Vocoder) -> int | None:
    """``--max-batch-seconds`` as mel frames of ``vocoder`` (None: no limit)."""
    if seconds is None:
        seconds = CPU_MAX_BATCH_SECONDS if vocoder.device.type == "cpu" else 0.0
    if seconds == 0:
        return None
    return max(1, int(seconds * vocoder.sample_rate / vocoder.hop_length))


def load_slots(config: ServeConfig, metrics: Metrics) -> list[ModelSlot]:
    """Load every model of ``config`` and run each once, so that the first request does not
    pay for one-time initialisation."""
    slots = []
    for source in resolve_sources(config.models, config.config):
        vocoder = Vocoder.from_checkpoint(
            source.checkpoint,
            config=source.config,
            device=config.device,
            backend=config.backend,
            precision=config.precision,
        )
        vocoder(np.full((vocoder.n_mels, WARMUP_FRAMES), -5.0, dtype=np.float32), check=False)
        slots.append(ModelSlot(source.name, vocoder, config, metrics))
        metrics.declare_model(source.name)
    return slots
