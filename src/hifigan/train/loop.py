"""The training run: setup from :class:`TrainOptions`, then one linear loop over batches.

Each iteration is one :func:`~hifigan.train.step.train_step` (a discriminator update, then a
generator update), followed by the bookkeeping of a :class:`TrainState`: the step, the data
position (epoch, batch), the per-epoch learning-rate decay, logs, validation on whole
utterances, checkpoints. Files are written by the main process only; SIGINT/SIGTERM end the
run with a checkpoint; NaN/inf losses skip the update, and too many in a row stop the run.
"""

from __future__ import annotations

import dataclasses
import math
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..checkpoint import read_checkpoint, save_checkpoint
from ..config import HiFiGANConfig
from ..errors import ConfigError, HiFiGANError
from ..generator import Generator
from ..mel import MelSpectrogram
from .checkpoints import (
    BEST,
    checkpoint_path,
    config_of,
    list_checkpoints,
    prune_checkpoints,
    rng_state,
    set_rng_state,
)
from .dataset import EpochBatchSampler, FineTuneMels, SegmentDataset, Utterance, load_validation
from .distributed import Processes, start_processes, stop_processes
from .manifest import MANIFEST, Clip, DataError, prepare, read_manifest, write_manifest
from .monitor import Monitor
from .step import build_networks, check_step_options, train_step


class TrainingDiverged(HiFiGANError):
    """The losses or gradients stayed NaN/inf for too many steps in a row."""


@dataclass
class TrainOptions:
    """How to run one training (the recipe itself is the config's ``train`` section).

    ``config`` is a preset name, a JSON path or a config object; when resuming, the run's own
    config is used and only ``max_steps`` and the intervals may change. ``data`` and the four
    options after it say where the clips come from (see :func:`~hifigan.train.manifest.prepare`);
    ``checkpoint`` gives starting weights; ``fine_tune_mels`` a folder of ``<id>.npy`` input
    mels. ``None`` overrides keep the config's value. ``batch_size`` is the global batch.
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
class TrainResult:
    """How a run ended: its state, why it stopped, its newest checkpoint and the validation
    records of this invocation."""

    state: TrainState
    stopped_by: str  # "max_steps", "SIGINT" or "SIGTERM"
    checkpoint: Path | None
    history: list[dict[str, Any]] = field(default_factory=list)


class StopSignal:
    """SIGINT and SIGTERM ask the loop to stop after the current step and write a checkpoint;
    a second signal interrupts at once."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> StopSignal:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.received is not None:
            raise KeyboardInterrupt
        self.received = signum

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


# ---------------------------------------------------------------------- setup helpers
def build_config(options: TrainOptions, resume_checkpoint: dict[str, Any] | None) -> HiFiGANConfig:
    """The run's config: the resumed run's, the starting checkpoint's, or ``options.config``
    (default ``v1``), with the overrides of ``options`` applied."""
    if resume_checkpoint is not None:
        config = HiFiGANConfig.from_dict(resume_checkpoint["config"], source="resumed checkpoint")
        if options.batch_size not in (None, config.train.batch_size):
            raise ConfigError(
                f"cannot change the batch size when resuming (the run uses {config.train.batch_size})"
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
                    train_list=options.train_list,
                    val_list=options.val_list,
                    wavs=options.wavs,
                    val_size=options.val_size,
                    jobs=options.jobs,
                )
                _say(f"data: {result.layout} in {data}")
                if result.converted:
                    _say(
                        f"data: {result.converted} clips resampled/mixed to mono into {run_data}/cache"
                    )
                if result.skipped:
                    _say(
                        f"data: skipped {len(result.skipped)} files (listed in {run_data}/skipped.tsv):"
                    )
                    for path, reason in result.skipped[:10]:
                        _say(f"  {path}: {reason}")
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


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def batches(loader: torch.utils.data.DataLoader, sampler: EpochBatchSampler, state: TrainState):
    """Batches from the data position in ``state``, epoch after epoch, forever."""
    while True:
        sampler.set_position(state.epoch, state.batch_in_epoch)
        yield from loader


@torch.no_grad()
def validate(
    generator: Generator,
    utterances: list[Utterance],
    mel_loss: MelSpectrogram,
    device: torch.device,
    n_samples: int,
) -> tuple[float, list[tuple[str, Any, Any, Any, Any]]]:
    """Mean L1 distance between the loss-mels of real and generated whole utterances (fp32),
    and ``(id, real, generated, real mel, generated mel)`` for the first ``n_samples``."""
    generator.eval()
    total, samples = 0.0, []
    for i, u in enumerate(utterances):
        fake = generator(u.mel.unsqueeze(0).to(device)).reshape(-1)  # (frames * hop,)
        fake_mel = mel_loss(fake)
        real_mel = u.real_mel.to(device)
        n = min(real_mel.shape[1], fake_mel.shape[1])
        total += F.l1_loss(fake_mel[:, :n], real_mel[:, :n]).item()
        if i < n_samples:
            samples.append(
                (
                    u.id,
                    u.audio.numpy(),
                    fake.cpu().numpy(),
                    real_mel.cpu().numpy(),
                    fake_mel.cpu().numpy(),
                )
            )
    generator.train()
    return total / len(utterances), samples


# ---------------------------------------------------------------------- the run
def train(options: TrainOptions) -> TrainResult:
    """Train (or resume) a run in ``options.out``; see the module docstring."""
    procs, device = start_processes(options.device)
    try:
        with StopSignal() as stop:
            result = _run(options, procs, device, stop)
        procs.barrier()  # the others wait while the main process validates and saves
        return result
    finally:
        stop_processes(procs)


def _run(
    options: TrainOptions, procs: Processes, device: torch.device, stop: StopSignal
) -> TrainResult:
    check_step_options(device, options.precision, options.disc_pass)
    out = Path(options.out)
    ckpt_dir = out / "checkpoints"

    # ---- the run folder, the config and what to resume from
    existing = list_checkpoints(ckpt_dir)
    if existing and not options.resume:
        raise HiFiGANError(
            f"already holds a run ({existing[-1].name}); pass --resume to continue it or "
            "choose another --out",
            out,
        )
    latest = existing[-1] if options.resume and existing else None
    resume = read_checkpoint(latest) if latest is not None else None
    config = build_config(options, resume)
    t = config.train
    if procs.is_main:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise HiFiGANError(f"cannot create the run folder ({e.strerror})", out) from None
        config.save(out / "config.json")  # also proves early that the folder is writable
        if options.resume and latest is None:
            _say(f"--resume: no checkpoint in {ckpt_dir} yet, starting a new run")
    clips = load_clips(options, out / "data", config, procs, resuming=resume is not None)
    train_clips = [c for c in clips if c.split == "train"]
    val_clips = [c for c in clips if c.split == "val"][: options.val_clips]
    fine_tune_dir = options.fine_tune_mels
    if fine_tune_dir is None and resume is not None:
        recorded = resume.get("run", {}).get("fine_tune_mels")
        fine_tune_dir = Path(recorded) if recorded else None
    fine_tune = (
        FineTuneMels(fine_tune_dir, train_clips + val_clips, config.mel) if fine_tune_dir else None
    )

    # ---- networks, optimizers, schedulers (seeded: every process builds the same networks)
    nets, start_has_d = build_networks(
        config,
        device,
        precision=options.precision,
        disc_pass=options.disc_pass,
        compile=options.compile,
        procs=procs,
        start=None if resume is not None else options.checkpoint,
        resume=None if resume is None else (resume, latest),
    )
    state = TrainState()
    if resume is not None:
        state = TrainState(**resume["state"])
        set_rng_state(resume["rng"])
        if procs.is_main:
            _say(f"resuming from {latest} (step {state.step}, epoch {state.epoch})")
    elif options.checkpoint is not None and procs.is_main:
        found = "and discriminators" if start_has_d else "only; discriminators initialised afresh"
        _say(f"starting from {options.checkpoint} (generator {found})")

    # ---- data
    dataset = SegmentDataset(train_clips, config.mel, t.segment_size, fine_tune)
    sampler = EpochBatchSampler(
        len(train_clips), t.batch_size, t.seed, procs.rank, procs.world_size
    )
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=t.num_workers,
        pin_memory=device.type == "cuda",
        persistent_workers=t.num_workers > 0,
        prefetch_factor=4 if t.num_workers > 0 else None,
    )
    utterances = load_validation(val_clips, config.mel, fine_tune) if procs.is_main else []
    if procs.is_main and not utterances:
        _say("warning: no validation clips: no validation, no best.pt")

    # ---- reporting
    monitor = Monitor(
        out,
        active=procs.is_main,
        start_step=state.step,
        resumed=resume is not None,
        total=t.max_steps,
        progress=options.progress,
        tensorboard=options.tensorboard,
    )
    try:
        history: list[dict[str, Any]] = []
        last_saved: Path | None = latest

        def save() -> Path | None:
            if not procs.is_main:
                return None
            path = checkpoint_path(ckpt_dir, state.step)
            save_checkpoint(
                path,
                config,
                nets.generator,
                mpd=nets.mpd,
                msd=nets.msd,
                **nets.optimizer_states(),
                state=dataclasses.asdict(state),
                rng=rng_state(),
                run={"fine_tune_mels": str(fine_tune_dir) if fine_tune_dir else None},
            )
            prune_checkpoints(ckpt_dir, options.keep_checkpoints)
            return path

        def run_validation(train_means: dict[str, float]) -> None:
            if not utterances:
                return
            val, samples = validate(
                nets.generator, utterances, nets.mel_loss, device, options.audio_samples
            )
            improved = val < state.best_val_mel_l1
            if improved:
                state.best_val_mel_l1, state.best_step = val, state.step
                save_checkpoint(
                    ckpt_dir / BEST, config, nets.generator, step=state.step, val_mel_l1=val
                )
            record = {
                "epoch": state.epoch,
                "val_mel_l1": val,
                "best_val_mel_l1": state.best_val_mel_l1,
                "val_clips": len(utterances),
                "train_seconds": round(state.train_seconds, 3),
                **{f"train_{k}": v for k, v in train_means.items()},
            }
            first = not history and (resume is None)
            monitor.validation(
                state.step,
                record,
                samples,
                config.mel.sample_rate,
                config.mel.hop_length / config.mel.sample_rate,
                first,
            )
            history.append({"step": state.step, **record})
            monitor.print(
                f"step {state.step}: val_mel_l1 {val:.4f}" + (" (best)" if improved else "")
            )

        if state.step >= t.max_steps:
            monitor.print(f"the run is already at step {state.step} (max_steps {t.max_steps})")
            return TrainResult(state, "max_steps", latest, history)
        if state.step == 0 and procs.is_main:
            run_validation({})

        # ---- the loop
        data = batches(loader, sampler, state)
        sums: dict[str, float] = {}
        counted, interval_steps, interval_time, bad_in_a_row = 0, 0, 0.0, 0
        stopped_by = "max_steps"
        while state.step < t.max_steps:
            t0 = time.perf_counter()
            try:
                mel, audio = next(data)
            except RuntimeError:
                if stop.received is None:
                    raise
                break  # a loader worker was interrupted by the same signal: stop here
            mel = mel.to(device, non_blocking=True)  # (B, n_mels, frames)
            real = audio.to(device, non_blocking=True).unsqueeze(1)  # (B, 1, segment)
            result = train_step(nets, mel, real, procs)
            named, d_bad, g_bad = result.values, result.d_skipped, result.g_skipped

            # bookkeeping: the step, the data position, the per-epoch learning-rate decay
            state.step += 1
            state.batch_in_epoch += 1
            if state.batch_in_epoch == sampler.batches_per_epoch:
                state.epoch += 1
                state.batch_in_epoch = 0
                nets.decay_learning_rate()
            elapsed = time.perf_counter() - t0
            state.train_seconds += elapsed
            interval_steps += 1
            interval_time += elapsed
            if d_bad or g_bad:
                state.skipped_steps += 1
                bad_in_a_row += 1
                which = " and ".join(
                    n for n, bad in (("discriminator", d_bad), ("generator", g_bad)) if bad
                )
                monitor.print(
                    f"warning: step {state.step}: non-finite {which} loss or gradients; update skipped"
                )
                if bad_in_a_row >= options.max_bad_steps:
                    raise TrainingDiverged(
                        f"losses or gradients were NaN/inf for {bad_in_a_row} steps in a row (up to "
                        f"step {state.step}); stopped without saving; last good checkpoint: "
                        f"{last_saved or 'none'}",
                        out,
                    )
            else:
                bad_in_a_row = 0
                counted += 1
                for k, v in named.items():
                    sums[k] = sums.get(k, 0.0) + v
            monitor.step(
                {"loss_g": named["loss_g"], "loss_d": named["loss_d"], "mel": named["mel"]}
            )

            # reporting, validation, checkpoints (files: main process only)
            stop_now = procs.any(stop.received is not None)[0]
            done = state.step >= t.max_steps
            means = {k: v / counted for k, v in sums.items()}
            if state.step % t.log_interval == 0:
                rate = interval_steps / max(interval_time, 1e-9)
                scalars = {f"train/{k}": v for k, v in means.items()}
                scalars.update(
                    {
                        "train/lr_g": nets.optim_g.param_groups[0]["lr"],
                        "train/lr_d": nets.optim_d.param_groups[0]["lr"],
                        "train/steps_per_s": rate,
                        "train/audio_seconds_per_s": rate
                        * t.batch_size
                        * t.segment_size
                        / config.mel.sample_rate,
                        "train/skipped_steps": state.skipped_steps,
                        "train/epoch": state.epoch,
                    }
                )
                monitor.scalars(state.step, scalars)
                if not monitor.bar_visible:
                    monitor.print(
                        f"step {state.step}/{t.max_steps} epoch {state.epoch}: "
                        + " ".join(
                            f"{k} {means[k]:.4g}" for k in ("loss_g", "loss_d", "mel") if k in means
                        )
                        + f", {rate:.2f} steps/s"
                    )
            if procs.is_main and (state.step % t.val_interval == 0 or (done and not stop_now)):
                run_validation(means)
            if state.step % t.log_interval == 0:
                sums, counted, interval_steps, interval_time = {}, 0, 0, 0.0
            if state.step % t.checkpoint_interval == 0 or done or stop_now:
                last_saved = save() or last_saved
            if stop_now:
                stopped_by = signal.Signals(stop.received).name if stop.received else "signal"
                monitor.print(f"stopped by {stopped_by} at step {state.step}; saved {last_saved}")
                break
    finally:
        monitor.close()
    return TrainResult(state, stopped_by, last_saved, history)
