"""``hifigan listen --results``: known ratings give the expected MOS, t interval, preference
shares and sign test; the CSV, the plot and the errors."""

import csv
import importlib.util
import math

import numpy as np
import pytest

from hifigan.listen.store import Store

stats = pytest.importorskip("scipy.stats")

# per system: (rater, score) pairs, chosen so that the means and spreads differ
SCORES = {
    "ground truth": [("ann", 5), ("ann", 4), ("bob", 5), ("bob", 5), ("cy", 4), ("cy", 5)],
    "v1": [("ann", 4), ("ann", 3), ("bob", 4), ("bob", 5), ("cy", 3), ("cy", 4), ("cy", 4)],
    "v2": [("ann", 1), ("bob", 2), ("bob", 3), ("cy", 2)],
}


def _seed_mos(db):
    store = Store(db)
    store.set_meta("systems", '["ground truth", "v2", "v1"]')
    trial = 0
    for system, ratings in SCORES.items():
        for rater, score in ratings:
            store.add_rating(rater, "mos", trial, (f"utt{trial % 3}", system), score=score)
            trial += 1
    store.close()


def _expected(scores):
    x = np.array(scores, dtype=float)
    half = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x))
    return x.mean(), half


def test_mos_and_t_interval(run_cli, tmp_path):
    db = tmp_path / "ratings.sqlite"
    _seed_mos(db)
    code, out, err = run_cli("listen", "--results", "--db", db, "-o", tmp_path / "out", "--no-plot")
    assert code == 0, err
    with open(tmp_path / "out" / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["system"] for r in rows] == ["ground truth", "v2", "v1"]  # the order given
    for row in rows:
        scores = [s for _, s in SCORES[row["system"]]]
        mean, half = _expected(scores)
        assert round(float(row["mos"]), 3) == round(mean, 3)
        assert round(float(row["ci95"]), 3) == round(half, 3)
        assert round(float(row["ci_low"]), 3) == round(mean - half, 3)
        assert int(row["ratings"]) == len(scores)
        assert int(row["raters"]) == len({r for r, _ in SCORES[row["system"]]})
    # Table 1 form on stdout; v1: mean 27/7 = 3.857, s = 0.690, t(6) = 2.447 -> ± 0.64
    assert "| Model | MOS (CI) | ratings | raters |" in out
    assert "| v1 | 3.86 (±0.64) | 7 | 3 |" in out


def test_plot_or_one_warning(run_cli, tmp_path, monkeypatch):
    db = tmp_path / "ratings.sqlite"
    _seed_mos(db)
    if importlib.util.find_spec("matplotlib") is not None:
        code, _, err = run_cli("listen", "--results", "--db", db)
        assert f"wrote {tmp_path / 'mos.png'}" in err
        assert code == 0 and (tmp_path / "mos.png").stat().st_size > 1000
        assert (tmp_path / "mos.png").read_bytes()[:4] == b"\x89PNG"
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "matplotlib" else find_spec(name, *a),
    )
    with pytest.warns(UserWarning, match="matplotlib is not installed") as record:
        code, _, _ = run_cli("listen", "--results", "--db", db, "-o", tmp_path / "plain")
    assert code == 0 and len(record) == 1
    assert (tmp_path / "plain" / "results.csv").exists()
    assert not (tmp_path / "plain" / "mos.png").exists()


def _wilson(k, n):
    z = stats.norm.ppf(0.975)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def test_ab_shares_intervals_and_sign_test(run_cli, tmp_path):
    db = tmp_path / "ratings.sqlite"
    store = Store(db)
    store.set_meta("systems", '["ground truth", "v1"]')
    # 12 trials of v1 against the ground truth, heard on both sides: the ground truth wins 7,
    # v1 wins 2, 3 ties
    outcomes = ["gt"] * 7 + ["v1"] * 2 + ["none"] * 3
    choices = []
    for trial, outcome in enumerate(outcomes):
        left, right = ("v1", "ground truth") if trial % 2 else ("ground truth", "v1")
        choice = (
            "none" if outcome == "none" else "A" if (left == "v1") == (outcome == "v1") else "B"
        )
        store.add_rating(f"r{trial % 4}", "ab", trial, ("utt", left, right), choice=choice)
        choices.append(choice)
    store.close()
    code, out, err = run_cli("listen", "--results", "--db", db, "--mode", "ab", "--no-plot")
    assert code == 0, err
    with open(tmp_path / "results-ab.csv") as f:
        (row,) = list(csv.DictReader(f))
    assert (row["system_1"], row["system_2"], row["trials"], row["raters"]) == (
        "ground truth",
        "v1",
        "12",
        "4",
    )
    for column, k in (("prefer_system_1", 7), ("no_preference", 3), ("prefer_system_2", 2)):
        low, high = _wilson(k, 12)
        assert round(float(row[column]), 3) == round(k / 12, 3)
        assert round(float(row[f"{column}_low"]), 3) == round(low, 3)
        assert round(float(row[f"{column}_high"]), 3) == round(high, 3)
    assert round(float(row["sign_test_p"]), 4) == round(stats.binomtest(7, 9).pvalue, 4)
    # the preference cells name their system; the sides as heard are reported apart
    header, _, line = out.splitlines()
    assert header == (
        "| system 1 | system 2 | prefer system 1 | no preference | prefer system 2 | trials "
        "| raters | sign test p | chose A / B (as heard) |"
    )
    heard_a, heard_b = choices.count("A"), choices.count("B")
    assert (heard_a, heard_b) == (5, 4)  # not the systems' 7 and 2
    assert line == (
        "| ground truth | v1 | ground truth: 58% (32-81) | 25% (9-53) | v1: 17% (5-45) | 12 | 4 "
        f"| 0.18 | {100 * heard_a / 12:.0f}% / {100 * heard_b / 12:.0f}% |"
    )
    assert float(row["chose_a_as_heard"]) == pytest.approx(heard_a / 12)
    assert float(row["chose_b_as_heard"]) == pytest.approx(heard_b / 12)
    assert not (tmp_path / "results.csv").exists()  # --mode ab: no MOS table


def test_results_errors(run_cli, tmp_path):
    code, _, err = run_cli("listen", "--results", "--db", tmp_path / "none.sqlite")
    assert (
        code == 1
        and err.strip() == f"error: {tmp_path / 'none.sqlite'}: ratings database not found"
    )
    Store(tmp_path / "empty.sqlite").close()
    code, _, err = run_cli("listen", "--results", "--db", tmp_path / "empty.sqlite")
    assert code == 1 and err.strip() == f"error: {tmp_path / 'empty.sqlite'}: no ratings yet"
    (tmp_path / "junk.sqlite").write_text("not a database at all, just text" * 10)
    code, _, err = run_cli("listen", "--results", "--db", tmp_path / "junk.sqlite")
    assert code == 1 and "junk.sqlite: not a usable ratings database" in err
    assert len(err.strip().splitlines()) == 1
