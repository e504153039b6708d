"""Which stimuli each rater hears, and in what order.

The design is a rotation: all ``utterances × conditions`` trials (a condition is a system in a
MOS test, a pair of systems in an A/B test) are laid out as a cyclic Latin square: block ``b``
pairs utterance ``i`` with condition ``(i + b) mod k``. Each block holds every utterance once
and every condition equally often (within one). Rater number ``r`` takes the ``per_rater``
trials starting at ``r * per_rater`` on that cycle, so consecutive raters tile it and every
trial, hence every system, is rated about equally often. A rater's trials are then shuffled with
a seed derived from the rater id, under the constraint that the same utterance never comes
twice in a row (unless the rater's set leaves no other choice).
"""

from __future__ import annotations

import hashlib
import itertools
import random
from collections.abc import Hashable, Sequence
from typing import TypeVar

T = TypeVar("T")

Trial = tuple[str, ...]
"""A planned trial: ``(utterance, system)`` in MOS mode, ``(utterance, left, right)`` in A/B."""


def latin_cycle(n_utterances: int, n_conditions: int) -> list[tuple[int, int]]:
    """All ``(utterance, condition)`` index pairs, block ``b`` pairing utterance ``i`` with
    condition ``(i + b) % n_conditions``."""
    return [(i, (i + b) % n_conditions) for b in range(n_conditions) for i in range(n_utterances)]


def rater_window(cycle: Sequence[T], per_rater: int, rater_number: int) -> list[T]:
    """The ``per_rater`` items of ``cycle`` from ``rater_number * per_rater`` on (wrapping)."""
    start = rater_number * per_rater
    return [cycle[(start + j) % len(cycle)] for j in range(min(per_rater, len(cycle)))]


def rater_seed(rater: str, mode: str) -> int:
    """A stable 64-bit seed for a rater's random choices (not Python's salted ``hash``)."""
    return int.from_bytes(hashlib.sha256(f"{mode}\0{rater}".encode()).digest()[:8], "big")


def _feasible(counts: dict[Hashable, int], previous: Hashable | None) -> bool:
    """Whether items with these per-key counts can follow ``previous`` with no key twice in a
    row: every key fits in every other slot, and ``previous``'s key cannot take the first."""
    total = sum(counts.values())
    return all(
        n <= (total // 2 if key == previous else (total + 1) // 2) for key, n in counts.items()
    )


def spaced_shuffle(items: Sequence[T], key, rng: random.Random) -> list[T]:
    """A random order of ``items`` in which no two neighbours share ``key(item)``.

    Each step draws a key other than the previous one, weighted by how many of its items are
    left, among the keys that keep the rest arrangeable; when none does (a key holds more than
    half the items), repeats are unavoidable and the most frequent other key goes next.
    """
    groups: dict[Hashable, list[T]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    for group in groups.values():
        rng.shuffle(group)
    order: list[T] = []
    previous = None
    while groups:
        counts = {k: len(g) for k, g in groups.items()}
        candidates = []
        for k in groups:
            if k == previous:
                continue
            rest = dict(counts)
            rest[k] -= 1
            if _feasible({c: n for c, n in rest.items() if n}, k):
                candidates.append(k)
        if candidates:
            chosen = rng.choices(candidates, weights=[counts[k] for k in candidates])[0]
        else:
            chosen = max(groups, key=lambda k: (k != previous, counts[k]))
        order.append(groups[chosen].pop())
        if not groups[chosen]:
            del groups[chosen]
        previous = chosen
    return order


def mos_plan(
    utterances: Sequence[str], systems: Sequence[str], per_rater: int, rater: str, number: int
) -> list[Trial]:
    """The ``(utterance, system)`` trials of MOS rater ``rater``, the ``number``-th to start."""
    cycle = latin_cycle(len(utterances), len(systems))
    trials = [(utterances[i], systems[c]) for i, c in rater_window(cycle, per_rater, number)]
    return spaced_shuffle(trials, key=lambda t: t[0], rng=random.Random(rater_seed(rater, "mos")))


def ab_plan(
    utterances: Sequence[str], systems: Sequence[str], per_rater: int, rater: str, number: int
) -> list[Trial]:
    """The ``(utterance, left, right)`` trials of A/B rater ``rater``: each pair of systems on
    one utterance, the side of each system drawn at random."""
    pairs = list(itertools.combinations(systems, 2))
    cycle = latin_cycle(len(utterances), len(pairs))
    rng = random.Random(rater_seed(rater, "ab"))
    trials = []
    for i, c in rater_window(cycle, per_rater, number):
        a, b = pairs[c]
        trials.append((utterances[i], *((b, a) if rng.random() < 0.5 else (a, b))))
    return spaced_shuffle(trials, key=lambda t: t[0], rng=rng)


def plan_size(mode: str, n_utterances: int, n_systems: int) -> int:
    """How many distinct trials a test has: utterances × systems, or × pairs of systems."""
    conditions = n_systems if mode == "mos" else n_systems * (n_systems - 1) // 2
    return n_utterances * conditions
