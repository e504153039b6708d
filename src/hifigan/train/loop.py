"""The training run: open it (:mod:`~hifigan.train.setup`), then one linear loop over batches.

Each iteration is one :func:`~hifigan.train.step.train_step` (a discriminator update, then a
generator update), followed by the bookkeeping of a :class:`TrainState`: the step, the data
position (epoch, batch), the per-epoch learning-rate decay, then logs, validation on whole
utterances and checkpoints when :class:`Intervals` says so. Files are written by the main
process only, and one trainer at a time owns a run folder
(:class:`~hifigan.train.run_folder.RunFolderLock`). SIGINT, SIGTERM and SIGHUP end the run
with a checkpoint (:class:`StopSignal`); NaN/inf losses skip the update, and too many in a row
stop the run.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..config import HiFiGANConfig, TrainConfig
from ..errors import HiFiGANError
from .adapt import Adaptation
from .dataset import EpochBatchSampler
from .distributed import Processes, start_processes, stop_processes
from .manifest import SKIPPED, DataError, shown, write_skipped
from .monitor import Monitor
from .run_folder import Checkpointer, RunFolderLock, checkpoint_path, run_folder_locked
from .setup import (
    STOP_SIGNALS,
    Run,
    TrainOptions,
    TrainState,
    batches,
    commit_run,
    make_loader,
    open_run,
    start_networks,
    stop_loader,
)
from .step import Networks, StepResult, check_step_options, train_step
from .validation import Validator

__all__ = ["Interrupted", "TrainOptions", "TrainResult", "TrainState", "TrainingDiverged", "train"]


class TrainingDiverged(HiFiGANError):
    """The losses or gradients stayed NaN/inf for too many steps in a row."""


@dataclass
class TrainResult:
    """How a run ended: its state, why it stopped, its newest checkpoint and the validation
    records of this invocation."""

    state: TrainState
    stopped_by: str  # "max_steps", "SIGINT", "SIGTERM", "SIGHUP", "max_minutes" or "patience"
    checkpoint: Path | None
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def signal(self) -> int | None:
        """The number of the signal that stopped the run, if one did."""
        return signal.Signals[self.stopped_by].value if self.stopped_by.startswith("SIG") else None


class Interrupted(KeyboardInterrupt):
    """A second stop signal: the run ends at once, without a checkpoint. ``step`` and
    ``checkpoint`` (the newest one) are filled in on the way out of the loop."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.step: int | None = None
        self.checkpoint: Path | None = None


class StopSignal:
    """The signal policy of a run: the first of :data:`~hifigan.train.setup.STOP_SIGNALS`
    (SIGINT, SIGTERM, SIGHUP) asks the loop to stop after the current step with a checkpoint;
    a second one interrupts at once (:class:`Interrupted`).

    Signals within ``repeat_seconds`` of the first count as the same request: ``timeout``,
    schedulers and container runtimes send one to the process and again to its group. With
    ``launched`` (a process of ``torchrun``, whose agent passes on the signal it got, at a
    time of its own), the first signal repeated counts as the same request at any time. A
    signal the process was started ignoring (``nohup``, a background job) stays ignored. When
    SIGHUP comes with the loss of the terminal, standard output and error are sent to
    ``/dev/null`` so that writing the last lines cannot fail.
    """

    def __init__(self, repeat_seconds: float = 1.0, launched: bool = False) -> None:
        self.received: int | None = None
        self.repeat_seconds = repeat_seconds
        self.launched = launched
        self._at = 0.0
        self._previous: dict[int, Any] = {}
        self._terminals: tuple[int, ...] = ()

    def __enter__(self) -> StopSignal:
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                if signal.getsignal(sig) is not signal.SIG_IGN:
                    self._previous[sig] = signal.signal(sig, self._handle)
            self._terminals = tuple(fd for fd in (1, 2) if _is_terminal(fd))
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if signum == signal.SIGHUP:
            self._leave_lost_terminal()
        now = time.monotonic()
        if self.received is None:
            self.received, self._at = signum, now
        elif now - self._at > self.repeat_seconds and not (
            self.launched and signum == self.received
        ):
            raise Interrupted(signum)

    def _leave_lost_terminal(self) -> None:
        for fd in self._terminals:
            if not _is_terminal(fd):  # hung up: every write would fail with EIO
                with open(os.devnull, "wb") as null:
                    os.dup2(null.fileno(), fd)

    @property
    def name(self) -> str:
        """``SIGINT``, ``SIGTERM`` or ``SIGHUP`` (``signal`` when none reached this process)."""
        return signal.Signals(self.received).name if self.received else "signal"

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _is_terminal(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False


@dataclass(frozen=True)
class Intervals:
    """When to log, validate and checkpoint: every so many steps (the config's intervals), and
    at the end of the run; a checkpoint also when stopped by a signal."""

    log: int
    validation: int
    checkpoint: int
    max_steps: int

    @classmethod
    def of(cls, t: TrainConfig) -> Intervals:
        return cls(t.log_interval, t.val_interval, t.checkpoint_interval, t.max_steps)

    def log_at(self, step: int) -> bool:
        return step % self.log == 0

    def validate_at(self, step: int, stopping: bool) -> bool:
        return step % self.validation == 0 or (step >= self.max_steps and not stopping)

    def checkpoint_at(self, step: int, stopping: bool) -> bool:
        return step % self.checkpoint == 0 or step >= self.max_steps or stopping


class LogWindow:
    """The steps since the last log: the sums of the values of the steps that were not skipped
    and the time spent."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.sums: dict[str, float] = {}
        self.counted = 0
        self.steps = 0
        self.seconds = 0.0

    def add(self, result: StepResult, seconds: float) -> None:
        self.steps += 1
        self.seconds += seconds
        if not (result.d_skipped or result.g_skipped):
            self.counted += 1
            for k, v in result.values.items():
                self.sums[k] = self.sums.get(k, 0.0) + v

    def means(self) -> dict[str, float]:
        return {k: v / self.counted for k, v in self.sums.items()}

    @property
    def steps_per_s(self) -> float:
        return self.steps / max(self.seconds, 1e-9)


class SkippedSteps:
    """Counts the steps whose update was skipped for a non-finite loss or gradient, and stops
    the run (without a checkpoint) after ``max_in_a_row`` of them in a row."""

    def __init__(self, max_in_a_row: int, out: Path) -> None:
        self.max_in_a_row = max_in_a_row
        self.out = out
        self.in_a_row = 0

    def check(
        self, result: StepResult, state: TrainState, monitor: Monitor, last_good: Path | None
    ) -> None:
        if not (result.d_skipped or result.g_skipped):
            self.in_a_row = 0
            return
        state.skipped_steps += 1
        self.in_a_row += 1
        which = " and ".join(
            name
            for name, bad in (("discriminator", result.d_skipped), ("generator", result.g_skipped))
            if bad
        )
        monitor.print(
            f"warning: step {state.step}: non-finite {which} loss or gradients; update skipped"
        )
        if self.in_a_row >= self.max_in_a_row:
            raise TrainingDiverged(
                f"losses or gradients were NaN/inf for {self.in_a_row} steps in a row (up to "
                f"step {state.step}); stopped without saving; last good checkpoint: "
                f"{last_good or 'none'}",
                self.out,
            )


class UnreadableClips:
    """Training clips found unreadable during the run (the dataset trains on other clips in
    their place): each is warned about once and listed in ``RUN_DIR/data/skipped.tsv``. When
    none is left, the run stops, with a checkpoint."""

    def __init__(self, run: Run, active: bool) -> None:
        self.listing = run.out / "data" / SKIPPED
        self.total = len(run.train_clips)
        self.active = active
        self.found: dict[str, str] = {}

    def add(self, unreadable: list[tuple[str, str]], monitor: Monitor) -> None:
        new = {path: reason for path, reason in unreadable if path not in self.found}
        if not new:
            return
        self.found.update(new)
        for path, reason in new.items():
            monitor.print(
                f"warning: {path}: {reason}; skipped: training goes on without it (listed in "
                f"{self.listing})"
            )
        if self.active:
            try:
                write_skipped(self.listing, list(new.items()), append=True)
            except HiFiGANError as e:
                monitor.print(f"warning: {e}")

    @property
    def exhausted(self) -> bool:
        """No training clip can be read any more."""
        return len(self.found) >= self.total


def advance(state: TrainState, batches_per_epoch: int, nets: Networks) -> None:
    """One step done: the step, the data position and, at the end of an epoch, the
    learning-rate decay."""
    state.step += 1
    state.batch_in_epoch += 1
    if state.batch_in_epoch == batches_per_epoch:
        state.epoch += 1
        state.batch_in_epoch = 0
        nets.decay_learning_rate()


def stop_without_data(
    checkpointer: Checkpointer, state: TrainState, unreadable: UnreadableClips
) -> None:
    """No training clip can be read any more: save the run at this step, then stop."""
    if state.step > 0 and checkpointer.last != checkpoint_path(checkpointer.folder, state.step):
        checkpointer.save(state)
    saved = f", saved {checkpointer.last}" if checkpointer.last else ""
    raise DataError(
        f"none of the {unreadable.total} training clips can be read any more (listed in "
        f"{unreadable.listing}); stopped at step {state.step}{saved}"
    )


def log_training(
    monitor: Monitor,
    state: TrainState,
    window: LogWindow,
    nets: Networks,
    config: HiFiGANConfig,
) -> None:
    """TensorBoard scalars of the steps since the last log and, without a progress bar, a line
    of text."""
    t, means, rate = config.train, window.means(), window.steps_per_s
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
        losses = " ".join(f"{k} {means[k]:.4g}" for k in ("loss_g", "loss_d", "mel") if k in means)
        monitor.print(
            f"step {state.step}/{t.max_steps} epoch {state.epoch}: {losses}, {rate:.2f} steps/s"
        )


def open_monitor(run: Run, state: TrainState, options: TrainOptions, active: bool) -> Monitor:
    """The run's progress bar, TensorBoard writer and metrics file, from ``state.step``."""
    return Monitor(
        run.out,
        active=active,
        start_step=state.step,
        resumed=run.resumed is not None,
        total=run.config.train.max_steps,
        progress=options.progress,
        tensorboard=options.tensorboard,
    )


def report_stop(monitor: Monitor, name: str, step: int, saved: Path | None, out: Path) -> None:
    """The one line that says how a signal ended the run and how to go on (not an error if
    the terminal it goes to is gone)."""
    with contextlib.suppress(OSError):
        monitor.print(
            f"stopped by {name} at step {step}: saved {shown(saved) if saved else None}; "
            f"continue with: hifigan train --out {shlex.quote(shown(out))} --resume"
        )


# ---------------------------------------------------------------------- the run
def train(options: TrainOptions) -> TrainResult:
    """Train (or resume) a run in ``options.out``; see the module docstring. Raises
    :class:`~hifigan.train.run_folder.RunFolderBusy` while another trainer owns the folder."""
    procs, device = start_processes(options.device)
    try:
        stop_signal = StopSignal(launched=procs.enabled)
        with stop_signal as stop, run_folder_locked(options.out, procs) as lock:
            result = _run(options, procs, device, stop, lock)
            procs.barrier()  # the others wait while the main process validates and saves
        return result
    finally:
        stop_processes(procs)


@dataclass
class Training:
    """An opened run with everything its loop works with (one per process)."""

    run: Run
    options: TrainOptions
    procs: Processes
    device: torch.device
    stop: StopSignal
    adaptation: Adaptation
    nets: Networks
    state: TrainState
    loader: torch.utils.data.DataLoader
    sampler: EpochBatchSampler
    checkpointer: Checkpointer
    validate: Validator
    monitor: Monitor

    @classmethod
    def open(
        cls,
        options: TrainOptions,
        procs: Processes,
        device: torch.device,
        stop: StopSignal,
        lock: RunFolderLock | None,
    ) -> Training:
        check_step_options(device, options.precision, options.disc_pass)
        run = open_run(options, procs)
        adaptation = Adaptation(run, options, device, procs)  # --model auto picks the start
        options = adaptation.options
        nets, state = start_networks(run, options, device, procs)
        loader, sampler = make_loader(run, device, procs, () if lock is None else (lock.fd,))
        checkpointer = Checkpointer(run, nets, keep=options.keep_checkpoints, active=procs.is_main)
        validate = Validator(
            run,
            nets,
            checkpointer,
            device,
            active=procs.is_main,
            audio_samples=options.audio_samples,
        )
        if procs.is_main:  # the run opened without error: now its files may change
            commit_run(run)
        monitor = open_monitor(run, state, options, active=procs.is_main)
        return cls(
            run, options, procs, device, stop, adaptation, nets, state, loader, sampler,
            checkpointer, validate, monitor,
        )  # fmt: skip

    def result(self, stopped_by: str) -> TrainResult:
        return TrainResult(self.state, stopped_by, self.checkpointer.last, self.validate.history)

    def stop_requested(self) -> str | None:
        """The name of the stop signal received by any process (the same on all)."""
        signum = self.procs.largest(self.stop.received or 0)
        return signal.Signals(signum).name if signum else None

    def stop_here(self, name: str) -> TrainResult:
        """Save the run at this step (unless that checkpoint exists) and say so."""
        checkpointer, state = self.checkpointer, self.state
        if checkpointer.last != checkpoint_path(checkpointer.folder, state.step):
            checkpointer.save(state)
        report_stop(self.monitor, name, state.step, checkpointer.last, self.run.out)
        return self.result(name)

    def start(self) -> TrainResult | None:
        """Before the first step: the first validation and the discriminator warm-up of a new
        run. Returns how the run ended when it must not train (at max_steps, or a signal)."""
        state, t = self.state, self.run.config.train
        if state.step >= t.max_steps:
            self.monitor.print(f"the run is already at step {state.step} (max_steps {t.max_steps})")
            return TrainResult(state, "max_steps", self.run.latest, self.validate.history)
        name = self.stop_requested()  # a signal while the run opened (data, networks)
        if name is None and state.step == 0:
            self.validate(state, {}, self.monitor)
            warm_data = batches(self.loader, self.sampler, state)
            self.adaptation.warm_up(
                self.nets, warm_data, state, self.monitor, lambda: self.stop.received is not None
            )
            name = self.stop_requested()
        return None if name is None else self.stop_here(name)

    def loop(self) -> TrainResult:
        """Train up to ``max_steps``, or until a signal or an early stop."""
        run, state, monitor, nets = self.run, self.state, self.monitor, self.nets
        checkpointer, procs, t = self.checkpointer, self.procs, run.config.train
        intervals, window = Intervals.of(t), LogWindow()
        skipped = SkippedSteps(self.options.max_bad_steps, run.out)
        unreadable = UnreadableClips(run, active=procs.is_main)
        data = batches(self.loader, self.sampler, state)
        while state.step < t.max_steps:
            t0 = time.perf_counter()
            try:
                mel, audio, found = next(data)
            except RuntimeError:
                if self.stop.received is None:
                    raise
                return self.stop_here(self.stop.name)  # a worker died of it all the same
            unreadable.add(found, monitor)
            if procs.any_process(unreadable.exhausted):
                stop_without_data(checkpointer, state, unreadable)
            mel = mel.to(self.device, non_blocking=True)  # (B, n_mels, frames)
            real = audio.to(self.device, non_blocking=True).unsqueeze(1)  # (B, 1, segment)
            result = train_step(nets, mel, real, procs)
            advance(state, self.sampler.batches_per_epoch, nets)
            seconds = time.perf_counter() - t0
            state.train_seconds += seconds
            window.add(result, seconds)
            skipped.check(result, state, monitor, checkpointer.last)
            monitor.step({k: result.values[k] for k in ("loss_g", "loss_d", "mel")})

            # logs, validation, checkpoints (files: main process only)
            signalled = self.stop_requested()
            ending = self.adaptation.out_of_time()  # ends like max_steps: validation, checkpoint
            means = window.means()
            if intervals.log_at(state.step):
                log_training(monitor, state, window, nets, run.config)
                window.reset()
            if intervals.validate_at(state.step, signalled is not None) or ending:
                self.validate(state, means, monitor)
                ending = self.adaptation.out_of_patience(state, self.validate.history) or ending
            if signalled is not None:
                return self.stop_here(signalled)
            if intervals.checkpoint_at(state.step, ending):
                checkpointer.save(state)
            if ending:
                reason = self.adaptation.reason
                monitor.print(
                    f"stopped by {reason} at step {state.step}; saved {checkpointer.last}"
                )
                return self.result(reason)
        return self.result("max_steps")


def _run(
    options: TrainOptions,
    procs: Processes,
    device: torch.device,
    stop: StopSignal,
    lock: RunFolderLock | None,
) -> TrainResult:
    training = Training.open(options, procs, device, stop, lock)
    try:
        return training.start() or training.loop()
    except Interrupted as e:
        e.step, e.checkpoint = training.state.step, training.checkpointer.last
        raise
    finally:
        try:
            training.monitor.close()
        finally:
            stop_loader(training.loader)
