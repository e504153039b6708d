"""Adapting a pretrained vocoder to a new voice: the fine-tuning recipe around the plain loop.

* **Starting point.** ``--model auto`` scores the built-in generators by the mel L1 of copy
  synthesis on the run's first validation clips and starts from the lowest
  (:func:`score_candidates`, :meth:`Adaptation.__init__`).
* **Discriminator warm-up.** A built-in model (or any generator-only file) comes without
  discriminators. With ``disc_warmup`` N > 0 the new ones first train alone against the
  frozen generator's output for N steps (:meth:`Adaptation.warm_up`); the generator and its
  optimizer do not change. A start with discriminator weights skips it. The default is 0:
  warmed-up discriminators push the generator further from a new voice in the first steps
  than fresh ones do, and gain nothing over an hour (docs/adaptation.md has the figures).
* **Defaults.** :data:`FINE_TUNE_DEFAULTS` (per device type) fill every recipe option the
  user did not give when training starts from a pretrained generator
  (:func:`with_recipe`); ``RUN_DIR/recipe.json`` records the options that are not in the
  config, so ``--resume`` continues the same way.
* **Stopping.** ``patience`` validations without a new best, or ``max_minutes`` of
  wall-clock time, end the run with a validation and a checkpoint
  (:meth:`Adaptation.out_of_time`, :meth:`Adaptation.out_of_patience`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..checkpoint import load_generator
from ..config import HiFiGANConfig
from ..errors import ConfigError
from ..inference import resolve_device
from ..inference.backends import AUTO
from ..io import atomic_write_text
from ..mel import MelSpectrogram
from ..precision import bf16_supported
from .dataset import FineTuneMels, load_validation
from .distributed import Processes
from .manifest import Clip, DataError
from .monitor import Monitor
from .run_folder import config_of, list_checkpoints
from .setup import Run, TrainOptions, TrainState, say
from .step import Networks, train_step
from .validation import validate

RECIPE = "recipe.json"
AUTO_CLIPS = 10  # validation clips that score the candidates of --model auto

# ---------------------------------------------------------------------- defaults

#: every recipe option: its TrainOptions field (or config ``train`` field) and CLI flag
RECIPE_FLAGS: dict[str, str] = {
    "learning_rate": "--learning-rate",
    "lr_decay": "--lr-decay",
    "segment_size": "--segment-size",
    "batch_size": "--batch-size",
    "precision": "--precision",
    "disc_pass": "--disc-pass",
    "num_workers": "--num-workers",
    "log_interval": "--log-interval",
    "val_interval": "--val-interval",
    "val_clips": "--val-clips",
    "checkpoint_interval": "--checkpoint-interval",
    "max_steps": "--max-steps",
    "disc_warmup": "--disc-warmup",
}
#: the recipe options that live in the config's ``train`` section
CONFIG_FIELDS = ("learning_rate", "lr_decay", "segment_size")
#: the recipe options that a config file holds (its ``train`` section)
TRAIN_SECTION = (
    *CONFIG_FIELDS,
    "batch_size",
    "num_workers",
    "log_interval",
    "val_interval",
    "checkpoint_interval",
    "max_steps",
)
#: the options not in the config, recorded in RUN_DIR/recipe.json for --resume
RECORDED = ("precision", "disc_pass", "val_clips")
#: the loop's own defaults (the authors' step): for a run without recipe.json, and for
#: training from scratch where :func:`scratch_defaults` has nothing faster
PLAIN: dict[str, Any] = {"precision": "fp32", "disc_pass": "separate", "disc_warmup": 0}


@dataclass(frozen=True)
class FineTuneDefaults:
    """The recipe of ``hifigan train`` when it starts from a pretrained generator, for one
    device type; each value yields to the option the user gives (docs/adaptation.md says why
    each was chosen)."""

    learning_rate: float
    lr_decay: float  # per epoch, as in the paper
    segment_size: int
    batch_size: int
    num_workers: int  # capped at the CPUs this process may use
    precision: str  # "bf16" falls back to "fp32" where the device lacks bf16 kernels
    disc_pass: str
    log_interval: int
    val_interval: int
    val_clips: int | None  # None: every validation clip
    checkpoint_interval: int
    max_steps: int
    disc_warmup: int


FINE_TUNE_DEFAULTS: dict[str, FineTuneDefaults] = {
    # a few cores: about 0.4 steps/s in bf16 with batch 2, so small batches and frequent,
    # short validations, to see progress within minutes
    "cpu": FineTuneDefaults(
        # the largest rate at which an hour of adaptation no longer raises the periodicity
        # error of the starting model (docs/adaptation.md has the sweep)
        learning_rate=1.25e-5,
        lr_decay=0.999,
        segment_size=8192,
        batch_size=2,
        num_workers=1,
        precision="bf16",
        disc_pass="joint",
        log_interval=10,
        val_interval=100,
        val_clips=10,
        checkpoint_interval=200,
        max_steps=2000,
        disc_warmup=0,  # warmed-up discriminators hurt the first steps (docs/adaptation.md)
    ),
    # a GPU: the paper's batch, validation on every clip
    "cuda": FineTuneDefaults(
        learning_rate=1e-4,  # an estimate: 8 times the CPU batch, so less gradient noise
        lr_decay=0.999,
        segment_size=8192,
        batch_size=16,
        num_workers=4,
        precision="bf16",
        disc_pass="joint",
        log_interval=50,
        val_interval=500,
        val_clips=None,
        checkpoint_interval=1000,
        max_steps=10000,
        disc_warmup=0,  # the CPU's default; the warm-up was measured on CPUs only
    ),
}


def available_cpus() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def device_type(device: str) -> str:
    """``cuda`` or ``cpu``: the kind of device ``device`` (``auto``, ``cpu``, ``cuda:N``) means."""
    if device == AUTO:
        return resolve_device(device).type
    return "cuda" if device.startswith("cuda") else "cpu"


def fine_tune_defaults(device: str) -> dict[str, Any]:
    """:data:`FINE_TUNE_DEFAULTS` for ``device``, resolved for the machine it runs on (bf16
    only where supported, loader workers at most the CPUs available)."""
    kind = device_type(device)
    values = dataclasses.asdict(FINE_TUNE_DEFAULTS[kind])
    if values["precision"] == "bf16" and not bf16_supported(kind):
        values["precision"] = "fp32"
    values["num_workers"] = min(values["num_workers"], available_cpus())
    return values


def scratch_defaults(device: str) -> dict[str, Any]:
    """The defaults of a run from scratch on ``device``: :data:`PLAIN`, except on a CPU with
    bf16 kernels, where bf16 autocast and the joint discriminator pass are the default (the
    fastest step measured that still learns as the fp32 one does; docs/training.md)."""
    kind = device_type(device)
    if kind == "cpu" and bf16_supported(kind):
        return {**PLAIN, "precision": "bf16", "disc_pass": "joint"}
    return dict(PLAIN)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


_LABELS: dict[str, Any] = {
    "learning_rate": lambda v: f"lr {v:g}",
    "lr_decay": lambda v: f"lr decay {v:g}/epoch",
    "batch_size": lambda v: f"batch {v}",
    "segment_size": lambda v: f"segment {v}",
    "precision": str,
    "disc_pass": lambda v: f"{v} D pass",
    "num_workers": lambda v: _count(v, "loader worker"),
    "log_interval": lambda v: f"log every {v} steps",
    "val_interval": lambda v: f"val every {v} steps",
    "val_clips": lambda v: "val on all clips" if v is None else "val on " + _count(v, "clip"),
    "checkpoint_interval": lambda v: f"checkpoint every {v} steps",
    "max_steps": lambda v: f"at most {v} steps",
    "disc_warmup": lambda v: f"D warm-up {v} steps",
}


def describe(values: dict[str, Any], given: set[str], config_note: str = "") -> str:
    """The one line that lists a fine-tuning recipe (the keys of ``values``), marking the
    values the user gave."""
    parts = [
        _LABELS[k](values[k]) + (" (given)" if k in given else "")
        for k in RECIPE_FLAGS
        if k in values
    ]
    flags = ", ".join(RECIPE_FLAGS.values())
    return f"fine-tuning defaults: {', '.join(parts)}{config_note} (override with {flags})"


def read_recipe(out: Path) -> dict[str, Any]:
    """What ``RUN_DIR/recipe.json`` records ({} when there is none or it is unreadable)."""
    try:
        recorded = json.loads((Path(out) / RECIPE).read_text())
    except (OSError, ValueError):
        return {}
    return recorded if isinstance(recorded, dict) else {}


def with_recipe(
    options: TrainOptions, given: dict[str, Any], *, config_given: bool = False
) -> TrainOptions:
    """``options`` with every recipe option (:data:`RECIPE_FLAGS`) set: the value in ``given``
    when not None, else the fine-tuning default when the run starts from a pretrained
    generator (printing the line of :func:`describe`), else what the run recorded when
    resuming, else the plain loop's default. With ``config_given`` (the user's ``--config``)
    the config's own training values stand and the defaults fill only the others. Changing
    a config value on resume is an error; the same command plus ``--resume`` is not.
    """
    out = Path(options.out)
    resuming = options.resume and bool(list_checkpoints(out / "checkpoints"))
    pretrained = options.checkpoint is not None or bool(options.start_candidates)
    explicit = {k for k, v in given.items() if v is not None and k in RECIPE_FLAGS}
    note = ""
    if resuming:
        kept = _run_train_values(out)
        changed = [
            RECIPE_FLAGS[k] for k in CONFIG_FIELDS if k in explicit and given[k] != kept.get(k)
        ]
        if changed:
            raise ConfigError(
                f"cannot change {', '.join(changed)} when resuming (the run keeps its config)",
                out / "config.json",
            )
        base = {**PLAIN, **{k: v for k, v in read_recipe(out).items() if k in RECORDED}}
    elif pretrained:
        base = fine_tune_defaults(options.device)
        if config_given:
            base = {k: v for k, v in base.items() if k not in TRAIN_SECTION}
            note = f", the other training values from {options.config}"
    else:
        base = scratch_defaults(options.device)  # the run says which step it takes
    values = {k: given[k] if k in explicit else base.get(k) for k in RECIPE_FLAGS}
    # a resumed run keeps its config: only one the user named is checked against it, not
    # the preset a --model brings (the fine-tuning values have changed that preset's)
    config = None if resuming and not config_given else options.config
    train_values = {k: values[k] for k in CONFIG_FIELDS if values[k] is not None}
    if train_values and not resuming:
        if options.checkpoint is not None:
            config = config_of(Path(options.checkpoint), options.config)
        elif not isinstance(config, HiFiGANConfig):
            config = HiFiGANConfig.load(config or "v1")
        train = dataclasses.replace(config.train, **train_values)
        config = dataclasses.replace(config, train=train)
    if pretrained and not resuming:
        shown = {k: values[k] for k in RECIPE_FLAGS if k in base or k in explicit}
        say(describe(shown, explicit, note))
    fields = {k: v for k, v in values.items() if k not in CONFIG_FIELDS}
    return dataclasses.replace(options, config=config, **fields)


def _run_train_values(out: Path) -> dict[str, Any]:
    """The recipe values of the run's ``config.json`` ({} when it cannot be read: then every
    value given counts as a change)."""
    try:
        train = HiFiGANConfig.from_file(out / "config.json").train
    except ConfigError:
        return {}
    return {k: getattr(train, k) for k in CONFIG_FIELDS}


# ---------------------------------------------------------------------- starting point
def builtin_candidates() -> tuple[dict[str, Path], str]:
    """The installed built-in models (name -> verified weight file) and their shared config
    preset: the candidates of ``--model auto``."""
    from ..pretrained import (
        INSTALL_HINT,
        MODELS,
        ModelNotInstalledError,
        installed_weights,
        is_installed,
    )

    found = [m for m in MODELS if is_installed(m)]
    if not found:
        raise ModelNotInstalledError(f"--model auto needs the built-in models: {INSTALL_HINT}")
    presets = {m.config for m in found}
    if len(presets) > 1:
        raise ConfigError(f"--model auto: the built-in models need different configs {presets}")
    return {m.name: installed_weights(m) for m in found}, presets.pop()


def score_candidates(
    candidates: dict[str, Path],
    clips: list[Clip],
    config: HiFiGANConfig,
    device: torch.device,
    fine_tune: FineTuneMels | None = None,
) -> dict[str, float]:
    """The mean mel L1 (the validation measure: loss-mels, whole utterances) of copy
    synthesis on ``clips`` by each candidate generator, loaded with ``config``."""
    utterances = load_validation(clips, config.mel, fine_tune)
    mel_loss = MelSpectrogram.from_config(config.mel, for_loss=True).to(device)
    scores = {}
    for name, path in candidates.items():
        generator, _ = load_generator(path, config)
        scores[name] = validate(generator.to(device), utterances, mel_loss, device, 0)[0]
    return scores


def _choose(
    run: Run, candidates: dict[str, Path], device: torch.device, procs: Processes
) -> tuple[str, dict[str, float]]:
    """The best candidate's name and every score (scored by the main process, shared)."""
    clips = (run.val_clips or run.train_clips)[:AUTO_CLIPS]
    if not clips:
        raise DataError("--model auto needs clips to score the models on", run.out)
    scores: dict[str, float] = {}
    if procs.is_main:
        scores = score_candidates(candidates, clips, run.config, device, run.fine_tune)
    if procs.enabled:
        import torch.distributed as dist

        shared = [scores]
        dist.broadcast_object_list(shared, src=0)
        scores = shared[0]
    best = min(scores, key=scores.__getitem__)
    if procs.is_main:
        which = "validation" if run.val_clips else "training"
        listed = ", ".join(f"{name} {s:.4f}" for name, s in scores.items())
        say(
            f"--model auto: mel L1 of copy synthesis on {len(clips)} {which} clips: {listed}; "
            f"starting from {best} (the lowest: the closest to this voice before training)"
        )
    return best, scores


# ---------------------------------------------------------------------- the run
def check_options(options: TrainOptions) -> None:
    """Raise :class:`ConfigError` for a negative warm-up, a patience below 1 or a time budget
    that is not positive."""
    if options.disc_warmup < 0:
        raise ConfigError(f"--disc-warmup must be 0 or more, got {options.disc_warmup}")
    if options.patience is not None and options.patience < 1:
        raise ConfigError(f"--patience must be at least 1, got {options.patience}")
    if options.max_minutes is not None and not options.max_minutes > 0:
        raise ConfigError(f"--max-minutes must be positive, got {options.max_minutes}")


class Adaptation:
    """The adaptation parts of one run: the choice of the start (at construction, before the
    networks are built), the discriminator warm-up, and the early stops."""

    def __init__(
        self, run: Run, options: TrainOptions, device: torch.device, procs: Processes
    ) -> None:
        check_options(options)
        self.run, self.device, self.procs = run, device, procs
        self.reason: str | None = None  # "max_minutes" or "patience" once one says stop
        self.deadline = time.monotonic() + 60 * options.max_minutes if options.max_minutes else None
        scores = None
        if options.start_candidates and run.resumed is None and options.checkpoint is None:
            best, scores = _choose(run, options.start_candidates, device, procs)
            options = dataclasses.replace(options, checkpoint=options.start_candidates[best])
        self.options = options
        if procs.is_main and run.resumed is None:
            recipe = {k: getattr(options, k) for k in RECORDED}
            recipe.update(
                disc_warmup=options.disc_warmup,
                start=str(options.checkpoint) if options.checkpoint else None,
                start_scores=scores,
            )
            atomic_write_text(run.out / RECIPE, json.dumps(recipe, indent=2) + "\n")

    def warm_up(
        self,
        nets: Networks,
        data: Iterator[tuple[Tensor, Tensor]],
        state: TrainState,
        monitor: Monitor,
        stopped: Any,
    ) -> int:
        """Train the discriminators alone for ``disc_warmup`` steps when the run starts from
        a generator without discriminators. ``stopped()`` is true once a signal arrived.
        Returns the steps done; their time counts in ``state.train_seconds``."""
        n = self.options.disc_warmup
        if n <= 0 or self.run.resumed is not None or self.options.checkpoint is None:
            return 0
        if self.run.start_has_discriminators:
            monitor.print("discriminator warm-up skipped: the start has discriminator weights")
            return 0
        monitor.print(f"discriminator warm-up: {n} steps against the frozen generator")
        every = self.run.config.train.log_interval
        window: list[float] = []
        done, seconds = 0, state.train_seconds
        while done < n:
            t0 = time.perf_counter()
            mel, audio, _ = next(data)  # unreadable clips are reported by the main loop
            mel = mel.to(self.device, non_blocking=True)  # (B, n_mels, frames)
            real = audio.to(self.device, non_blocking=True).unsqueeze(1)  # (B, 1, segment)
            result = train_step(nets, mel, real, self.procs, update_generator=False)
            state.train_seconds += time.perf_counter() - t0
            done += 1
            if result.d_skipped:
                monitor.print(f"warning: warm-up step {done}: non-finite loss; update skipped")
            else:
                window.append(result.values["loss_d"])
            if window and (done % every == 0 or done == n):
                loss_d = sum(window) / len(window)
                monitor.scalars(done, {"warmup/loss_d": loss_d})
                monitor.print(f"warm-up {done}/{n}: loss_d {loss_d:.4g}")
                window.clear()
            if self.procs.any_process(stopped()) or self.out_of_time():
                break
        seconds = state.train_seconds - seconds
        monitor.print(f"discriminator warm-up done: {done} steps in {seconds:.1f} s")
        return done

    def out_of_time(self) -> bool:
        """Whether ``max_minutes`` have passed since the run opened (the same answer on every
        process)."""
        if self.deadline is None:
            return False
        if self.procs.any_process(time.monotonic() >= self.deadline):
            self.reason = "max_minutes"
            return True
        return False

    def out_of_patience(self, state: TrainState, history: list[dict[str, Any]]) -> bool:
        """Whether ``patience`` validations of this invocation came after the best one without
        beating it (decided by the main process, which validates)."""
        patience = self.options.patience
        if patience is None:
            return False
        since_best = sum(1 for record in history if record["step"] > state.best_step)
        if self.procs.any_process(since_best >= patience):
            self.reason = "patience"
            return True
        return False
