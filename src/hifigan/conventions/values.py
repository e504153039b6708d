"""Value compression, its inverse, and normalisation statistics files.

All functions work on float tensors of any shape (``(n_mels, frames)`` in practice); the inverse
functions return the linear mel (magnitude or power, as the convention says), non-negative.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from ..errors import InputError
from ..extras import require
from ..io import FILE_KINDS, check_input_budget, read_npy, sniff_file

if TYPE_CHECKING:  # annotations only: spec imports this module
    from .spec import Compression, Convention


def compress(x: Tensor, c: Compression) -> Tensor:
    """Linear mel ``x`` (non-negative) -> stored values of compression ``c``."""
    kind = c.kind
    if kind == "ln_clamp":
        return torch.log(torch.clamp(x, min=c.floor))
    if kind == "ln_add":
        return torch.log(x + c.floor)
    if kind == "log10_clamp":
        return torch.log10(torch.clamp(x, min=c.floor))
    if kind == "log10_add":
        return torch.log10(x + c.floor)
    db = c.gain_db * torch.log10(torch.clamp(x, min=c.floor)) - c.ref_level_db
    if kind == "db":
        return db
    unit = (db - c.min_level_db) / -c.min_level_db
    if c.symmetric:
        out = 2 * c.max_abs_value * unit - c.max_abs_value
        return torch.clamp(out, -c.max_abs_value, c.max_abs_value) if c.clip else out
    out = c.max_abs_value * unit
    return torch.clamp(out, 0.0, c.max_abs_value) if c.clip else out


def expand(v: Tensor, c: Compression) -> Tensor:
    """Stored values -> linear mel: the inverse of :func:`compress` above its floor (values at
    the floor, or clipped, come back as the floor or the clip level)."""
    kind = c.kind
    if kind in ("ln_clamp", "ln_add"):
        x = torch.exp(v)
    elif kind in ("log10_clamp", "log10_add"):
        x = torch.pow(10.0, v)
    else:
        db = v
        if kind == "db_normalized":
            unit = (
                (v + c.max_abs_value) / (2 * c.max_abs_value)
                if c.symmetric
                else v / c.max_abs_value
            )
            db = unit * -c.min_level_db + c.min_level_db
        x = torch.pow(10.0, (db + c.ref_level_db) / c.gain_db)
    if kind.endswith("_add"):
        return torch.clamp(x - c.floor, min=0.0)
    return x


def floor_value(c: Compression) -> float:
    """The smallest stored value (what a silent band reads); for ``*_add`` that of zero."""
    if c.kind == "db_normalized" and c.clip:
        return -c.max_abs_value if c.symmetric else 0.0
    return float(compress(torch.tensor(0.0, dtype=torch.float64), c))


def floor_linear(c: Compression) -> float:
    """The linear level below which compression ``c`` keeps no information."""
    if c.kind.endswith("_add"):
        return 0.0
    return float(expand(torch.tensor(floor_value(c), dtype=torch.float64), c))


# ---------------------------------------------------------------------- normalisation stats
@dataclass(frozen=True)
class MelStats:
    """Per-band ``mean`` and ``scale`` (standard deviation), each of shape ``(n_mels,)``:
    normalised values are ``(v - mean) / scale``."""

    mean: np.ndarray
    scale: np.ndarray
    source: str = "stats"

    def normalize(self, v: Tensor) -> Tensor:
        mean, scale = self._columns(v)
        return (v - mean) / scale

    def denormalize(self, v: Tensor) -> Tensor:
        mean, scale = self._columns(v)
        return v * scale + mean

    def _columns(self, v: Tensor) -> tuple[Tensor, Tensor]:
        if v.shape[-2] != self.mean.shape[0]:
            raise InputError(
                f"the stats hold {self.mean.shape[0]} bands, the mel has {v.shape[-2]}",
                self.source,
            )
        mean = torch.as_tensor(self.mean, dtype=v.dtype)[:, None]
        return mean, torch.as_tensor(self.scale, dtype=v.dtype)[:, None]


def load_stats(path: str | Path) -> MelStats:
    """Read normalisation statistics.

    Accepted: ParallelWaveGAN's ``stats.h5`` (datasets ``mean`` and ``scale``; needs h5py), a
    ``.npy`` of shape ``(2, n_mels)`` (mean, scale), ESPnet's ``feats_stats.npz`` (``count``,
    ``sum``, ``sum_square``; scale ``sqrt(max(var, 1e-20))`` as ESPnet's GlobalMVN), or an
    ``.npz`` with ``mean`` and ``scale``.
    """
    path = Path(path)
    if not path.exists():
        raise InputError("stats file not found", path)
    if path.is_dir():
        raise InputError("is a folder, not a stats file", path)
    kind = sniff_file(path)
    if kind is not None and kind not in ("hdf5", "npy", "npz"):
        raise InputError(
            f"is {FILE_KINDS[kind]}, not a stats file (.h5, a (2, n_mels) .npy or .npz)", path
        )
    suffix = path.suffix.lower()
    try:
        if suffix in (".h5", ".hdf5"):
            mean, scale = _read_h5(path)
        elif suffix == ".npy":
            arr = read_npy(path, "stats file")
            if arr.ndim != 2 or arr.shape[0] != 2:
                raise InputError(
                    f"a .npy stats file must have shape (2, n_mels), got {arr.shape}", path
                )
            mean, scale = arr[0], arr[1]
        elif suffix == ".npz":
            mean, scale = _read_npz(path)
        else:
            raise InputError("stats must be .h5 (ParallelWaveGAN), .npy (2, n_mels) or .npz", path)
    except InputError:
        raise
    except Exception as e:  # unreadable files raise many types
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise InputError(f"cannot read stats ({reason})", path) from None
    mean = np.asarray(mean, dtype=np.float64).reshape(-1)
    scale = np.asarray(scale, dtype=np.float64).reshape(-1)
    if mean.shape != scale.shape or not (np.isfinite(mean).all() and np.isfinite(scale).all()):
        raise InputError("stats mean and scale must be finite and of equal length", path)
    if (scale <= 0).any():
        raise InputError("stats scale must be positive", path)
    return MelStats(mean=mean, scale=scale, source=str(path))


def _read_h5(path: Path) -> tuple[np.ndarray, np.ndarray]:
    require(
        "toolkits",
        "h5py",
        purpose="reading a stats.h5 file (or a .npy of shape (2, n_mels): mean and scale)",
        error=InputError,
        path=path,
    )
    import h5py

    with h5py.File(path, "r") as f:
        if "mean" not in f or "scale" not in f:
            raise InputError(f"expected datasets 'mean' and 'scale', found {list(f)}", path)
        for key in ("mean", "scale"):
            data = f[key]
            size = getattr(data, "size", None)
            if size is None:  # a group, not a dataset
                raise InputError(f"'{key}' must be a dataset of per-band values", path)
            check_input_budget(size * data.dtype.itemsize, f"dataset '{key}'", path)
        return f["mean"][()], f["scale"][()]


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    import zipfile

    with zipfile.ZipFile(path) as z:
        # the arrays' sizes, uncompressed, before any is read
        check_input_budget(sum(i.file_size for i in z.infolist()), "the archive's arrays", path)
    with np.load(path, allow_pickle=False) as data:
        keys = set(data.files)
        if {"count", "sum", "sum_square"} <= keys:
            count = float(np.asarray(data["count"]).reshape(-1)[0])
            mean = data["sum"] / count
            var = data["sum_square"] / count - mean * mean
            return mean, np.sqrt(np.maximum(var, 1e-20))
        if {"mean", "scale"} <= keys:
            return data["mean"], data["scale"]
    raise InputError(
        f"expected arrays count, sum, sum_square (ESPnet) or mean, scale; found {sorted(keys)}",
        path,
    )


def stats_from_mels(mels: list[np.ndarray], convention: Convention) -> MelStats:
    """Per-band mean and scale over the frames of ``mels`` (of ``convention``'s bands)."""
    frames = np.concatenate([np.asarray(m, dtype=np.float64) for m in mels], axis=1)
    if frames.shape[0] != convention.n_mels:
        raise InputError(
            f"mels have {frames.shape[0]} bands, {convention.name} has {convention.n_mels}"
        )
    return MelStats(mean=frames.mean(axis=1), scale=np.maximum(frames.std(axis=1), 1e-10))
