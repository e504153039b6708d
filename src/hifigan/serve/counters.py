"""Counters, gauges and histograms in the Prometheus text exposition format (version 0.0.4).

Written here rather than taken from ``prometheus_client``: the service needs five metric
families, and the format is a few lines. Values are per process: with ``--workers N`` each
worker answers ``/metrics`` for itself.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence

Labels = tuple[tuple[str, str], ...]

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _format_labels(labels: Labels, extra: tuple[tuple[str, str], ...] = ()) -> str:
    pairs = labels + extra
    if not pairs:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in pairs) + "}"


def _format_value(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


class _Family:
    """One metric family: a name, a help line, a type and one value (or histogram) per label
    set. Thread-safe: the model threads and the event loop both update metrics."""

    kind = "untyped"

    def __init__(self, name: str, help_text: str, label_names: Sequence[str] = ()) -> None:
        self.name = name
        self.help = help_text
        self.label_names = tuple(label_names)
        self._lock = threading.Lock()

    def _key(self, labels: dict[str, str]) -> Labels:
        if set(labels) != set(self.label_names):
            raise ValueError(f"{self.name} takes labels {self.label_names}, got {tuple(labels)}")
        return tuple((k, str(labels[k])) for k in self.label_names)

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]


class Counter(_Family):
    kind = "counter"

    def __init__(self, name: str, help_text: str, label_names: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, label_names)
        self._values: dict[Labels, float] = {}

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: str) -> float:
        with self._lock:
            return self._values.get(self._key(labels), 0.0)

    def render(self) -> list[str]:
        with self._lock:
            items = sorted(self._values.items())
        return self.header() + [
            f"{self.name}{_format_labels(k)} {_format_value(v)}" for k, v in items
        ]


class Gauge(Counter):
    kind = "gauge"

    def set(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = float(value)


class Histogram(_Family):
    kind = "histogram"

    def __init__(
        self,
        name: str,
        help_text: str,
        buckets: Sequence[float],
        label_names: Sequence[str] = (),
    ) -> None:
        super().__init__(name, help_text, label_names)
        self.buckets = tuple(sorted(buckets))
        # per label set: bucket counts (not cumulative), +Inf count, sum
        self._data: dict[Labels, tuple[list[int], list[float]]] = {}

    def observe(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            counts, total = self._data.setdefault(key, ([0] * (len(self.buckets) + 1), [0.0]))
            index = next((i for i, b in enumerate(self.buckets) if value <= b), len(self.buckets))
            counts[index] += 1
            total[0] += value

    def declare(self, **labels: str) -> None:
        """Create the series of ``labels`` with no observation yet (rendered as zeros)."""
        key = self._key(labels)
        with self._lock:
            self._data.setdefault(key, ([0] * (len(self.buckets) + 1), [0.0]))

    def snapshot(self, **labels: str) -> tuple[list[int], float]:
        """Per-bucket counts (the last one is above every bound) and the sum of observations."""
        with self._lock:
            counts, total = self._data.get(self._key(labels), ([0] * (len(self.buckets) + 1), [0]))
            return list(counts), float(total[0])

    def render(self) -> list[str]:
        lines = self.header()
        with self._lock:
            items = sorted((k, (list(c), t[0])) for k, (c, t) in self._data.items())
        for key, (counts, total) in items:
            cumulative = 0
            for bound, count in zip((*self.buckets, math.inf), counts):
                cumulative += count
                le = (("le", _format_value(bound)),)
                lines.append(f"{self.name}_bucket{_format_labels(key, le)} {cumulative}")
            lines.append(f"{self.name}_sum{_format_labels(key)} {_format_value(total)}")
            lines.append(f"{self.name}_count{_format_labels(key)} {cumulative}")
        return lines


class Metrics:
    """The service's metric families."""

    def __init__(self) -> None:
        self.requests = Counter(
            "hifigan_requests_total",
            "HTTP requests and WebSocket sessions by endpoint and status code.",
            ("endpoint", "status"),
        )
        self.latency = Histogram(
            "hifigan_request_duration_seconds",
            "Time from request start to the end of the response, by endpoint.",
            LATENCY_BUCKETS,
            ("endpoint",),
        )
        self.audio_seconds = Counter(
            "hifigan_audio_seconds_total",
            "Seconds of audio synthesized, by model.",
            ("model",),
        )
        self.batch_size = Histogram(
            "hifigan_batch_size",
            "Requests per synthesis call of the dynamic batcher, by model.",
            BATCH_BUCKETS,
            ("model",),
        )
        self.queue_depth = Gauge(
            "hifigan_queue_depth",
            "Vocode requests admitted and not yet answered, by model.",
            ("model",),
        )
        self.streams = Gauge(
            "hifigan_active_streams", "Open WebSocket streams, by model.", ("model",)
        )

    def families(self) -> list[_Family]:
        return [
            self.requests,
            self.latency,
            self.audio_seconds,
            self.batch_size,
            self.queue_depth,
            self.streams,
        ]

    def declare_model(self, model: str) -> None:
        """Sample every per-model family at zero, so that a served model shows in ``/metrics``
        (and rates over it can be computed) before its first request or stream."""
        self.audio_seconds.inc(0, model=model)
        self.batch_size.declare(model=model)
        self.queue_depth.set(0, model=model)
        self.streams.set(0, model=model)

    def render(self) -> str:
        lines: list[str] = []
        for family in self.families():
            lines.extend(family.render())
        return "\n".join(lines) + "\n"
