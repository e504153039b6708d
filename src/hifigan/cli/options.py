"""Validated option values: the argparse ``type=`` callables of every subcommand.

A value outside its option's range (nan, inf, a negative count, a port past 65535, a body
limit of terabytes) is refused while the command line is parsed, so argparse prints its usage
and one line naming the option and the accepted range, and exits with status 2. Nothing out
of range reaches the code that would otherwise fail on it later, or silently ignore it.

The ranges are part of each option's documented meaning: where 0 is accepted it means
something (``--keep 0`` keeps all, ``listen --port 0`` picks a free port), and the help text
says what. Environment variables that stand in for options go through the same callables
(:func:`env_value`).

The options that choose where and how a model runs (``--device``, ``--backend``,
``--precision``) are defined once here (:func:`add_device_backend_arguments`), with the
library's defaults and names, for every command that runs one.
"""

from __future__ import annotations

import argparse
import sys

import torch

from ..inference.backends import AUTO, BACKEND_CHOICES, BACKENDS, resolve_backend
from ..inference.vocoder import resolve_device
from ..precision import PRECISIONS
from ..settings import (  # noqa: F401 (the value types, shared with the library's switches)
    MAX_COUNT,
    Bounded,
    env_value,
    integer,
    launcher_ranks,
    number,
    one_of,
)

MAX_THREADS = 1024


class Port(Bounded):
    """A TCP port, 1-65535; with ``any_port`` also 0, which lets the system pick a free one."""

    def __init__(self, *, any_port: bool) -> None:
        super().__init__(0 if any_port else 1, 65535, whole=True)
        self.any_port = any_port

    def describe(self) -> str:
        extra = ", or 0 for any free port" if self.any_port else ""
        return f"a port from 1 to 65535{extra}"


def port(*, any_port: bool = False) -> Port:
    """A port option's type (0 only where the command reports the port it got)."""
    return Port(any_port=any_port)


#: ``--threads``: torch's thread pools are not meant for more, and no machine has the cores.
threads = integer(1, MAX_THREADS)


def token(text: str) -> str:
    """An API key: 1-256 visible ASCII characters (no spaces), the characters every HTTP
    client sends unchanged in a header, so that a key accepted at start matches requests."""
    if not 1 <= len(text) <= 256 or not all("!" <= c <= "~" for c in text):
        raise argparse.ArgumentTypeError(
            f"expected 1 to 256 visible ASCII characters (letters, digits, punctuation; no "
            f"spaces), got {_preview(text)}"
        )
    return text


def _preview(text: str) -> str:
    """A refused secret in an error message: its length and the first offending character,
    never the whole value."""
    size = f"{len(text)} character{'s' if len(text) != 1 else ''}"
    bad = next((c for c in text if not "!" <= c <= "~"), None)
    if bad is None:
        return size
    return f"{size} with {bad!r} at position {text.index(bad) + 1}"


#: what ``--device`` accepts, in every command that takes one
DEVICE_CHOICES = "auto (the default: CUDA when available, else the CPU), cpu, cuda or cuda:N"


def add_device_argument(p: argparse._ActionsContainer, *, what: str = "the model") -> None:
    """``--device``, default ``auto`` (see :func:`~hifigan.inference.vocoder.resolve_device`),
    on a parser or an argument group."""
    p.add_argument("--device", default=AUTO, help=f"where {what} runs: {DEVICE_CHOICES}")


def _auto_summary() -> str:
    """What ``auto`` picks per device, in words, from :func:`resolve_backend` itself."""
    picks = {kind: resolve_backend(AUTO, torch.device(kind)) for kind in ("cpu", "cuda")}
    return ", ".join(f"{backend} on {kind}" for kind, backend in picks.items())


def add_device_backend_arguments(p: argparse._ActionsContainer, *, what: str = "the model") -> None:
    """``--device``, ``--backend`` and ``--precision`` as every command that runs a model
    takes them: defaults ``auto``, ``auto`` and ``fp32``; names from the registries
    (:data:`~hifigan.inference.backends.BACKENDS`, :data:`~hifigan.precision.PRECISIONS`)."""
    add_device_argument(p, what=what)
    p.add_argument(
        "--backend",
        default=AUTO,
        choices=BACKEND_CHOICES,
        help=f"how the generator runs: {AUTO} (the default: the fastest backend that matches "
        f"eager within 1e-4 on the device: {_auto_summary()}), or one of {', '.join(BACKENDS)}"
        "; eager is the reference",
    )
    p.add_argument(
        "--precision",
        default="fp32",
        choices=list(PRECISIONS),
        help=f"numeric precision: {', '.join(PRECISIONS)} (default fp32; the others run on "
        "the fast backends, fp16 on CUDA only)",
    )


def backend_note(backend: str, device: str | torch.device, precision: str = "fp32") -> str:
    """The line a command prints about the backend it runs, e.g. ``backend: fast (auto on cpu;
    --backend eager for the reference path)``."""
    dev = resolve_device(device)
    chosen = resolve_backend(backend, dev, precision)
    what = chosen if precision == "fp32" else f"{chosen}, {precision}"
    if backend != AUTO:
        return f"backend: {what}"
    if precision != "fp32":
        return f"backend: {what} (auto on {dev.type}: the backend that runs {precision})"
    if chosen == "eager":
        return (
            f"backend: {what} (auto on {dev.type}: the reference path, since fast has no "
            "measured gain there yet; --backend fast to try it)"
        )
    return f"backend: {what} (auto on {dev.type}; --backend eager for the reference path)"


def report_backend(args: argparse.Namespace) -> None:
    """Print :func:`backend_note` for ``args.backend``, ``args.device`` and ``args.precision``
    on standard error, once per command."""
    print(backend_note(args.backend, args.device, args.precision), file=sys.stderr)
