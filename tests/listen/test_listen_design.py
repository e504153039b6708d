"""The trial design: the rotation balances systems across raters, each rater's order is seeded
by their id and never plays one utterance twice in a row."""

import collections
import itertools
import random

import pytest

from hifigan.listen.design import ab_plan, latin_cycle, mos_plan, spaced_shuffle

UTTERANCES = [f"u{i:02d}" for i in range(10)]
SYSTEMS = ["ground truth", "v1", "v2", "v3"]


def test_latin_cycle_blocks_hold_every_utterance_once_and_systems_evenly():
    cycle = latin_cycle(10, 4)
    assert sorted(cycle) == sorted(itertools.product(range(10), range(4)))
    for block in range(4):
        part = cycle[10 * block : 10 * (block + 1)]
        assert sorted(i for i, _ in part) == list(range(10))
        assert sorted(collections.Counter(c for _, c in part).values()) == [2, 2, 3, 3]


@pytest.mark.parametrize("per_rater", [10, 7, 40])
def test_raters_together_rate_every_system_equally_often(per_rater):
    raters = 40 // per_rater * 3 if 40 % per_rater == 0 else 40  # whole turns of the cycle
    counts = collections.Counter()
    for number in range(raters):
        plan = mos_plan(UTTERANCES, SYSTEMS, per_rater, f"r{number}", number)
        assert len(plan) == per_rater == len(set(plan))  # no stimulus twice for one rater
        counts.update(system for _, system in plan)
    assert len(set(counts.values())) == 1, counts


def test_one_block_per_rater_hears_each_sentence_once():
    plan = mos_plan(UTTERANCES, SYSTEMS, 10, "ann", 0)
    assert sorted(u for u, _ in plan) == UTTERANCES
    assert sorted(collections.Counter(s for _, s in plan).values()) == [2, 2, 3, 3]


def test_order_is_seeded_by_the_rater_and_never_repeats_an_utterance():
    plans = {r: mos_plan(UTTERANCES, SYSTEMS, 40, r, 0) for r in ("ann", "bob", "cy")}
    assert plans["ann"] == mos_plan(UTTERANCES, SYSTEMS, 40, "ann", 0)
    assert plans["ann"] != plans["bob"] != plans["cy"]
    for plan in plans.values():
        assert sorted(plan) == sorted(itertools.product(UTTERANCES, SYSTEMS))
        assert all(a[0] != b[0] for a, b in itertools.pairwise(plan))


def test_spaced_shuffle_when_one_key_dominates():
    rng = random.Random(1)
    for _ in range(200):
        items = [("a", i) for i in range(5)] + [("b", i) for i in range(3)] + [("c", 0)]
        order = spaced_shuffle(items, key=lambda t: t[0], rng=rng)
        assert sorted(order) == sorted(items)
        assert all(x[0] != y[0] for x, y in itertools.pairwise(order)), order
    # no valid order exists: as few repeats as possible (one here)
    for _ in range(20):
        order = spaced_shuffle([1, 1, 1, 2], key=lambda x: x, rng=rng)
        assert sorted(order) == [1, 1, 1, 2]
        assert sum(x == y for x, y in itertools.pairwise(order)) == 1


def test_ab_plan_pairs_and_sides():
    left = collections.Counter()
    plan_all = []
    for number in range(6):
        plan = ab_plan(UTTERANCES, SYSTEMS, 10, f"r{number}", number)
        assert all(a != b for _, a, b in plan)
        assert all(x[0] != y[0] for x, y in itertools.pairwise(plan))
        left.update(a for _, a, _ in plan)
        plan_all += plan
    pairs = collections.Counter(frozenset(t[1:]) for t in plan_all)
    assert len(pairs) == 6 and set(pairs.values()) == {10}  # 6 raters x 10 = one full cycle
    assert sum(left.values()) == 60 and min(left.values()) > 5  # every system heard on the left
