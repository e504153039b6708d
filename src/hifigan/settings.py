"""Validated values read from text: number ranges, switches, and the environment variables
that stand in for options.

A value outside its range (nan, inf, a negative count) is refused with one line naming the
accepted values. The command line uses these as argparse types (:mod:`hifigan.cli.options`);
library code reads its environment switches through :func:`env_value`, so that a variable is
checked exactly as the option it stands in for.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from typing import TypeVar

from .errors import HiFiGANError

T = TypeVar("T")

MAX_COUNT = 1_000_000_000  # steps, clips, trials: far past any real run, well inside int64


def _show(value: float) -> str:
    """A bound as people write it: 4096, 0.001, 1e+09 -> 1000000000."""
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:g}"


class Bounded:
    """A finite number in ``[low, high]`` (``(low, high]`` with ``above=True``) as an argparse
    type; ``whole`` numbers are parsed as ``int``. The command line's numeric options are
    instances (``tests/test_options.py`` finds them by this class)."""

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


def integer(low: int, high: int = MAX_COUNT) -> Bounded:
    """A whole number from ``low`` to ``high``."""
    return Bounded(low, high, whole=True)


def number(low: float, high: float, *, above: bool = False) -> Bounded:
    """A finite float from ``low`` (excluded with ``above``) to ``high``."""
    return Bounded(low, high, whole=False, above=above)


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


__all__ = [
    "MAX_COUNT",
    "Bounded",
    "env_value",
    "integer",
    "launcher_ranks",
    "number",
    "one_of",
]
