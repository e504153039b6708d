"""A finished evaluation (:class:`Report`) and its outputs: per-file CSV, summary JSON, the
Markdown report and its figures."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..outputs import OutputPlan
from .metrics import METRICS, SAMPLE_RATE, SCORING_RATE
from .stats import summarize

#: the system name of the reference scored against itself
GROUND_TRUTH = "ground truth"
#: the system name of the Griffin-Lim baseline
GRIFFIN_LIM = "griffin-lim"

_INTRO = (
    "Mean over clips ± half-width of the 95% confidence interval (Student's t). "
    "↑ higher is better, ↓ lower is better; **bold** is the best system other than the "
    "ground truth (the reference scored against itself)."
)


@dataclass
class Report:
    """Per-file scores of one evaluation, and the writers of its outputs.

    Attributes:
        metrics: the metric names scored, in column order.
        rows: one dict per scored pair: ``dataset``, ``system``, ``file`` and a float per
            metric.
        plot_audio: ``(dataset, file, system) -> (reference, generated)``, the
            ``(samples,)`` audio of the clips drawn as mel figures.
        sample_rate: the rate the audio was scored at (the model's).
        command: the command line shown at the top of ``report.md`` (none when empty).
        failures: one line per file that could not be loaded or scored (listed in the report).
    """

    metrics: tuple[str, ...]
    rows: list[dict] = field(default_factory=list)
    plot_audio: dict[tuple[str, str, str], tuple[np.ndarray, np.ndarray]] = field(
        default_factory=dict
    )
    command: str = ""
    failures: list[str] = field(default_factory=list)
    sample_rate: int = SAMPLE_RATE

    def summary(self) -> dict:
        """``{dataset: {system: {metric: {"n", "mean", "ci95"}}}}`` (see :func:`summarize`)."""
        return summarize(self.rows, self.metrics)

    def output_files(self, out_dir: Path, *, plots: bool = True) -> list[Path]:
        """The files :meth:`write` writes into ``out_dir`` (the figures as far as
        :attr:`plot_audio` names them)."""
        out_dir = Path(out_dir)
        files = [out_dir / name for name in ("metrics.csv", "summary.json", "report.md")]
        if plots:
            files.append(out_dir / "summary.png")
            files += [figure_path(out_dir, *key) for key in self.plot_audio]
        return files

    def write(
        self,
        out_dir: Path,
        *,
        plots: bool = True,
        dpi: int = 100,
        outputs: OutputPlan | None = None,
    ) -> list[Path]:
        """Write the outputs into ``out_dir``; returns their paths.

        Every file is first claimed in ``outputs`` (by default a plan that refuses to replace
        an existing file; see :mod:`hifigan.outputs`), so a refused report writes nothing.

        * ``metrics.csv``: one row per (dataset, system, file) with every metric;
        * ``summary.json``: per dataset, system and metric the clip count, mean and 95%
          confidence interval half-width (Student's t over clips);
        * ``report.md``: the systems side by side per dataset, with the metrics that fail to
          rank Griffin-Lim below a trained model named;
        * with ``plots`` (needs matplotlib): ``summary.png`` and ``mels/*.png``.
        """
        out_dir = Path(out_dir)
        plan = outputs or OutputPlan()
        plan.claim_folder(out_dir)
        plan.claim_all(self.output_files(out_dir, plots=plots))
        summary = self.summary()
        written = [out_dir / "metrics.csv", out_dir / "summary.json", out_dir / "report.md"]
        plan.write_text(written[0], self.csv_text())
        plan.write_text(
            written[1],
            json.dumps(
                {
                    "metrics": list(self.metrics),
                    "sample_rate": self.sample_rate,
                    "results": summary,
                },
                indent=2,
            )
            + "\n",
        )
        figures: list[Path] = []
        if plots:
            from .figures import save_mel_figures, save_summary_chart

            figures.append(
                save_summary_chart(summary, self.metrics, out_dir / "summary.png", dpi=dpi)
            )
            figures.extend(
                save_mel_figures(
                    self.plot_audio, out_dir / "mels", dpi=dpi, sample_rate=self.sample_rate
                )
            )
        plan.write_text(
            written[2], self.markdown(summary, [f.relative_to(out_dir) for f in figures])
        )
        return written + figures

    def csv_text(self) -> str:
        """``metrics.csv``: a header and one line per row, floats to 6 significant digits."""
        buffer = io.StringIO()
        writer = csv.DictWriter(
            buffer, fieldnames=["dataset", "system", "file", *self.metrics], lineterminator="\n"
        )
        writer.writeheader()
        for row in self.rows:
            writer.writerow(
                {k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()}
            )
        return buffer.getvalue()

    def markdown(self, summary: dict, figures: Sequence[Path] = ()) -> str:
        """``report.md`` from :meth:`summary`'s dict, linking ``figures`` (relative paths)."""
        lines = ["# Objective evaluation", ""]
        if self.command:
            lines += ["```bash", self.command, "```", ""]
        lines += [_INTRO, f"Scored at {self.sample_rate} Hz.", ""]
        for dataset, systems in summary.items():
            lines += _dataset_section(dataset, systems, self.metrics)
        if self.failures:
            lines += [f"{len(self.failures)} file(s) could not be scored and are left out:", ""]
            lines += [f"* {line}" for line in self.failures] + [""]
        if figures:
            lines += ["## Figures", ""]
            for fig in figures:
                lines += [f"![{fig.stem}]({fig.as_posix()})", ""]
        lines += ["## Metrics", "", "| metric | rate | what |", "|---|---|---|"]
        for m in self.metrics:
            rate = METRICS[m].rate
            rate = f"{self.sample_rate / 1000:g} kHz" if rate == SCORING_RATE else rate
            lines.append(f"| {METRICS[m].label} | {rate} | {METRICS[m].description} |")
        lines += ["", "Definitions, licences and model sources: docs/evaluation.md.", ""]
        return "\n".join(lines)


def figure_path(out_dir: Path, dataset: str, name: str, system: str) -> Path:
    """Where :meth:`Report.write` puts the mel figure of one clip of one system."""
    from .figures import mel_figure_name

    return Path(out_dir) / "mels" / mel_figure_name(dataset, name, system)


def blind_metrics(systems: dict) -> dict[str, list[str]]:
    """For each trained system of one dataset's summary (``{system: {metric: stats}}``), the
    metrics on which Griffin-Lim scores as well or better; empty without Griffin-Lim."""
    if GRIFFIN_LIM not in systems:
        return {}
    blind: dict[str, list[str]] = {}
    for system, scores in systems.items():
        if system in (GRIFFIN_LIM, GROUND_TRUTH):
            continue
        for metric, stats in scores.items():
            gl = systems[GRIFFIN_LIM].get(metric)
            if gl is not None and not METRICS[metric].better(stats["mean"], gl["mean"]):
                blind.setdefault(system, []).append(metric)
    return blind


def _best_systems(systems: dict, metrics: Sequence[str]) -> dict[str, str]:
    """Metric -> the system with the best mean, the ground truth left out."""
    best = {}
    for m in metrics:
        candidates = [(s, v[m]["mean"]) for s, v in systems.items() if s != GROUND_TRUTH and m in v]
        if candidates:
            pick = max if METRICS[m].higher_is_better else min
            best[m] = pick(candidates, key=lambda item: item[1])[0]
    return best


def _dataset_section(dataset: str, systems: dict, metrics: Sequence[str]) -> list[str]:
    """One dataset's Markdown: a table of systems by metrics, then the metrics blind to
    Griffin-Lim."""
    n = max((s["n"] for scores in systems.values() for s in scores.values()), default=0)
    lines = [f"## {dataset} ({n} clips)", ""]
    metrics = [m for m in metrics if any(m in s for s in systems.values())]
    header = "| system | " + " | ".join(
        f"{METRICS[m].label} {'↑' if METRICS[m].higher_is_better else '↓'}" for m in metrics
    )
    lines += [header + " |", "|---|" + "---|" * len(metrics)]
    best = _best_systems(systems, metrics)
    for system, scores in systems.items():
        cells = []
        for m in metrics:
            if m not in scores:
                cells.append("–")
                continue
            text = _format(scores[m]["mean"], scores[m]["ci95"])
            cells.append(f"**{text}**" if best.get(m) == system else text)
        lines.append(f"| {system} | " + " | ".join(cells) + " |")
    lines.append("")
    for system, names in blind_metrics(systems).items():
        labels = ", ".join(METRICS[m].label for m in names)
        lines.append(f"Griffin-Lim scores as well as or better than **{system}** on: {labels}.")
    lines.append("")
    return lines


def _format(mean: float, half: float | None) -> str:
    digits = 3 if abs(mean) < 100 else 1
    if half is None:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {half:.{digits}f}"
