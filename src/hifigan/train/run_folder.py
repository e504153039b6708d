"""The checkpoints of a run folder: where they are, writing and pruning them, the RNG states
they carry, starting weights and the export to the authors' files.

``RUN_DIR/checkpoints/step_XXXXXXXX.pt`` holds everything needed to resume exactly (models,
optimizers, schedulers, gradient scalers, the loop state with the data position, RNG states);
``best.pt`` holds the generator with the best validation mel L1. Both are our checkpoint format
(:func:`hifigan.checkpoint.save_checkpoint`), written atomically, so ``hifigan vocode`` and
:class:`hifigan.Vocoder` load them directly, and :func:`export_authors` turns one into the
authors' ``g_``/``do_`` files.

``RUN_DIR/train.lock`` exists while a trainer owns the folder (:class:`RunFolderLock`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import random
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from ..checkpoint import (
    export_authors_discriminators,
    export_authors_generator,
    from_authors_keys,
    generator_state,
    load_generator_weights,
    load_state_strict,
    read_checkpoint,
    resolve_config,
    save_checkpoint,
)
from ..config import HiFiGANConfig
from ..discriminators import MultiPeriodDiscriminator, MultiScaleDiscriminator
from ..errors import CheckpointError, HiFiGANError
from ..generator import Generator
from ..io import atomic_write_text

if TYPE_CHECKING:
    from .distributed import Processes
    from .setup import Run, TrainState
    from .step import Networks

_STEP_FILE = re.compile(r"^step_(\d+)\.pt$")
BEST = "best.pt"


def checkpoint_path(folder: Path, step: int) -> Path:
    return Path(folder) / f"step_{step:08d}.pt"


def list_checkpoints(folder: Path) -> list[Path]:
    """The ``step_*.pt`` files of ``folder``, oldest step first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _STEP_FILE.match(p.name))]
    return [p for _, p in sorted(found)]


def prune_checkpoints(folder: Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` step checkpoints; returns the deleted paths."""
    old = list_checkpoints(folder)[:-keep] if keep > 0 else []
    for p in old:
        p.unlink(missing_ok=True)
    return old


class Checkpointer:
    """Writes the step checkpoints and ``best.pt`` of a run (main process only) and keeps the
    newest ``keep`` step checkpoints (0 keeps all).

    ``last`` is the newest step checkpoint written (or resumed from).
    """

    def __init__(self, run: Run, nets: Networks, *, keep: int, active: bool) -> None:
        self.folder = run.checkpoints
        self.config = run.config
        self.nets = nets
        self.keep = keep
        self.active = active
        # what a resumed run must know besides the state (stored under "run")
        self.run_info = {"fine_tune_mels": str(run.fine_tune_dir) if run.fine_tune_dir else None}
        self.last = run.latest

    def save(self, state: TrainState) -> None:
        """Everything needed to resume exactly at ``state``."""
        if not self.active:
            return
        path = checkpoint_path(self.folder, state.step)
        nets = self.nets
        save_checkpoint(
            path,
            self.config,
            nets.generator,
            mpd=nets.mpd,
            msd=nets.msd,
            **nets.optimizer_states(),
            state=dataclasses.asdict(state),
            rng=rng_state(),
            run=self.run_info,
        )
        prune_checkpoints(self.folder, self.keep)
        self.last = path

    def save_best(self, step: int, val_mel_l1: float) -> None:
        """The generator, as ``best.pt``."""
        if self.active:
            save_checkpoint(
                self.folder / BEST,
                self.config,
                self.nets.generator,
                step=step,
                val_mel_l1=val_mel_l1,
            )


# ---------------------------------------------------------------------- one owner per folder
LOCK = "train.lock"


class RunFolderBusy(HiFiGANError):
    """Another trainer owns the run folder."""


class RunFolderLock:
    """The right to write a run folder: an exclusive ``flock`` on ``RUN_DIR/train.lock``,
    which holds the owner's PID and host.

    The kernel drops the lock when its process dies, however it dies (``kill -9`` included),
    so a crashed run never leaves its folder locked: the file it leaves behind is taken over
    by the next trainer. A clean release deletes the file.
    """

    def __init__(self, path: Path, fd: int, created_folder: bool) -> None:
        self.path = path
        self.fd = fd
        self.created_folder = created_folder

    @classmethod
    def acquire(cls, out: Path) -> RunFolderLock:
        """Lock ``out`` (created when missing), or raise :class:`RunFolderBusy` naming the
        process that holds it."""
        out = Path(out)
        created = not out.exists()
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise HiFiGANError(f"cannot create the run folder ({e.strerror})", out) from None
        path = out / LOCK
        while True:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError as e:
                raise HiFiGANError(f"cannot create {LOCK} ({e.strerror})", out) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _holder(fd)
                os.close(fd)
                raise RunFolderBusy(
                    f"in use by another training run ({holder}); wait for it to end, stop "
                    "it, or choose another --out",
                    out,
                ) from None
            except OSError as e:
                os.close(fd)
                raise HiFiGANError(f"cannot lock {LOCK} ({e.strerror})", out) from None
            if _names(fd, path):
                break
            os.close(fd)  # its owner deleted it while we waited: lock the new file instead
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
        return cls(path, fd, created)

    def release(self) -> None:
        """Delete the lock file, then unlock; remove the run folder again when the lock
        created it and it stayed empty (a run refused before writing anything)."""
        with contextlib.suppress(OSError):
            self.path.unlink()
        os.close(self.fd)
        if self.created_folder:
            with contextlib.suppress(OSError):
                self.path.parent.rmdir()


def _names(fd: int, path: Path) -> bool:
    """Whether ``path`` is still the file open as ``fd``."""
    try:
        a, b = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _holder(fd: int) -> str:
    """``PID 1234`` (``on HOST`` when another machine's) from a locked lock file; its owner
    writes it just after locking, so an empty file is read again for a moment."""
    text = ""
    for _ in range(20):
        text = os.pread(fd, 256, 0).decode(errors="replace").strip()
        if text:
            break
        time.sleep(0.05)
    pid, _, host = text.partition(" ")
    if not pid.isdigit():
        return "PID unknown"
    return f"PID {pid}" if host in ("", socket.gethostname()) else f"PID {pid} on {host}"


@contextlib.contextmanager
def run_folder_locked(out: Path, procs: Processes) -> Iterator[RunFolderLock | None]:
    """Own ``out`` for the block: the main process locks it (see :class:`RunFolderLock`) and
    every process raises when it is refused. Yields the lock (None off the main process)."""
    lock, refused = None, None
    if procs.is_main:
        try:
            lock = RunFolderLock.acquire(out)
        except HiFiGANError as e:
            refused = e
    if procs.any_process(refused is not None):
        raise refused or RunFolderBusy("in use by another training run (see process 0)", out)
    try:
        yield lock
    finally:
        if lock is not None:
            lock.release()


# ---------------------------------------------------------------------- RNG states
def rng_state() -> dict[str, Any]:
    """Python, NumPy, torch (and CUDA) RNG states, as plain containers and tensors (loadable
    with ``torch.load(weights_only=True)``)."""
    np_state = np.random.get_state(legacy=False)
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
            "pos": int(np_state["state"]["pos"]),
            "has_gauss": int(np_state["has_gauss"]),
            "gauss": float(np_state["gauss"]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state(
        {
            "bit_generator": "MT19937",
            "state": {"key": n["key"].numpy().astype(np.uint32), "pos": n["pos"]},
            "has_gauss": n["has_gauss"],
            "gauss": n["gauss"],
        }
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ---------------------------------------------------------------------- loading
def load_discriminators(
    checkpoint: dict[str, Any],
    path: Path,
    mpd: MultiPeriodDiscriminator,
    msd: MultiScaleDiscriminator,
) -> bool:
    """Load ``mpd``/``msd`` from a checkpoint of ours, or from the authors' ``do_`` file beside a
    ``g_`` file. Returns False when there are none (the discriminators keep their init)."""
    if "mpd" not in checkpoint and path.name.startswith("g_"):
        partner = path.with_name("do_" + path.name[2:])
        if partner.is_file():
            checkpoint, path = read_checkpoint(partner), partner
    if "mpd" not in checkpoint or "msd" not in checkpoint:
        return False
    load_state_strict(mpd, from_authors_keys(checkpoint["mpd"]), path, "MPD")
    load_state_strict(msd, from_authors_keys(checkpoint["msd"]), path, "MSD")
    return True


def load_start_weights(
    path: Path, generator: Generator, mpd: MultiPeriodDiscriminator, msd: MultiScaleDiscriminator
) -> bool:
    """Initialise from any checkpoint, ours or the authors' (weights only; the optimizers and
    the step start afresh). A generator saved with its weight norm folded gets weight norm
    again. Returns whether discriminator weights were found too."""
    checkpoint = read_checkpoint(path)
    load_generator_weights(generator, generator_state(checkpoint, path), path)
    if not generator.has_weight_norm:
        reapply_weight_norm(generator)
    return load_discriminators(checkpoint, path, mpd, msd)


def reapply_weight_norm(generator: Generator) -> None:
    """Weight norm on every convolution again (after loading folded weights); the function
    computed is unchanged."""
    for m in generator.modules():
        if isinstance(m, (nn.Conv1d, nn.ConvTranspose1d)):
            weight_norm(m)


def config_of(path: Path, config: HiFiGANConfig | str | Path | None) -> HiFiGANConfig:
    """The config to train a starting checkpoint with: ``config`` when given, else the one it
    carries, else ``config.json`` beside it."""
    return resolve_config(path, read_checkpoint(path), config)


# ---------------------------------------------------------------------- export
def export_authors(path: Path, out_dir: Path) -> tuple[Path, Path]:
    """Write a training checkpoint of ours as the authors' ``g_XXXXXXXX`` and ``do_XXXXXXXX``
    (plus their flat ``config.json``), which their ``train.py`` resumes from."""
    path = Path(path)
    checkpoint = read_checkpoint(path)
    if "optim_d" not in checkpoint or "state" not in checkpoint:
        raise CheckpointError(
            "not a training checkpoint (no optimizer states); export step_*.pt files", path
        )
    config = resolve_config(path, checkpoint, None)
    generator = Generator.from_config(config)
    mpd, msd = (
        MultiPeriodDiscriminator.from_config(config),
        MultiScaleDiscriminator.from_config(config),
    )
    load_generator_weights(generator, checkpoint["generator"], path)
    load_discriminators(checkpoint, path, mpd, msd)
    state = checkpoint["state"]
    out_dir = Path(out_dir)
    g_path, do_path = out_dir / f"g_{state['step']:08d}", out_dir / f"do_{state['step']:08d}"
    export_authors_generator(generator, g_path)
    export_authors_discriminators(
        do_path,
        mpd=mpd,
        msd=msd,
        optim_g=checkpoint["optim_g"],
        optim_d=checkpoint["optim_d"],
        steps=int(state["step"]),
        epoch=int(state["epoch"]),
    )
    atomic_write_text(out_dir / "config.json", json.dumps(config.to_authors_dict(), indent=2))
    return g_path, do_path
