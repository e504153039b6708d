"""Helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import torch

from ..errors import HiFiGANError


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """``--checkpoint PATH`` and ``--config PRESET|PATH``: which generator to load.

    Every command that loads a model uses this pair (and :func:`model_source`), so that model
    selection behaves the same everywhere.
    """
    parser.add_argument(
        "--checkpoint", type=Path, default=None, help="generator checkpoint (ours or the authors')"
    )
    parser.add_argument(
        "--config",
        default=None,
        help="preset name or JSON config, needed only if the checkpoint carries none and has no "
        "config.json beside it",
    )


def model_source(args: argparse.Namespace) -> tuple[Path, str | None]:
    """The checkpoint path and config chosen by :func:`add_model_arguments`' options."""
    if args.checkpoint is None:
        raise HiFiGANError("no model given: pass --checkpoint PATH")
    return args.checkpoint, args.config


def add_threads_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)"
    )


def apply_threads(threads: int | None) -> None:
    if threads is not None:
        if threads < 1:
            raise HiFiGANError(f"--threads must be at least 1, got {threads}")
        torch.set_num_threads(threads)


def progress(items: list, desc: str) -> Iterable:
    """A progress bar over ``items`` on standard error (hidden when it is not a terminal)."""
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="file", disable=None, file=sys.stderr, dynamic_ncols=True)


def process_files(
    files: list[Path], outdir: Path, suffix: str, work: Callable[[Path, Path], None], desc: str
) -> int:
    """Run ``work(input, output)`` for each file, writing ``outdir/<stem><suffix>``.

    A failing file does not stop the others; failures are listed at the end and the exit
    status is 1 if there were any.
    """
    failures: list[str] = []
    used: dict[Path, Path] = {}
    for path in progress(files, desc):
        out = outdir / f"{path.stem}{suffix}"
        if out in used:
            failures.append(f"{path}: output {out} is already written for {used[out]}")
            continue
        used[out] = path
        try:
            work(path, out)
        except HiFiGANError as e:
            failures.append(str(e))
    done = len(files) - len(failures)
    if failures:
        print(f"error: {len(failures)} of {len(files)} files failed:", file=sys.stderr)
        for line in failures:
            print(f"  {line}", file=sys.stderr)
    print(f"wrote {done} file{'s' if done != 1 else ''} to {outdir}", file=sys.stderr)
    return 1 if failures else 0
