"""hifigan bench: synthesis speed per model, backend, precision, device and thread count.

Prints a table in the paper's form (parameters, kHz of audio generated per second, x real time),
the median of --repeats timed calls, each on --seconds of audio; cases run round-robin.
Models: --checkpoint PATH and/or --preset v1 v2 v3 (random weights: speed does not depend on
them).

    hifigan bench --preset v1 v2 v3 --backend eager fast --threads 2 --seconds 10
    hifigan bench --checkpoint generator_v2 --precision fp32 bf16 --json
"""

from __future__ import annotations

import argparse
import json
import sys

import torch

from ..checkpoint import load_generator
from ..config import HiFiGANConfig, preset_names
from ..errors import HiFiGANError
from ..generator import Generator
from ..inference import BACKENDS, narrow, resolve_device
from ..inference.backends import AUTO
from ..inference.benchmark import format_table, product_cases, run_benchmark
from ..precision import PRECISIONS
from .common import add_model_arguments, model_source
from .options import integer, number, threads

HELP = "measure synthesis speed (kHz, x real time) per model, backend, precision and threads"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_arguments(p)
    p.add_argument(
        "--preset",
        nargs="+",
        default=[],
        metavar="NAME",
        help=f"architectures with random weights ({', '.join(preset_names())})",
    )
    p.add_argument(
        "--backend",
        nargs="+",
        default=["eager", "fast"],
        choices=BACKENDS,
        help=f"backends to time, of {', '.join(BACKENDS)} (default eager fast: the reference "
        "and what auto runs on a CPU)",
    )
    p.add_argument(
        "--precision",
        nargs="+",
        default=["fp32"],
        choices=list(PRECISIONS),
        help=f"precisions to time, of {', '.join(PRECISIONS)} (default fp32)",
    )
    p.add_argument(
        "--device",
        nargs="+",
        default=["cpu"],
        help="devices to time, each auto (CUDA when available, else the CPU), cpu, cuda or "
        "cuda:N (default cpu: the thread counts and the documented figures are the CPU's)",
    )
    p.add_argument(
        "--threads",
        nargs="+",
        type=threads,
        default=None,
        help="CPU thread counts to try (default: torch's current count)",
    )
    p.add_argument(
        "--seconds",
        type=number(0, 3600, above=True),
        default=10.0,
        help="audio per call (default 10)",
    )
    p.add_argument(
        "--batch", type=integer(1, 1024), default=1, help="utterances per call (default 1)"
    )
    p.add_argument(
        "--repeats", type=integer(1, 100_000), default=5, help="timed calls per case (default 5)"
    )
    p.add_argument(
        "--warmup",
        type=integer(0, 100_000),
        default=1,
        help="untimed calls per case (default 1; 0: none)",
    )
    p.add_argument("--json", action="store_true", help="print the results as JSON")


def _models(args: argparse.Namespace) -> dict[str, tuple[Generator, HiFiGANConfig]]:
    models: dict[str, tuple[Generator, HiFiGANConfig]] = {}
    for name in args.preset:
        config = HiFiGANConfig.preset(name)
        torch.manual_seed(0)
        models[name] = (Generator.from_config(config), config)
    if not args.preset or args.checkpoint is not None or getattr(args, "model", None):
        path, config_arg = model_source(args)
        generator, config = load_generator(path, config_arg)
        models[str(getattr(path, "name", path))] = (generator, config)
    return models


def concrete_device(device: str) -> str:
    """``auto`` as the device it stands for (``cuda`` or ``cpu``), so that the table names it;
    other names are timed, or skipped with their reason, as given."""
    return resolve_device(AUTO).type if device == AUTO else device


def run(args: argparse.Namespace) -> int:
    models = _models(args)
    threads = args.threads or [torch.get_num_threads()]
    skipped: list[str] = []
    cases = product_cases(
        list(models),
        backends=args.backend,
        precisions=args.precision,
        devices=list(dict.fromkeys(concrete_device(d) for d in args.device)),
        threads=threads,
    )
    results = run_benchmark(
        models,
        cases,
        seconds=args.seconds,
        repeats=args.repeats,
        warmup=args.warmup,
        batch=args.batch,
        skipped=skipped,
    )
    for line in skipped:
        print(f"skipped {line}", file=sys.stderr)
    if not results:
        raise HiFiGANError("no supported combination of backend, precision and device to time")
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=2))
    else:
        print(format_table(results))
        print(
            f"\nmedian of {args.repeats} calls, {results[0].audio_seconds:.2f} s of audio x "
            f"batch {args.batch} each"
        )
        if any(r.backend == "fast" and r.device == "cpu" for r in results):
            print(narrow.describe())
    return 0
