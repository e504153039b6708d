"""Opening a run: the options, the run folder and its config, what it resumes from, its clips,
the networks in their starting state, and the data loader.

Every process opens the run the same way; only the main process writes (the config, the
prepared data), and the others wait for it.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..checkpoint import read_checkpoint
from ..config import HiFiGANConfig
from ..errors import ConfigError, HiFiGANError
from .dataset import EpochBatchSampler, FineTuneMels, SegmentDataset
from .distributed import Processes
from .manifest import (
    DATA_OPTIONS,
    MANIFEST,
    Clip,
    DataError,
    prepare,
    read_manifest,
    write_manifest,
)
from .run_folder import config_of, list_checkpoints, set_rng_state
from .step import Networks, build_networks


@dataclass
class TrainOptions:
    """How to run one training (the recipe itself is the config's ``train`` section).

    ``config`` is a preset name, a JSON path or a config object; when resuming, the run's own
    config is used and only ``max_steps`` and the intervals may change. ``data`` and the
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
    start_has_discriminators: bool = False  # set by start_networks

    @property
    def checkpoints(self) -> Path:
        return self.out / "checkpoints"


def say(line: str) -> None:
    """A line on standard error (before the run's progress bar exists)."""
    print(line, file=sys.stderr, flush=True)


def open_run(options: TrainOptions, procs: Processes) -> Run:
    """Open ``options.out``: refuse a folder that holds a run unless resuming, read the newest
    checkpoint when resuming, write the config, and load (or prepare) the clips."""
    out = Path(options.out)
    existing = list_checkpoints(out / "checkpoints")
    if existing and not options.resume:
        raise HiFiGANError(
            f"already holds a run ({existing[-1].name}); pass --resume to continue it or "
            "choose another --out",
            out,
        )
    latest = existing[-1] if options.resume and existing else None
    resumed = read_checkpoint(latest) if latest is not None else None
    config = build_config(options, resumed)
    if procs.is_main:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise HiFiGANError(f"cannot create the run folder ({e.strerror})", out) from None
        config.save(out / "config.json")  # also proves early that the folder is writable
        if options.resume and latest is None:
            say(f"--resume: no checkpoint in {out / 'checkpoints'} yet, starting a new run")
    clips = load_clips(options, out / "data", config, procs, resuming=resumed is not None)
    train_clips = [c for c in clips if c.split == "train"]
    val_clips = [c for c in clips if c.split == "val"][: options.val_clips]
    fine_tune_dir = options.fine_tune_mels
    if fine_tune_dir is None and resumed is not None:
        recorded = resumed.get("run", {}).get("fine_tune_mels")
        fine_tune_dir = Path(recorded) if recorded else None
    fine_tune = (
        FineTuneMels(fine_tune_dir, train_clips + val_clips, config.mel) if fine_tune_dir else None
    )
    return Run(out, config, resumed, latest, train_clips, val_clips, fine_tune_dir, fine_tune)


def build_config(options: TrainOptions, resume_checkpoint: dict[str, Any] | None) -> HiFiGANConfig:
    """The run's config: the resumed run's, the starting checkpoint's, or ``options.config``
    (default ``v1``), with the overrides of ``options`` applied."""
    if resume_checkpoint is not None:
        config = HiFiGANConfig.from_dict(resume_checkpoint["config"], source="resumed checkpoint")
        if options.batch_size not in (None, config.train.batch_size):
            raise ConfigError(
                "cannot change the batch size when resuming "
                f"(the run uses {config.train.batch_size})"
            )
    elif options.checkpoint is not None:
        config = config_of(options.checkpoint, options.config)
    elif isinstance(options.config, HiFiGANConfig):
        config = options.config
    else:
        config = HiFiGANConfig.load(options.config or "v1")
    overrides = {
        k: getattr(options, k)
        for k in ("max_steps", "batch_size", "log_interval", "val_interval", "checkpoint_interval")
        if getattr(options, k) is not None
    }
    if options.num_workers is not None:
        overrides["num_workers"] = options.num_workers
    config = dataclasses.replace(config, train=dataclasses.replace(config.train, **overrides))
    config.validate("training config")
    return config


def load_clips(
    options: TrainOptions, run_data: Path, config: HiFiGANConfig, procs: Processes, resuming: bool
) -> list[Clip]:
    """The run's clips: ``RUN_DIR/data/manifest.jsonl`` when resuming, else a copy of a prepared
    manifest, else the data folder prepared now (by the main process) into ``RUN_DIR/data``."""
    manifest = run_data / MANIFEST
    if not (resuming and manifest.is_file()):
        if options.data is None:
            raise DataError("no training data: pass --data DIR (a dataset or prepared folder)")
        data = Path(options.data)
        prepared = data if data.is_file() else data / MANIFEST
        if procs.is_main:
            if prepared.is_file() and options.train_list is None:
                write_manifest(manifest, read_manifest(prepared))
            else:
                result = prepare(
                    data,
                    run_data,
                    sample_rate=config.mel.sample_rate,
                    min_samples=config.mel.n_fft,
                    **{k: getattr(options, k) for k in DATA_OPTIONS},
                )
                say(f"data: {data} prepared into {run_data}")
                for line in result.summary(max_listed=10):
                    say(f"  {line}")
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
    return nets, state


def make_loader(
    run: Run, device: torch.device, procs: Processes
) -> tuple[torch.utils.data.DataLoader, EpochBatchSampler]:
    """The training loader over this process's share of every global batch, and its sampler
    (which sets the data position)."""
    t = run.config.train
    dataset = SegmentDataset(run.train_clips, run.config.mel, t.segment_size, run.fine_tune)
    sampler = EpochBatchSampler(
        len(run.train_clips), t.batch_size, t.seed, procs.rank, procs.world_size
    )
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=t.num_workers,
        pin_memory=device.type == "cuda",
        persistent_workers=t.num_workers > 0,
        prefetch_factor=4 if t.num_workers > 0 else None,
    )
    return loader, sampler


def batches(
    loader: torch.utils.data.DataLoader, sampler: EpochBatchSampler, state: TrainState
) -> Iterator[tuple[Tensor, Tensor]]:
    """``(mel (B, n_mels, frames), audio (B, segment))`` batches from the data position in
    ``state``, epoch after epoch, forever."""
    while True:
        sampler.set_position(state.epoch, state.batch_in_epoch)
        yield from loader
