"""Synthesis speed in the paper's form: kHz of audio generated per second, and x real time.

Cases (model x backend x precision x device x threads) are timed round-robin, one call each per
repeat, so that a change in machine load affects them alike; the median of the repeats is
reported. Used by ``hifigan bench`` and the scripts in ``scripts/``.
"""

from __future__ import annotations

import copy
import itertools
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor

from .backends import check_backend
from .config import HiFiGANConfig
from .errors import HiFiGANError
from .generator import Generator
from .inference import Vocoder, resolve_device


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
    """The timing of one :class:`BenchCase` (times in seconds, for ``batch`` x ``audio_seconds``)."""

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


def bench_mel(config: HiFiGANConfig, *, seconds: float, batch: int = 1) -> Tensor:
    """A deterministic log-mel-like input ``(batch, n_mels, frames)`` for ``seconds`` of audio."""
    frames = max(1, round(seconds * config.mel.sample_rate / config.mel.hop_length))
    rng = torch.Generator().manual_seed(1234)
    return torch.randn(batch, config.mel.n_mels, frames, generator=rng) * 2.0 - 5.0


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_calls(
    calls: dict[str, Callable[[], object]], *, repeats: int, warmup: int = 1, device=None
) -> dict[str, list[float]]:
    """Time each zero-argument callable ``repeats`` times, round-robin, after ``warmup`` calls
    each. Returns the wall times in seconds per name."""
    dev = torch.device("cpu") if device is None else torch.device(device)
    for fn in calls.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, fn in calls.items():
            _sync(dev)
            start = time.perf_counter()
            fn()
            _sync(dev)
            times[name].append(time.perf_counter() - start)
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
    if repeats < 1 or warmup < 0 or batch < 1 or seconds <= 0:
        raise HiFiGANError("repeats and batch must be >= 1, warmup >= 0 and seconds > 0")
    if any(case.threads < 1 for case in cases):
        raise HiFiGANError(f"thread counts must be at least 1, got {[c.threads for c in cases]}")
    params = {name: param_count(g) for name, (g, _) in models.items()}  # folds weight norm
    saved_threads = torch.get_num_threads()
    built: list[tuple[BenchCase, Vocoder, Tensor]] = []
    try:
        for case in cases:
            generator, config = models[case.model]
            try:
                dev = resolve_device(case.device)
                check_backend(case.backend, case.precision, dev)
            except HiFiGANError as e:
                if skipped is not None:
                    skipped.append(
                        f"{case.model} {case.backend}/{case.precision}/{case.device}: {e}"
                    )
                continue
            torch.set_num_threads(case.threads)  # ONNX Runtime takes its thread count now
            vocoder = Vocoder(
                copy.deepcopy(generator),
                config,
                dev,
                backend=case.backend,
                precision=case.precision,
            )
            mel = bench_mel(config, seconds=seconds, batch=batch).to(dev)
            built.append((case, vocoder, mel))

        def call(case: BenchCase, vocoder: Vocoder, mel: Tensor) -> Callable[[], object]:
            def run() -> object:
                torch.set_num_threads(case.threads)
                return vocoder(mel)

            return run

        calls = {str(i): call(*c) for i, c in enumerate(built)}
        devs = {c[0].device for c in built}
        times = time_calls(
            calls, repeats=repeats, warmup=warmup, device="cuda" if "cuda" in devs else None
        )
    finally:
        torch.set_num_threads(saved_threads)
    results = []
    for i, (case, vocoder, mel) in enumerate(built):
        t = times[str(i)]
        median = statistics.median(t)
        samples = mel.shape[0] * mel.shape[2] * vocoder.hop_length
        audio_seconds = mel.shape[2] * vocoder.hop_length / vocoder.sample_rate
        results.append(
            BenchResult(
                model=case.model,
                params_m=params[case.model] / 1e6,
                backend=case.backend,
                precision=case.precision,
                device=case.device,
                threads=case.threads,
                batch=mel.shape[0],
                audio_seconds=audio_seconds,
                median_s=median,
                khz=samples / median / 1000.0,
                x_realtime=samples / median / vocoder.sample_rate,
                times=t,
            )
        )
    return results


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
    "bench_mel",
    "format_table",
    "param_count",
    "product_cases",
    "run_benchmark",
    "time_calls",
]
