"""Validated option values: the argparse ``type=`` callables of every subcommand.

A value outside its option's range (nan, inf, a negative count, a port past 65535, a body
limit of terabytes) is refused while the command line is parsed, so argparse prints its usage
and one line naming the option and the accepted range, and exits with status 2. Nothing out
of range reaches the code that would otherwise fail on it later, or silently ignore it.

The ranges are part of each option's documented meaning: where 0 is accepted it means
something (``--keep 0`` keeps all, ``listen --port 0`` picks a free port), and the help text
says what. Environment variables that stand in for options go through the same callables
(:func:`env_value`).
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from typing import TypeVar

from ..errors import HiFiGANError

T = TypeVar("T")

MAX_THREADS = 1024
MAX_COUNT = 1_000_000_000  # steps, clips, trials: far past any real run, well inside int64


def _show(value: float) -> str:
    """A bound as people write it: 4096, 0.001, 1e+09 -> 1000000000."""
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:g}"


class Bounded:
    """A finite number in ``[low, high]`` (``(low, high]`` with ``above=True``) as an argparse
    type; ``whole`` numbers are parsed as ``int``. Instances are what ``tests/test_options.py``
    discovers as the numeric options."""

    def __init__(self, low: float, high: float, *, whole: bool, above: bool = False) -> None:
        self.low, self.high, self.whole, self.above = low, high, whole, above

    def accepts(self, value: float) -> bool:
        """Whether a parsed value lies in the range."""
        over_low = value > self.low if self.above else value >= self.low
        return math.isfinite(value) and over_low and value <= self.high

    def describe(self) -> str:
        """The accepted range in words, as the usage error states it."""
        kind = "a whole number" if self.whole else "a finite number"
        if self.above:
            return f"{kind} greater than {_show(self.low)} and at most {_show(self.high)}"
        return f"{kind} from {_show(self.low)} to {_show(self.high)}"

    def __call__(self, text: str) -> int | float:
        try:
            value = int(text) if self.whole else float(text)
        except (TypeError, ValueError):
            value = None
        if value is None or not self.accepts(value):
            raise argparse.ArgumentTypeError(f"expected {self.describe()}, got {text!r}")
        return value

    def __repr__(self) -> str:
        return f"<{self.describe()}>"


class Port(Bounded):
    """A TCP port, 1-65535; with ``any_port`` also 0, which lets the system pick a free one."""

    def __init__(self, *, any_port: bool) -> None:
        super().__init__(0 if any_port else 1, 65535, whole=True)
        self.any_port = any_port

    def describe(self) -> str:
        extra = ", or 0 for any free port" if self.any_port else ""
        return f"a port from 1 to 65535{extra}"


def integer(low: int, high: int = MAX_COUNT) -> Bounded:
    """A whole number from ``low`` to ``high``."""
    return Bounded(low, high, whole=True)


def number(low: float, high: float, *, above: bool = False) -> Bounded:
    """A finite float from ``low`` (excluded with ``above``) to ``high``."""
    return Bounded(low, high, whole=False, above=above)


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


def one_of(*values: str, fold_case: bool = False) -> Callable[[str], str]:
    """A switch: exactly one of ``values`` (in any case with ``fold_case``)."""

    def parse(text: str) -> str:
        value = text.lower() if fold_case else text
        if value not in values:
            raise argparse.ArgumentTypeError(
                f"expected {' or '.join(repr(v) for v in values)}, got {text!r}"
            )
        return value

    return parse


def env_value(name: str, parse: Callable[[str], T]) -> T | None:
    """The environment variable ``name`` parsed by an option's type (None when unset); a bad
    value raises :class:`HiFiGANError` naming the variable and the accepted values."""
    text = os.environ.get(name)
    if text is None:
        return None
    try:
        return parse(text)
    except argparse.ArgumentTypeError as e:
        raise HiFiGANError(f"environment variable {name}: {e}") from None


def launcher_ranks() -> tuple[int, int, int]:
    """``(RANK, WORLD_SIZE, LOCAL_RANK)`` as a launcher such as ``torchrun`` sets them (0, 1
    and 0 when unset), checked as options are: whole numbers, the rank inside the world."""
    world = env_value("WORLD_SIZE", integer(1, 65_536)) or 1
    rank = env_value("RANK", integer(0, 65_535)) or 0
    local_rank = env_value("LOCAL_RANK", integer(0, 65_535)) or 0
    if rank >= world:
        raise HiFiGANError(
            f"environment variable RANK: {rank} is not a process of WORLD_SIZE {world}"
        )
    return rank, world, local_rank
