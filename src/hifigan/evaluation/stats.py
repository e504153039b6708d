"""Statistics of a report: the mean over clips and the half-width of its 95% confidence interval
(Student's t)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..extras import available


def t_quantile_975(dof: int) -> float:
    """The 97.5% quantile of Student's t with ``dof`` degrees of freedom."""
    if available("scipy"):
        from scipy.stats import t

        return float(t.ppf(0.975, dof))
    # Cornish-Fisher expansion: within 0.2% for dof >= 10, 4% at dof 3
    z = 1.959963984540054
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    return z + g1 / dof + g2 / dof**2


def mean_ci95(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and 95% confidence-interval half-width (None for fewer than two values)."""
    x = np.asarray(values, dtype=np.float64)
    mean = float(x.mean())
    if x.shape[0] < 2:
        return mean, None
    half = t_quantile_975(x.shape[0] - 1) * float(x.std(ddof=1)) / math.sqrt(x.shape[0])
    return mean, half


def summarize(rows: Sequence[dict], metrics: Sequence[str]) -> dict:
    """``{dataset: {system: {metric: {"n", "mean", "ci95"}}}}`` of a report's rows.

    Each row holds ``dataset``, ``system`` and a score (or None) per metric; datasets and systems
    keep the order in which the rows first name them, and a metric that no row of a system
    scored is left out of that system's entry.
    """
    groups: dict[str, dict[str, list[dict]]] = {}
    for row in rows:
        groups.setdefault(row["dataset"], {}).setdefault(row["system"], []).append(row)
    out: dict = {}
    for dataset, systems in groups.items():
        out[dataset] = {}
        for system, group in systems.items():
            scores = {}
            for metric in metrics:
                values = [r[metric] for r in group if r.get(metric) is not None]
                if values:
                    mean, half = mean_ci95(values)
                    scores[metric] = {"n": len(values), "mean": mean, "ci95": half}
            out[dataset][system] = scores
    return out
