"""The evaluation report's figures: a summary chart across systems and metrics, and per-clip mel
comparisons (drawn by :func:`hifigan.plots.mel_comparison_figure`). Needs matplotlib."""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..io import atomic_path
from ..plots import mel_comparison_figure, pyplot, save_figure
from .metrics import METRICS, SAMPLE_RATE
from .spectral import loss_mel


def summary_figure(summary: dict, metrics: Sequence[str]):
    """One panel per metric; in each, a group of bars per dataset, one bar per system, with
    the 95% confidence interval as error bars. ``summary`` is :meth:`Report.summary`'s dict."""
    plt = pyplot()
    metrics = [m for m in metrics if any(m in s for d in summary.values() for s in d.values())]
    datasets = list(summary)
    systems = list(dict.fromkeys(s for d in summary.values() for s in d))
    cols = min(4, max(1, len(metrics)))
    rows = -(-len(metrics) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    colours = plt.get_cmap("tab10")
    width = 0.8 / max(1, len(systems))
    for ax, metric in zip(axes.flat, metrics):
        for j, system in enumerate(systems):
            means, errors, xs = [], [], []
            for i, dataset in enumerate(datasets):
                stats = summary[dataset].get(system, {}).get(metric)
                if stats is None:
                    continue
                xs.append(i + (j - (len(systems) - 1) / 2) * width)
                means.append(stats["mean"])
                errors.append(stats["ci95"] or 0.0)
            ax.bar(xs, means, width, yerr=errors, capsize=2, color=colours(j % 10), label=system)
        if metric in ("pesq", "visqol", "dnsmos"):  # MOS-like scales start at 1
            ax.set_ylim(bottom=1.0)
        info = METRICS[metric]
        ax.set_title(f"{info.label} {'↑' if info.higher_is_better else '↓'}", fontsize=9)
        ax.set_xticks(range(len(datasets)))
        ax.set_xticklabels(datasets, fontsize=7)
        ax.tick_params(axis="y", labelsize=7)
    for ax in list(axes.flat)[len(metrics) :]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(
        handles, labels, loc="lower center", ncol=min(len(systems), 5), fontsize=8, frameon=False
    )
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig


def save_summary_chart(
    summary: dict, metrics: Sequence[str], path: Path, *, dpi: int = 100
) -> Path:
    """Save :func:`summary_figure` as a PNG at ``path``, atomically; returns ``path``."""
    save_figure(summary_figure(summary, metrics), path, dpi=dpi)
    return Path(path)


def save_palette_png(fig, path: Path, *, dpi: int = 100, colors: int = 96) -> None:
    """Save a figure as a palette PNG of ``colors`` colours (about 4x smaller than RGB for
    spectrograms), atomically, and close it."""
    from PIL import Image

    plt = pyplot()
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=dpi)
    finally:
        plt.close(fig)
    buffer.seek(0)
    image = Image.open(buffer).convert("RGB").quantize(colors=colors)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG", optimize=True)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")


def mel_figure_name(dataset: str, name: str, system: str) -> str:
    """The file name of one clip's mel figure for one system: ``<dataset>_<file>_<system>.png``
    with anything but letters, digits, ``_``, ``.`` and ``-`` replaced by ``_``."""
    return f"{_slug(dataset)}_{_slug(name)}_{_slug(system)}.png"


def save_mel_figures(
    clips: dict[tuple[str, str, str], tuple[np.ndarray, np.ndarray]],
    folder: Path,
    *,
    dpi: int = 100,
    max_seconds: float = 4.0,
    sample_rate: int = SAMPLE_RATE,
) -> list[Path]:
    """For each ``(dataset, file, system) -> (reference, generated)`` pair of ``(samples,)``
    audio at ``sample_rate``, a PNG in ``folder`` (named by :func:`mel_figure_name`) with both
    loss log-mels (80 bands to Nyquist) of the first ``max_seconds`` and their difference."""
    limit = int(max_seconds * sample_rate)
    mel = loss_mel(sample_rate)
    paths = []
    for (dataset, name, system), (ref, gen) in clips.items():
        with torch.inference_mode():
            real = mel(torch.from_numpy(np.ascontiguousarray(ref[:limit]))).numpy()
            fake = mel(torch.from_numpy(np.ascontiguousarray(gen[:limit]))).numpy()
        fig = mel_comparison_figure(
            real,
            fake,
            title=f"{dataset} / {name}: {system}",
            hop_seconds=mel.hop_length / sample_rate,
        )
        path = Path(folder) / mel_figure_name(dataset, name, system)
        save_palette_png(fig, path, dpi=dpi)
        paths.append(path)
    return paths
