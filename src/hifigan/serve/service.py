"""The state one service process shares between its requests: :class:`Service`."""

from __future__ import annotations

from .config import ServeConfig
from .counters import Metrics
from .guard import WebPolicy
from .payload import RequestError
from .slots import ModelSlot


class Service:
    """Shared state of one process: configuration, counters and the loaded models (``slots``
    by name; ``default``, the first, serves requests that name none)."""

    def __init__(self, config: ServeConfig, slots: list[ModelSlot], metrics: Metrics) -> None:
        self.config = config
        self.metrics = metrics
        self.slots = {slot.name: slot for slot in slots}
        self.default = slots[0].name
        self.running = False
        self.open_streams = 0
        self.policy = WebPolicy(
            config.host, config.allow_hosts, config.allow_origins, config.max_body_bytes
        )

    def slot(self, name: str | None) -> ModelSlot:
        """The model a request names (the default for none); 404 for one not served."""
        if name is None or name == "":
            return self.slots[self.default]
        slot = self.slots.get(name)
        if slot is None:
            raise RequestError(
                404, f"unknown model {name!r} (served here: {', '.join(self.slots)})"
            )
        return slot


__all__ = ["Service"]
