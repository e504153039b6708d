"""Mel-spectrogram figures (matplotlib, imported lazily; install the ``train`` or ``eval`` extra).

One figure type serves TensorBoard during training, evaluation reports and the demo: the real
and generated log-mels and their difference, on a shared colour scale.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .extras import require
from .io import atomic_path

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def pyplot():
    """``matplotlib.pyplot`` on the file-only Agg backend, or a one-line error naming the extra."""
    require("eval", "matplotlib", purpose="plotting")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def mel_comparison_figure(
    real: np.ndarray,
    generated: np.ndarray | None = None,
    *,
    title: str = "",
    hop_seconds: float | None = None,
) -> Figure:
    """A figure with the real log-mel, the generated one and ``generated - real``.

    Args:
        real: ``(n_mels, frames)`` log-mel.
        generated: ``(n_mels, frames')`` log-mel or None (then only ``real`` is drawn); both
            are cropped to the shorter length.
        hop_seconds: seconds per frame, to label the time axis in seconds (frames otherwise).
    """
    plt = pyplot()
    panels = [("real", real)]
    if generated is not None:
        n = min(real.shape[1], generated.shape[1])
        real, generated = real[:, :n], generated[:, :n]
        panels = [("real", real), ("generated", generated), ("generated - real", generated - real)]
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 2.4 * len(panels)), squeeze=False)
    vmin, vmax = float(real.min()), float(real.max())
    extent = None
    if hop_seconds is not None:
        extent = (0.0, real.shape[1] * hop_seconds, 0, real.shape[0])
    for ax, (name, data) in zip(axes[:, 0], panels):
        if name.startswith("generated -"):  # a difference: diverging colours centred on 0
            lim = max(float(np.abs(data).max()), 1e-6)
            cmap, low, high = "RdBu_r", -lim, lim
        else:
            cmap, low, high = "magma", vmin, vmax
        im = ax.imshow(
            data, origin="lower", aspect="auto", cmap=cmap, vmin=low, vmax=high, extent=extent
        )
        ax.set_ylabel(f"{name}\nmel band")
        fig.colorbar(im, ax=ax, pad=0.01)
    axes[-1, 0].set_xlabel("time (s)" if hop_seconds is not None else "frame")
    if title:
        axes[0, 0].set_title(title)
    fig.tight_layout()
    return fig


def save_figure(fig: Figure, path: str | Path, dpi: int = 100) -> None:
    """Save a figure as PNG, atomically, and close it."""
    plt = pyplot()
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=dpi)
    finally:
        plt.close(fig)
