"""Synthesis speed in the paper's form: kHz of audio generated per second, and x real time.

Cases (model x backend x precision x device x threads) are timed round-robin, one call each per
repeat, so that a change in machine load affects them alike; the median of the repeats is
reported. Used by ``hifigan bench``, ``hifigan demo`` (:func:`timed_call`) and the scripts in
``scripts/``.
"""

from __future__ import annotations

import copy
import itertools
import math
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TypeVar

import torch
from torch import Tensor

from ..config import HiFiGANConfig
from ..errors import HiFiGANError
from ..generator import Generator
from .backends import check_backend
from .streaming import receptive_field
from .vocoder import BLOCK_FRAMES, Vocoder, resolve_device

T = TypeVar("T")


@dataclass(frozen=True)
class BenchCase:
    """One configuration to time."""

    model: str
    backend: str = "eager"
    precision: str = "fp32"
    device: str = "cpu"
    threads: int = 1


@dataclass
class BenchResult:
    """The timing of one :class:`BenchCase`: times in seconds, each call synthesizing ``batch``
    utterances of ``audio_seconds``."""

    model: str
    params_m: float
    backend: str
    precision: str
    device: str
    threads: int
    batch: int
    audio_seconds: float
    median_s: float
    khz: float
    x_realtime: float
    times: list[float] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def param_count(generator: Generator) -> int:
    """Parameters of the inference generator (weight norm is folded in place first)."""
    if generator.has_weight_norm:
        generator.remove_weight_norm()
    return sum(p.numel() for p in generator.parameters())


def bench_frames(config: HiFiGANConfig, seconds: float) -> int:
    """Mel frames for ``seconds`` of audio."""
    return max(1, round(seconds * config.mel.sample_rate / config.mel.hop_length))


def bench_mel(config: HiFiGANConfig, *, seconds: float, batch: int = 1) -> Tensor:
    """A deterministic log-mel-like input ``(batch, n_mels, frames)`` for ``seconds`` of audio."""
    frames = bench_frames(config, seconds)
    rng = torch.Generator().manual_seed(1234)
    return torch.randn(batch, config.mel.n_mels, frames, generator=rng) * 2.0 - 5.0


def timed_call(fn: Callable[[], T], device: str | torch.device | None = None) -> tuple[T, float]:
    """Call ``fn()`` once; returns its result and the wall seconds it took. On a CUDA ``device``
    the GPU is synchronised before and after, so that the time covers the queued kernels."""
    cuda = device is not None and torch.device(device).type == "cuda"
    if cuda:
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    result = fn()
    if cuda:
        torch.cuda.synchronize(device)
    return result, time.perf_counter() - start


def time_calls(
    calls: dict[str, Callable[[], object]],
    *,
    repeats: int,
    warmup: int = 1,
    device: str | torch.device | None = None,
) -> dict[str, list[float]]:
    """Time each zero-argument callable ``repeats`` times, round-robin, after ``warmup`` calls
    each (see :func:`timed_call` for ``device``). Returns the wall times in seconds per name."""
    for fn in calls.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, fn in calls.items():
            times[name].append(timed_call(fn, device)[1])
    return times


def product_cases(
    models: list[str],
    *,
    backends: list[str],
    precisions: list[str],
    devices: list[str],
    threads: list[int],
) -> list[BenchCase]:
    """Every combination, in the order model, backend, precision, device, threads."""
    return [
        BenchCase(*combo)
        for combo in itertools.product(models, backends, precisions, devices, threads)
    ]


# float32 activations alive at once per stage in the generator (a stage's input, a residual
# block's output and the running sum); measured peaks are about 2.5 of them (V1)
_LIVE_ACTIVATIONS = 3


def synthesis_bytes(config: HiFiGANConfig, frames: int, batch: int) -> int:
    """Estimated peak memory of one timed call: the input mel, the output audio and the
    activations of one synthesis window (long inputs run in blocks of
    :data:`~hifigan.inference.BLOCK_FRAMES`)."""
    g, mel = config.generator, config.mel
    field = receptive_field(g)
    window = min(frames, BLOCK_FRAMES + field.left + field.right)
    per_frame, samples, channels = g.upsample_initial_channel, 1, g.upsample_initial_channel
    for rate in g.upsample_rates:
        samples, channels = samples * rate, channels // 2
        per_frame += samples * channels
    activations = _LIVE_ACTIVATIONS * per_frame * window
    return 4 * batch * (frames * (mel.n_mels + mel.hop_length) + activations)


def available_memory(device: torch.device) -> int | None:
    """Bytes that can still be allocated on ``device``, or None when that is unknown."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.3g} {unit}"
        n /= 1000
    return f"{n:.3g} PB"


def check_memory(
    config: HiFiGANConfig, *, seconds: float, batch: int, device: torch.device, held: int = 0
) -> None:
    """Refuse a case whose input, output and activations (plus ``held`` bytes of other
    cases' inputs on ``device``) would not fit in the memory available there."""
    free = available_memory(device)
    frames = bench_frames(config, seconds)
    need = synthesis_bytes(config, frames, batch) + held
    if free is None or need <= free:
        return
    lo, hi = 0, frames  # bisect for the most frames that fit (the estimate grows with them)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if synthesis_bytes(config, mid, batch) + held <= free:
            lo = mid
        else:
            hi = mid - 1
    fit = lo * config.mel.hop_length / config.mel.sample_rate
    raise HiFiGANError(
        f"{seconds:g} s of audio at batch {batch} needs about {_size(need)} of memory on "
        f"{device}, more than the {_size(free)} available (at most about {fit:.3g} s fit)"
    )


@dataclass
class _Prepared:
    """A supported case, ready to call: its vocoder and input mel."""

    case: BenchCase
    vocoder: Vocoder
    mel: Tensor

    def __call__(self) -> Tensor:
        torch.set_num_threads(self.case.threads)
        return self.vocoder(self.mel, check=False)  # random mels: time synthesis only

    def result(self, times: list[float], params: int) -> BenchResult:
        """The :class:`BenchResult` of this case for its timed calls."""
        hop_length, rate = self.vocoder.hop_length, self.vocoder.sample_rate
        median = statistics.median(times)
        samples = self.mel.shape[0] * self.mel.shape[2] * hop_length
        return BenchResult(
            model=self.case.model,
            params_m=params / 1e6,
            backend=self.case.backend,
            precision=self.case.precision,
            device=self.case.device,
            threads=self.case.threads,
            batch=self.mel.shape[0],
            audio_seconds=self.mel.shape[2] * hop_length / rate,
            median_s=median,
            khz=samples / median / 1000.0,
            x_realtime=samples / median / rate,
            times=times,
        )


def _prepare(
    models: dict[str, tuple[Generator, HiFiGANConfig]],
    cases: list[BenchCase],
    *,
    seconds: float,
    batch: int,
    skipped: list[str] | None,
) -> list[_Prepared]:
    """A vocoder (own copy of the generator) and input for every supported case; the others
    are described in ``skipped``. Sets torch's thread count (restoring it is the caller's)."""
    prepared = []
    held: dict[torch.device, int] = {}  # bytes of the inputs prepared so far, per device
    for case in cases:
        generator, config = models[case.model]
        try:
            dev = resolve_device(case.device)
            check_backend(case.backend, case.precision, dev)
        except HiFiGANError as e:
            if skipped is not None:
                skipped.append(f"{case.model} {case.backend}/{case.precision}/{case.device}: {e}")
            continue
        check_memory(config, seconds=seconds, batch=batch, device=dev, held=held.get(dev, 0))
        torch.set_num_threads(case.threads)  # ONNX Runtime takes its thread count now
        vocoder = Vocoder(
            copy.deepcopy(generator), config, dev, backend=case.backend, precision=case.precision
        )
        mel = bench_mel(config, seconds=seconds, batch=batch).to(dev)
        held[dev] = held.get(dev, 0) + mel.numel() * mel.element_size()
        prepared.append(_Prepared(case, vocoder, mel))
    return prepared


def run_benchmark(
    models: dict[str, tuple[Generator, HiFiGANConfig]],
    cases: list[BenchCase],
    *,
    seconds: float = 10.0,
    repeats: int = 5,
    warmup: int = 1,
    batch: int = 1,
    skipped: list[str] | None = None,
) -> list[BenchResult]:
    """Time the supported ``cases``, round-robin; unsupported ones are described in ``skipped``.

    Args:
        models: label -> (generator, config), the labels that ``cases`` name; weight norm is
            folded in place, then each case gets its own copy of the generator.
    """
    if repeats < 1 or warmup < 0 or batch < 1 or not 0 < seconds < math.inf:
        raise HiFiGANError(
            "repeats and batch must be >= 1, warmup >= 0 and seconds > 0 (finite), got "
            f"repeats {repeats}, batch {batch}, warmup {warmup}, seconds {seconds:g}"
        )
    if any(case.threads < 1 for case in cases):
        raise HiFiGANError(f"thread counts must be at least 1, got {[c.threads for c in cases]}")
    params = {name: param_count(g) for name, (g, _) in models.items()}  # folds weight norm
    saved_threads = torch.get_num_threads()
    try:
        prepared = _prepare(models, cases, seconds=seconds, batch=batch, skipped=skipped)
        cuda = any(p.vocoder.device.type == "cuda" for p in prepared)
        times = time_calls(
            {str(i): p for i, p in enumerate(prepared)},
            repeats=repeats,
            warmup=warmup,
            device="cuda" if cuda else None,
        )
    finally:
        torch.set_num_threads(saved_threads)
    return [p.result(times[str(i)], params[p.case.model]) for i, p in enumerate(prepared)]


def format_table(results: list[BenchResult]) -> str:
    """The results as an aligned text table, in the paper's form (params, kHz, x real time)."""
    header = [
        "Model",
        "Params (M)",
        "Backend",
        "Precision",
        "Device",
        "Threads",
        "kHz",
        "x real time",
    ]
    rows = [
        [
            r.model,
            f"{r.params_m:.2f}",
            r.backend,
            r.precision,
            r.device,
            str(r.threads),
            f"{r.khz:.1f}",
            f"{r.x_realtime:.2f}",
        ]
        for r in results
    ]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i < 5 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
        )

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


__all__ = [
    "BenchCase",
    "BenchResult",
    "available_memory",
    "bench_frames",
    "bench_mel",
    "check_memory",
    "format_table",
    "param_count",
    "product_cases",
    "run_benchmark",
    "synthesis_bytes",
    "time_calls",
    "timed_call",
]
