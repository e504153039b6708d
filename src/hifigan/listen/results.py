"""Listening-test results: MOS with 95% confidence intervals, A/B preference shares.

* MOS: per system, the mean of all its ratings and the half-width of the 95% confidence
  interval from Student's t with ``n - 1`` degrees of freedom,
  ``t(0.975, n - 1) * s / sqrt(n)`` (``s`` the sample standard deviation), pooled over raters
  and utterances as in the paper's Table 1.
* A/B: per pair of systems (system 1 and system 2, in :func:`system_order`), the share of
  trials preferring each system and of "no preference", each with a 95% Wilson score
  interval, and a two-sided sign test of the two systems' wins (ties left out). Which system
  played as A or B is drawn per trial, so the tables name the systems, never the sides; how
  often raters chose the clip heard as A or as B is reported apart, as a check of side bias.
"""

from __future__ import annotations

import csv
import html
import io
import math
from dataclasses import dataclass
from pathlib import Path

from ..evaluation.render import GROUND_TRUTH
from ..evaluation.stats import mean_ci95
from ..extras import unavailable
from ..io import warn
from ..outputs import OutputPlan

Z95 = 1.959963984540054


@dataclass
class MosRow:
    system: str
    ratings: int
    raters: int
    mean: float
    ci95: float | None  # half-width; None for a single rating


@dataclass
class AbRow:
    """One pair of systems: wins of each system wherever it was heard, and the answers by the
    side heard (``chose_a``: the first clip played, ``chose_b``: the second)."""

    system_1: str
    system_2: str
    trials: int
    raters: int
    prefer_1: int
    prefer_2: int
    no_preference: int
    chose_a: int = 0
    chose_b: int = 0

    def share(self, count: int) -> tuple[float, float, float]:
        """``(share, low, high)``: a count's share of the trials and its Wilson interval."""
        return (count / self.trials, *wilson_interval(count, self.trials))

    @property
    def p_value(self) -> float | None:
        return sign_test(self.prefer_1, self.prefer_2)


def system_order(names: set[str], given: list[str]) -> list[str]:
    """The ground truth first, then the systems in the order given, then any others."""
    head = [GROUND_TRUTH] + [s for s in given if s != GROUND_TRUTH]
    return [s for s in head if s in names] + sorted(names - set(head))


def mos_results(ratings: list[dict], given_order: list[str] = ()) -> list[MosRow]:
    """One :class:`MosRow` per system from the ``ratings`` rows of a MOS test."""
    rows = []
    for system in system_order({r["system"] for r in ratings}, list(given_order)):
        mine = [r for r in ratings if r["system"] == system]
        mean, half = mean_ci95([r["score"] for r in mine])
        rows.append(MosRow(system, len(mine), len({r["rater"] for r in mine}), mean, half))
    return rows


def ab_results(ratings: list[dict], given_order: list[str] = ()) -> list[AbRow]:
    """One :class:`AbRow` per pair of systems from the ``ratings`` rows of an A/B test; each
    pair is oriented by :func:`system_order` whichever side the raters heard it on."""
    names = {r["system"] for r in ratings} | {r["system_b"] for r in ratings}
    rank = {s: i for i, s in enumerate(system_order(names, list(given_order)))}
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in ratings:
        pair = tuple(sorted((r["system"], r["system_b"]), key=rank.__getitem__))
        groups.setdefault(pair, []).append(r)
    rows = []
    for (a, b), mine in sorted(groups.items(), key=lambda g: (rank[g[0][0]], rank[g[0][1]])):
        winners = [
            {"A": r["system"], "B": r["system_b"]}.get(r["choice"]) for r in mine
        ]  # None: no preference
        rows.append(
            AbRow(
                a,
                b,
                len(mine),
                len({r["rater"] for r in mine}),
                winners.count(a),
                winners.count(b),
                winners.count(None),
                sum(r["choice"] == "A" for r in mine),
                sum(r["choice"] == "B" for r in mine),
            )
        )
    return rows


def wilson_interval(count: int, n: int) -> tuple[float, float]:
    """The 95% Wilson score interval of a proportion ``count / n``."""
    p = count / n
    denominator = 1 + Z95**2 / n
    centre = (p + Z95**2 / (2 * n)) / denominator
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def sign_test(wins_a: int, wins_b: int) -> float | None:
    """Two-sided exact binomial test of ``wins_a`` against ``wins_b`` (p = 1/2)."""
    n = wins_a + wins_b
    if n == 0:
        return None
    tail = sum(math.comb(n, i) for i in range(min(wins_a, wins_b) + 1)) / 2**n
    return min(1.0, 2 * tail)


# ---------------------------------------------------------------------- text and files
def format_mos(row: MosRow) -> str:
    """``4.45 (±0.06)``, as in the paper's Table 1."""
    return f"{row.mean:.2f} (±{row.ci95:.2f})" if row.ci95 is not None else f"{row.mean:.2f} (–)"


def mos_cells(rows: list[MosRow]) -> list[list[str]]:
    """The MOS table as text cells, its header first."""
    header = ["Model", "MOS (CI)", "ratings", "raters"]
    return [header] + [[r.system, format_mos(r), str(r.ratings), str(r.raters)] for r in rows]


def _pct(row: AbRow, count: int) -> str:
    share, low, high = row.share(count)
    return f"{100 * share:.0f}% ({100 * low:.0f}-{100 * high:.0f})"


def ab_cells(rows: list[AbRow]) -> list[list[str]]:
    """The A/B table as text cells, its header first: each preference cell names its system
    (``v1: 58% (32-81)``), and the last column gives the answers by the side heard."""
    header = ["system 1", "system 2", "prefer system 1", "no preference", "prefer system 2"]
    table = [[*header, "trials", "raters", "sign test p", "chose A / B (as heard)"]]
    for r in rows:
        p = "–" if r.p_value is None else f"{r.p_value:.3g}"
        shares = [
            f"{r.system_1}: {_pct(r, r.prefer_1)}",
            _pct(r, r.no_preference),
            f"{r.system_2}: {_pct(r, r.prefer_2)}",
        ]
        sides = f"{100 * r.chose_a / r.trials:.0f}% / {100 * r.chose_b / r.trials:.0f}%"
        table.append([r.system_1, r.system_2, *shares, str(r.trials), str(r.raters), p, sides])
    return table


def markdown_table(cells: list[list[str]]) -> str:
    """Cells (header first) as a Markdown table."""
    lines = ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join([lines[0], "|" + " --- |" * len(cells[0]), *lines[1:]])


def html_table(cells: list[list[str]]) -> str:
    """Cells (header first) as an HTML table, escaped."""

    def row(values: list[str], tag: str) -> str:
        return "<tr>" + "".join(f"<{tag}>{html.escape(v)}</{tag}>" for v in values) + "</tr>"

    body = "\n".join(row(values, "td") for values in cells[1:])
    return f"<table>\n<thead>{row(cells[0], 'th')}</thead>\n<tbody>\n{body}\n</tbody>\n</table>"


def mos_csv(rows: list[MosRow]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["system", "mos", "ci95", "ci_low", "ci_high", "ratings", "raters"])
    for r in rows:
        half = "" if r.ci95 is None else f"{r.ci95:.6f}"
        low = "" if r.ci95 is None else f"{r.mean - r.ci95:.6f}"
        high = "" if r.ci95 is None else f"{r.mean + r.ci95:.6f}"
        writer.writerow([r.system, f"{r.mean:.6f}", half, low, high, r.ratings, r.raters])
    return buffer.getvalue()


def ab_csv(rows: list[AbRow]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = ["system_1", "system_2", "trials", "raters"]
    for answer in ("prefer_system_1", "no_preference", "prefer_system_2"):
        header += [answer, f"{answer}_low", f"{answer}_high"]
    writer.writerow([*header, "sign_test_p", "chose_a_as_heard", "chose_b_as_heard"])
    for r in rows:
        cells: list = [r.system_1, r.system_2, r.trials, r.raters]
        for count in (r.prefer_1, r.no_preference, r.prefer_2):
            cells += [f"{x:.6f}" for x in r.share(count)]
        p = "" if r.p_value is None else f"{r.p_value:.6g}"
        sides = [f"{r.chose_a / r.trials:.6f}", f"{r.chose_b / r.trials:.6f}"]
        writer.writerow([*cells, p, *sides])
    return buffer.getvalue()


def _plots_available() -> bool:
    missing = unavailable("eval", "matplotlib", purpose="a results plot")
    if missing is not None:
        warn(f"no plot written: {missing}")
        return False
    return True


def plot_mos(rows: list[MosRow], path: Path) -> None:
    """A bar per system with its 95% interval, on the 1-5 scale."""
    from ..plots import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(rows), 3.2))
    ax.bar(
        range(len(rows)),
        [r.mean for r in rows],
        yerr=[r.ci95 or 0.0 for r in rows],
        capsize=4,
        color=["#7a7a7a" if r.system == GROUND_TRUTH else "#3b6ea8" for r in rows],
    )
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([r.system for r in rows], rotation=20, ha="right", fontsize=8)
    ax.set_ylim(1, 5)
    ax.set_ylabel("MOS (95% CI)")
    fig.tight_layout()
    save_figure(fig, path)


def plot_ab(rows: list[AbRow], path: Path) -> None:
    """One stacked bar per pair ``system 1 vs system 2``: prefer system 1, no preference,
    prefer system 2."""
    from ..plots import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 0.9 + 0.5 * len(rows)))
    labels = [f"{r.system_1} vs {r.system_2}" for r in rows]
    left = [0.0] * len(rows)
    parts = [
        ("prefer system 1", "#3b6ea8", "prefer_1"),
        ("no preference", "#bbbbbb", "no_preference"),
    ]
    for label, colour, attr in [*parts, ("prefer system 2", "#c8733b", "prefer_2")]:
        shares = [getattr(r, attr) / r.trials for r in rows]
        ax.barh(labels, shares, left=left, color=colour, label=label)
        left = [x + s for x, s in zip(left, shares)]
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, fontsize=8, frameon=False)
    fig.tight_layout()
    save_figure(fig, path)


def write_results(
    mos: list[MosRow],
    ab: list[AbRow],
    out_dir: Path,
    *,
    plots: bool = True,
    outputs: OutputPlan | None = None,
) -> list[Path]:
    """``results.csv`` and ``mos.png`` (MOS), ``results-ab.csv`` and ``ab.png`` (A/B).

    All of them are claimed in ``outputs`` first (by default a plan that refuses to replace
    an existing file; see :mod:`hifigan.outputs`), so a refusal writes none of them."""
    out_dir = Path(out_dir)
    written = []
    jobs = [(mos, "results.csv", mos_csv, "mos.png", plot_mos)]
    jobs.append((ab, "results-ab.csv", ab_csv, "ab.png", plot_ab))
    jobs = [job for job in jobs if job[0]]
    plots = plots and bool(jobs) and _plots_available()
    plan = outputs or OutputPlan()
    plan.claim_folder(out_dir)
    plan.claim_all(
        out_dir / name
        for _, csv_name, _, png_name, _ in jobs
        for name in (csv_name, png_name)
        if plots or name == csv_name
    )
    for rows, csv_name, to_csv, png_name, plot in jobs:
        plan.write_text(out_dir / csv_name, to_csv(rows))
        written.append(out_dir / csv_name)
        if plots:
            plot(rows, out_dir / png_name)
            written.append(out_dir / png_name)
    return written


def results_html(mos: list[MosRow], ab: list[AbRow]) -> str:
    """The results as HTML tables (a fragment for the results page)."""
    parts = []
    if mos:
        parts += ["<h2>Mean opinion score</h2>", html_table(mos_cells(mos))]
    if ab:
        parts += ["<h2>A/B preference</h2>", html_table(ab_cells(ab))]
    return "\n".join(parts) or '<p class="empty">No ratings yet.</p>'
