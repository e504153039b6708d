"""What ``hifigan serve`` was asked for: :class:`ServeConfig`, the one source of the
service's defaults (the command's options read theirs from it).

The configuration travels to worker processes (``--workers N``) as JSON in the environment
variable :data:`CONFIG_ENV`.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field

from ..errors import HiFiGANError

CONFIG_ENV = "HIFIGAN_SERVE_CONFIG"
API_KEY_ENV = "HIFIGAN_API_KEY"


@dataclass
class ServeConfig:
    """What ``hifigan serve`` was asked for (see its ``--help`` for each option)."""

    models: list[str] = field(default_factory=list)
    """``NAME`` (registered), ``PATH`` (a checkpoint) or ``NAME=PATH``; empty: the default."""
    config: str | None = None
    device: str = "auto"
    """``auto``: CUDA when available, else the CPU; ``cpu``, ``cuda`` or ``cuda:N``."""
    backend: str = "auto"
    """``auto``: the fastest backend exact on the device (``fast`` on the CPU)."""
    precision: str = "fp32"
    threads: int | None = None
    max_batch: int | None = None
    """None: the device's default (:func:`~hifigan.serve.batching.batch_settings`: 1 on the
    CPU, no batching; 8 on CUDA)."""
    max_wait_ms: float = 5.0
    max_batch_seconds: float | None = None
    """None: the device's default (8 s on the CPU, no limit on CUDA); 0: no limit."""
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
    mel_conventions: list[str] = field(default_factory=list)
    """``--mel-convention`` values: ``NAME|FILE|auto`` for every model, ``MODEL=...`` for one."""
    mel_stats: list[str] = field(default_factory=list)
    """``--mel-stats`` values: ``FILE`` (for the one normalised default) or ``CONVENTION=FILE``."""
    edge_padding: str = "authors"
    """``toolkit``: repeat the edge frames as the model's toolkit does (``hifigan vocode``'s)."""

    def check(self) -> None:
        """Raise :class:`HiFiGANError` for an option out of range."""
        for option, value, low in (
            ("--max-batch", 1 if self.max_batch is None else self.max_batch, 1),
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


def defaults() -> ServeConfig:
    """The service's defaults, as the command line shows and uses them."""
    return ServeConfig()


__all__ = ["API_KEY_ENV", "CONFIG_ENV", "ServeConfig", "defaults"]
