"""Opening a run: the options, the run folder and its config, what it resumes from, its clips,
the networks in their starting state, and the data loader.

Every process opens the run the same way; only the main process writes (the config, the
prepared data), and the others wait for it.

The loader's worker processes never act on the signals that stop a run
(:data:`STOP_SIGNALS`): schedulers, ``timeout`` and terminals send them to the whole process
group, and a worker killed by one would take the run down with it. The main process handles
them (:class:`~hifigan.train.loop.StopSignal`) and stops the workers itself
(:func:`stop_loader`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import re
import shutil
import signal
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..checkpoint import read_checkpoint
from ..config import HiFiGANConfig
from ..errors import CheckpointError, ConfigError, HiFiGANError
from .dataset import (
    EpochBatchSampler,
    FineTuneMels,
    SegmentDataset,
    check_batches,
    collate_segments,
    padding_share,
)
from .distributed import Processes
from .manifest import (
    DATA_OPTIONS,
    MANIFEST,
    Clip,
    DataError,
    prepare,
    read_manifest,
    reason_of,
    shown,
    write_manifest,
)
from .run_folder import config_of, list_checkpoints, set_rng_state
from .step import Networks, build_networks


@dataclass
class TrainOptions:
    """How to run one training (the recipe itself is the config's ``train`` section).

    ``config`` is a preset name, a JSON path or a config object; when resuming, the run's own
    config and data are used (a ``config`` or ``data`` that differs from them is refused) and
    only ``max_steps``, the intervals and ``num_workers`` may change. ``data`` and the
    :data:`~hifigan.train.manifest.DATA_OPTIONS` after it say where the clips come from (see
    :func:`~hifigan.train.manifest.prepare`); ``checkpoint`` gives starting weights;
    ``fine_tune_mels`` a folder of ``<id>.npy`` input mels. ``None`` overrides keep the
    config's value. ``batch_size`` is the global batch.

    Adaptation (:mod:`~hifigan.train.adapt`): ``disc_warmup`` steps of discriminator updates
    alone when the start has no discriminators; ``patience`` validations without improvement
    stop the run, and so does ``max_minutes`` of wall-clock time; ``start_candidates``
    (name -> checkpoint, with ``checkpoint`` None) are scored on the validation clips and the
    best one is the start.
    """

    out: Path
    data: Path | None = None
    config: HiFiGANConfig | str | Path | None = None
    train_list: Path | None = None
    val_list: Path | None = None
    wavs: Path | None = None
    val_size: int | None = None
    jobs: int = 1
    fine_tune_mels: Path | None = None
    checkpoint: Path | None = None
    resume: bool = False
    max_steps: int | None = None
    batch_size: int | None = None
    log_interval: int | None = None
    val_interval: int | None = None
    checkpoint_interval: int | None = None
    num_workers: int | None = None
    device: str = "auto"
    precision: str = "fp32"
    compile: bool = False
    disc_pass: str = "separate"
    keep_checkpoints: int = 3
    val_clips: int | None = None
    audio_samples: int = 3
    max_bad_steps: int = 5
    progress: bool = True
    tensorboard: bool = True
    # adapting a pretrained model (see hifigan.train.adapt)
    disc_warmup: int = 0
    patience: int | None = None
    max_minutes: float | None = None
    start_candidates: dict[str, Path] | None = None


@dataclass
class TrainState:
    """Where a run is; saved in every checkpoint.

    ``epoch`` counts completed epochs (the learning rate has decayed that many times) and
    ``batch_in_epoch`` the batches of the current epoch already used: together with the seed
    they are the data position.
    """

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    best_val_mel_l1: float = math.inf
    best_step: int = -1
    skipped_steps: int = 0
    train_seconds: float = 0.0


@dataclass
class Run:
    """An opened run folder: its config, the checkpoint it resumes from, and its clips."""

    out: Path
    config: HiFiGANConfig
    resumed: dict[str, Any] | None  # the checkpoint resumed from
    latest: Path | None  # its path
    train_clips: list[Clip]
    val_clips: list[Clip]
    fine_tune_dir: Path | None
    fine_tune: FineTuneMels | None
    # newer checkpoints that could not be read, with the reason (set aside by commit_run)
    damaged: list[tuple[Path, str]] = dataclasses.field(default_factory=list)
    start_has_discriminators: bool = False  # set by start_networks

    @property
    def checkpoints(self) -> Path:
        return self.out / "checkpoints"


def say(line: str) -> None:
    """A line on standard error (before the run's progress bar exists)."""
    print(line, file=sys.stderr, flush=True)


def open_run(options: TrainOptions, procs: Processes) -> Run:
    """Open ``options.out``: refuse a folder that holds a run unless resuming, read the newest
    intact checkpoint (or the run's ``config.json`` when it has none yet) when resuming, and
    load (or prepare) the clips. Nothing of the run is rewritten here (see :func:`commit_run`);
    only a run without prepared data gets them now."""
    out = Path(options.out)
    existing = list_checkpoints(out / "checkpoints")
    if existing and not options.resume:
        raise HiFiGANError(
            f"already holds a run ({existing[-1].name}); pass --resume to continue it or "
            "choose another --out",
            out,
        )
    latest, resumed, damaged = newest_intact(existing) if options.resume else (None, None, [])
    saved = (
        out / CONFIG if options.resume and resumed is None and (out / CONFIG).is_file() else None
    )
    config = build_config(options, resumed, saved)
    created = not out.exists()
    # what a refused run removes again: the run folder, or the data folder, made by this call
    made = out if created else out / "data" if not (out / "data").exists() else None
    if procs.is_main:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise HiFiGANError(f"cannot create the run folder ({e.strerror})", out) from None
        if options.resume and latest is None:
            start = "from its config.json" if saved else "a new run"
            say(f"--resume: no checkpoint in {out / 'checkpoints'} yet, starting {start}")
    try:
        clips = load_clips(options, out / "data", config, procs, resuming=options.resume)
        train_clips = [c for c in clips if c.split == "train"]
        val_clips = [c for c in clips if c.split == "val"][: options.val_clips]
        check_batches(len(train_clips), config.train.batch_size, procs.world_size)
    except BaseException:
        if made is not None and procs.is_main:  # refused data leave no partial run folder
            shutil.rmtree(made, ignore_errors=True)
        raise
    fine_tune_dir = options.fine_tune_mels
    if fine_tune_dir is None and resumed is not None:
        recorded = resumed.get("run", {}).get("fine_tune_mels")
        fine_tune_dir = Path(recorded) if recorded else None
    fine_tune = (
        FineTuneMels(fine_tune_dir, train_clips + val_clips, config.mel) if fine_tune_dir else None
    )
    return Run(
        out, config, resumed, latest, train_clips, val_clips, fine_tune_dir, fine_tune, damaged
    )


def newest_intact(
    checkpoints: list[Path],
) -> tuple[Path | None, dict[str, Any] | None, list[tuple[Path, str]]]:
    """The newest of ``checkpoints`` that reads back intact, the checkpoint itself, and the
    newer ones that do not (with the reason). Raises when there are checkpoints but none is
    intact."""
    damaged: list[tuple[Path, str]] = []
    for path in reversed(checkpoints):
        try:
            return path, read_checkpoint(path), damaged
        except CheckpointError as e:
            damaged.append((path, reason_of(e)))
    if damaged:
        path, reason = damaged[0]
        older = len(damaged) - 1
        more = {0: "", 1: " (nor is the older one)"}.get(
            older, f" (nor are the {older} older ones)"
        )
        raise CheckpointError(f"{reason}; no intact checkpoint to resume from{more}", path)
    return None, None, []


def build_config(
    options: TrainOptions, resume_checkpoint: dict[str, Any] | None, saved: Path | None = None
) -> HiFiGANConfig:
    """The run's config: the resumed run's (from its checkpoint, or its ``config.json`` when
    it has none yet: ``saved``), the starting checkpoint's, or ``options.config`` (default
    ``v1``), with the overrides of ``options`` applied. A resumed run refuses another config."""
    if resume_checkpoint is not None or saved is not None:
        if resume_checkpoint is not None:
            config = HiFiGANConfig.from_dict(resume_checkpoint["config"], "resumed checkpoint")
        else:
            config = HiFiGANConfig.from_file(saved)
        check_same_config(options, config)
        batch = config.train.batch_size
        if resume_checkpoint is not None and options.batch_size not in (None, batch):
            raise ConfigError(
                f"--batch-size {options.batch_size} differs from the run's ({batch}); --resume "
                "keeps the run's batch size: drop --batch-size or start a new --out",
                options.out,
            )
    elif options.checkpoint is not None:
        config = config_of(options.checkpoint, options.config)
    elif isinstance(options.config, HiFiGANConfig):
        config = options.config
    else:
        config = HiFiGANConfig.load(options.config or "v1")
    overrides = {k: getattr(options, k) for k in OVERRIDES if getattr(options, k) is not None}
    for key, value in overrides.items():  # each alone first, to name the option at fault
        one = dataclasses.replace(config.train, **{key: value})
        dataclasses.replace(config, train=one).validate(f"--{key.replace('_', '-')} {value}")
    config = dataclasses.replace(config, train=dataclasses.replace(config.train, **overrides))
    config.validate("training config")
    return config


# the train settings that options may change, also when resuming (except the batch size)
OVERRIDES = (
    "max_steps",
    "batch_size",
    "log_interval",
    "val_interval",
    "checkpoint_interval",
    "num_workers",
)


def check_same_config(options: TrainOptions, config: HiFiGANConfig) -> None:
    """Refuse a ``--config`` that, with the options' overrides, differs from the run's config
    (apart from its name and the settings that may change when resuming)."""
    if options.config is None:
        return
    given = options.config
    other = given if isinstance(given, HiFiGANConfig) else HiFiGANConfig.load(given)
    overrides = {k: getattr(options, k) for k in OVERRIDES if getattr(options, k) is not None}
    other = dataclasses.replace(other, train=dataclasses.replace(other.train, **overrides))
    a, b = _flat(other.to_dict()), _flat(config.to_dict())
    may_change = {f"train.{k}" for k in OVERRIDES if k != "batch_size"} | {"name"}
    differ = [k for k in b if k not in may_change and a.get(k) != b[k]]
    if differ:
        key, name = differ[0], given.name if isinstance(given, HiFiGANConfig) else given
        raise ConfigError(
            f"--config {name} differs from the run's config ({key} {a.get(key)}, the run's "
            f"{b[key]}); --resume keeps the run's config: drop --config or start a new --out",
            options.out,
        )


def _flat(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"seed": 1}}`` -> ``{"train.seed": 1}``."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def load_clips(
    options: TrainOptions, run_data: Path, config: HiFiGANConfig, procs: Processes, resuming: bool
) -> list[Clip]:
    """The run's clips: ``RUN_DIR/data/manifest.jsonl`` when resuming (where ``--data``, if
    given, must be the run's data), else a copy of a prepared manifest at the config's rate,
    else the data prepared now (by the main process) into ``RUN_DIR/data``, at the config's
    rate."""
    manifest = run_data / MANIFEST
    if resuming and manifest.is_file():
        clips = read_manifest(manifest)
        if options.data is not None:
            check_same_data(options, clips, manifest)
    else:
        if options.data is None:
            raise DataError("no training data: pass --data DIR (a dataset or prepared folder)")
        if procs.is_main:
            copy_or_prepare(options, run_data, config)
        procs.barrier()
        clips = read_manifest(manifest)
    wrong = [c for c in clips if c.sample_rate != config.mel.sample_rate]
    if wrong:
        raise DataError(
            f"{len(wrong)} clips are at {wrong[0].sample_rate} Hz but the config needs "
            f"{config.mel.sample_rate} Hz; prepare the data with this config",
            manifest,
        )
    return clips


def copy_or_prepare(options: TrainOptions, run_data: Path, config: HiFiGANConfig) -> None:
    """Copy the manifest of prepared data at the config's rate into ``run_data``; prepare
    anything else (datasets, and prepared data at another rate) into it."""
    data = Path(options.data)
    prepared = data if data.is_file() and data.suffix == ".jsonl" else data / MANIFEST
    if prepared.is_file() and options.train_list is None:
        clips = read_manifest(prepared)
        if all(c.sample_rate == config.mel.sample_rate for c in clips):
            write_manifest(run_data / MANIFEST, clips)
            return
    result = prepare(
        data,
        run_data,
        sample_rate=config.mel.sample_rate,
        min_samples=config.mel.n_fft,
        **{k: getattr(options, k) for k in DATA_OPTIONS},
    )
    say(f"data: {shown(data)} prepared into {shown(run_data)} at {config.mel.sample_rate} Hz")
    for line in result.summary(max_listed=10):
        say(f"  {line}")


def check_same_data(options: TrainOptions, clips: list[Clip], manifest: Path) -> None:
    """Refuse ``--data`` when the run's clips do not come from it: the same clips as a
    prepared manifest, or files below the dataset folder (or ``--wavs``)."""

    def origin(c: Clip) -> Path:
        return c.source or c.path

    data = Path(options.data)
    prepared = data if data.is_file() and data.suffix == ".jsonl" else data / MANIFEST
    if prepared.is_file():
        theirs = read_manifest(prepared)
        same = {(c.id, origin(c)) for c in theirs} == {(c.id, origin(c)) for c in clips}
    else:
        roots = [data.parent if data.is_file() else data]
        roots += [Path(options.wavs)] if options.wavs is not None else []
        roots = [r.resolve() for r in roots]
        same = all(any(origin(c).is_relative_to(r) for r in roots) for c in clips)
    if not same:
        raise DataError(
            f"--data {data} is not the data of this run; --resume keeps the run's data "
            f"({manifest}): drop --data or start a new --out",
            manifest.parent.parent,
        )


def commit_run(run: Run) -> None:
    """Once the run has opened without error (main process): write its ``config.json``, set
    aside the damaged checkpoints passed over, and remove the temporary files of writes that
    were interrupted (a killed process)."""
    run.config.save(run.out / CONFIG)
    for path, reason in run.damaged:
        kept = path.with_name(path.name + ".damaged")
        path.replace(kept)
        say(
            f"warning: {path}: {reason}; resuming from {run.latest.name if run.latest else '-'} "
            f"instead (the damaged file is kept as {kept.name})"
        )
    leftovers = [
        p
        for folder in (run.out, run.checkpoints, run.out / "data")
        if folder.is_dir()
        for p in folder.iterdir()
        if _TEMPORARY.match(p.name) and p.is_file()
    ]
    for p in leftovers:
        p.unlink(missing_ok=True)
    if leftovers:
        files = "file" if len(leftovers) == 1 else "files"
        say(f"removed {len(leftovers)} temporary {files} of interrupted writes in {run.out}")


CONFIG = "config.json"
# the temporary files of hifigan.io.atomic_path: ".<name>.<8 random characters>.tmp"
_TEMPORARY = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")


def start_networks(
    run: Run, options: TrainOptions, device: torch.device, procs: Processes
) -> tuple[Networks, TrainState]:
    """The networks, optimizers and schedulers (seeded: every process builds the same ones),
    from the resumed checkpoint with its state and RNG states, or from ``options.checkpoint``,
    or new."""
    resuming = run.resumed is not None
    nets, start_has_d = build_networks(
        run.config,
        device,
        precision=options.precision,
        disc_pass=options.disc_pass,
        compile=options.compile,
        procs=procs,
        start=None if resuming else options.checkpoint,
        resume=None if run.resumed is None else (run.resumed, run.latest),
    )
    run.start_has_discriminators = resuming or start_has_d
    state = TrainState()
    if run.resumed is not None:
        state = TrainState(**run.resumed["state"])
        set_rng_state(run.resumed["rng"])
        if procs.is_main:
            say(f"resuming from {run.latest} (step {state.step}, epoch {state.epoch})")
    elif options.checkpoint is not None and procs.is_main:
        found = "and discriminators" if start_has_d else "only; discriminators initialised afresh"
        say(f"starting from {options.checkpoint} (generator {found})")
    exact = (options.precision, options.disc_pass) == ("fp32", "separate")
    if not resuming and options.checkpoint is None and not exact and procs.is_main:
        say(
            f"training step: {options.precision}, {options.disc_pass} discriminator pass "
            "(--precision fp32 --disc-pass separate: the authors' exact step)"
        )
    return nets, state


def make_loader(
    run: Run, device: torch.device, procs: Processes, close_in_workers: Sequence[int] = ()
) -> tuple[torch.utils.data.DataLoader, EpochBatchSampler]:
    """The training loader over this process's share of every global batch, and its sampler
    (which sets the data position). Says once when the clips are mostly shorter than the
    segment, and when there are fewer CPUs than loader workers (their number is capped).

    Its workers ignore :data:`STOP_SIGNALS` and close the file descriptors
    ``close_in_workers`` (the run folder's lock, which must die with the main process)."""
    t = run.config.train
    dataset = SegmentDataset(run.train_clips, run.config.mel, t.segment_size, run.fine_tune)
    sampler = EpochBatchSampler(
        len(run.train_clips), t.batch_size, t.seed, procs.rank, procs.world_size
    )
    workers = min(t.num_workers, available_cpus())
    if procs.is_main:
        if workers < t.num_workers:
            say(
                f"data loader: {workers} workers, not {t.num_workers} (train.num_workers): "
                f"{workers} CPUs are available to this process"
            )
        padding = padding_share(run.train_clips, t.segment_size)
        if padding >= PADDING_WARNING:
            short = sum(round(c.duration * c.sample_rate) < t.segment_size for c in run.train_clips)
            which = "clips" if short == len(run.train_clips) else f"{short} of the clips"
            say(
                f"warning: {which} are shorter than the {t.segment_size}-sample segment: "
                f"{padding:.0%} of each batch is padding (a smaller train.segment_size avoids it)"
            )
        say_long_clips(run.train_clips)
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=collate_segments,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        persistent_workers=workers > 0,
        prefetch_factor=4 if workers > 0 else None,
        worker_init_fn=WorkerStart(tuple(close_in_workers)) if workers > 0 else None,
    )
    return loader, sampler


# the signals that end a run cleanly: Ctrl-C, schedulers and process managers, a closed terminal
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def stop_signals_blocked() -> Iterator[None]:
    """Hold :data:`STOP_SIGNALS` back from this thread for the block (they are delivered when
    it ends): processes forked meanwhile start with them blocked, so that a signal sent to the
    group while loader workers start cannot reach a worker before :class:`WorkerStart` made it
    ignore them."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class WorkerStart:
    """The ``worker_init_fn`` of the training loader: ignore :data:`STOP_SIGNALS` (a signal
    still pending from the start is discarded), then let them through again, and close the
    given file descriptors inherited from the main process."""

    def __init__(self, close_fds: tuple[int, ...] = ()) -> None:
        self.close_fds = close_fds

    def __call__(self, worker_id: int) -> None:
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        for fd in self.close_fds:
            with contextlib.suppress(OSError):
                os.close(fd)


def stop_loader(loader: torch.utils.data.DataLoader) -> None:
    """Stop the loader's worker processes now (they ignore the stop signals, so the main
    process ends them): ask them to exit, and kill any that has not after a few seconds."""
    iterator = getattr(loader, "_iterator", None)
    if iterator is None:
        return
    loader._iterator = None
    workers = list(getattr(iterator, "_workers", []))
    shutdown = getattr(iterator, "_shutdown_workers", None)
    if shutdown is not None:
        shutdown()
    for w in workers:
        if w.is_alive():
            w.kill()  # it ignores SIGTERM, which is all that torch's shutdown tries
            w.join(timeout=5)


# the expected share of padding in a batch from which a run warns about short clips
PADDING_WARNING = 0.1
# the length, in seconds, from which a training clip is worth a word (an unsegmented recording)
LONG_CLIP_SECONDS = 600


def say_long_clips(clips: list[Clip]) -> None:
    """One line when training clips are longer than :data:`LONG_CLIP_SECONDS`: they cost no
    more to read than short ones, but each gives one segment per epoch, so most of it is
    seldom seen."""
    long = [c for c in clips if c.duration > LONG_CLIP_SECONDS]
    if not long:
        return
    longest = max(long, key=lambda c: c.duration)
    which = "1 training clip is" if len(long) == 1 else f"{len(long)} training clips are"
    say(
        f"warning: {which} longer than {LONG_CLIP_SECONDS // 60} min (the longest: "
        f"{shown(longest.path)}, {longest.duration / 60:.0f} min): each clip gives one segment per "
        "epoch, so most of a long one is seldom seen; split long recordings into utterances"
    )


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity where the system tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on every system
        return os.cpu_count() or 1


def batches(
    loader: torch.utils.data.DataLoader, sampler: EpochBatchSampler, state: TrainState
) -> Iterator[tuple[Tensor, Tensor, list[tuple[str, str]]]]:
    """``(mel (B, n_mels, frames), audio (B, segment), unreadable clips)`` batches from the data
    position in ``state``, epoch after epoch, forever (see
    :func:`~hifigan.train.dataset.collate_segments`). The loader's workers start (at the
    first iteration) with the stop signals blocked, see :func:`stop_signals_blocked`."""
    while True:
        sampler.set_position(state.epoch, state.batch_in_epoch)
        with stop_signals_blocked():
            iterator = iter(loader)
        yield from iterator
