"""hifigan train --config v1|v2|v3|debug|PATH --data DIR --out RUN_DIR: train a vocoder.

DIR is a dataset folder or an id|text filelist (anything hifigan prepare accepts; it is
prepared into RUN_DIR/data at the config's sample rate), or a folder prepared by hifigan
prepare (or its manifest.jsonl; resampled again if prepared for another rate). The run folder
receives config.json, checkpoints/step_XXXXXXXX.pt (the last --keep), checkpoints/best.pt (the
generator with the best validation mel L1), metrics.jsonl (one JSON object per validation) and
tensorboard/. --resume continues from the newest intact checkpoint exactly (models,
optimizers, schedulers, step, data position, RNG states) with the run's own config and data:
a --config or --data that differs from them is refused; only --max-steps, the intervals and
--num-workers may change. SIGINT, SIGTERM and SIGHUP (to the process or its whole group, as
Ctrl-C, timeout, SLURM, container stops and closed terminals send them) write a checkpoint at
the step reached, say so in one line and exit with 128 + the signal's number; a second signal
interrupts at once. One trainer at a time owns RUN_DIR (RUN_DIR/train.lock): another one, or
a --resume of a running run, is refused.

Fine-tuning: --checkpoint starts from any generator checkpoint (ours or the authors' g_ file,
with its do_ file beside it for the discriminators) and --fine-tune-mels DIR reads <id>.npy
mels (a TTS model's teacher-forced output) instead of computing them.

Adapting a pretrained model to a voice: --model NAME (or --model auto: the built-in model
whose copy synthesis of the validation clips is closest) with --data MY_VOICE. Options not
given take fine-tuning defaults (printed in one line); --disc-warmup N first trains the
discriminators alone against the frozen generator (default 0); --patience / --max-minutes stop
the run early (docs/adaptation.md).

Several processes: torchrun --nproc_per_node N -m hifigan train ...; the batch size is the
global batch, split evenly across the processes.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from ..errors import HiFiGANError
from ..precision import PRECISIONS
from ..train import TrainOptions, export_authors, list_checkpoints, train
from ..train.adapt import AUTO, RECIPE_FLAGS, builtin_candidates, with_recipe
from ..train.loop import Interrupted
from .common import (
    add_overwrite_argument,
    add_threads_argument,
    apply_threads,
    claim_authors_export,
    model_source,
)
from .options import add_device_argument, integer, number
from .prepare import add_data_arguments, data_options

HELP = "train a vocoder (or fine-tune one) on a dataset; resumable, torchrun-ready"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data",
        type=Path,
        default=None,
        metavar="DIR",
        help="dataset folder, id|text filelist, or prepared folder (or its manifest.jsonl)",
    )
    p.add_argument("--out", type=Path, required=True, metavar="RUN_DIR", help="run folder")
    _add_start_arguments(p)
    p.add_argument("--resume", action="store_true", help="continue the run in RUN_DIR")
    p.add_argument("--max-steps", type=integer(1), default=None, help="stop at this step")
    p.add_argument("--batch-size", type=integer(1, 65_536), default=None, help="global batch size")
    p.add_argument(
        "--fine-tune-mels",
        type=Path,
        default=None,
        metavar="DIR",
        help="folder of <id>.npy input mels (fine-tuning on a TTS model's output)",
    )
    add_data_arguments(p)
    add_device_argument(p, what="training")
    p.add_argument(
        "--precision",
        default=None,
        choices=list(PRECISIONS),
        help="autocast precision; STFT, mel and losses stay fp32 (fp16: CUDA only; default "
        "fp32, or bf16 where supported when fine-tuning)",
    )
    p.add_argument("--compile", action="store_true", help="torch.compile the networks")
    p.add_argument(
        "--disc-pass",
        default=None,
        choices=["separate", "joint"],
        help="joint: real and generated audio in one discriminator batch (faster; default "
        "separate, joint when fine-tuning)",
    )
    add_threads_argument(p)
    p.add_argument(
        "--num-workers",
        type=integer(0, 1024),
        default=None,
        help="data loader workers (at most the CPUs available to the process; 0: load in the "
        "training process)",
    )
    p.add_argument("--log-interval", type=integer(1), default=None, help="steps between logs")
    p.add_argument(
        "--val-interval", type=integer(1), default=None, help="steps between validations"
    )
    p.add_argument(
        "--checkpoint-interval", type=integer(1), default=None, help="steps between checkpoints"
    )
    p.add_argument(
        "--keep",
        type=integer(0),
        default=3,
        help="step checkpoints to keep (default 3; 0 keeps all)",
    )
    p.add_argument(
        "--val-clips", type=integer(1), default=None, help="validate on the first N clips"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-tensorboard", action="store_true", help="no TensorBoard logs")
    p.add_argument(
        "--export-authors",
        type=Path,
        default=None,
        metavar="DIR",
        help="write RUN_DIR's newest checkpoint as the authors' g_/do_ files and exit",
    )
    add_overwrite_argument(
        p, help="with --export-authors: replace files of that name in DIR (never an input)"
    )
    _add_adaptation_arguments(p)


def _add_adaptation_arguments(p: argparse.ArgumentParser) -> None:
    """The recipe values outside the presets, and the options of hifigan.train.adapt."""
    a = p.add_argument_group("fine-tuning (defaults when starting from a pretrained model)")
    a.add_argument(
        "--learning-rate", type=number(0, 1, above=True), default=None, help="AdamW learning rate"
    )
    a.add_argument(
        "--lr-decay",
        type=number(0, 1, above=True),
        default=None,
        help="learning-rate factor per epoch",
    )
    a.add_argument(
        "--segment-size", type=integer(1, 10_000_000), default=None, help="training crop in samples"
    )
    a.add_argument(
        "--disc-warmup",
        type=integer(0),
        default=None,
        metavar="N",
        help="first train the discriminators alone for N steps when the start has none (default 0)",
    )
    a.add_argument(
        "--patience",
        type=integer(1),
        default=None,
        metavar="K",
        help="stop after K validations without a better val mel L1 (with a checkpoint)",
    )
    a.add_argument(
        "--max-minutes",
        type=number(0, 1_000_000, above=True),
        default=None,
        help="stop after this much wall-clock time (with a validation and a checkpoint)",
    )


def _add_start_arguments(p: argparse.ArgumentParser) -> None:
    """What to start from: the options of :func:`~hifigan.cli.common.add_model_arguments`
    (read by :func:`~hifigan.cli.common.model_source`), with help texts for training."""
    start = p.add_mutually_exclusive_group()
    start.add_argument(
        "--model",
        metavar="NAME|PATH",
        default=None,
        help="start from a built-in model (see hifigan models), a checkpoint path, or auto "
        "(the built-in model closest to the data before training)",
    )
    start.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="start from this checkpoint (ours, or the authors' g_ file with its do_ file "
        "beside it for the discriminators)",
    )
    p.add_argument(
        "--config",
        default=None,
        help="preset (v1, v2, v3, debug; v1-16k, v1-24k, v1-44k, v1-48k, v2-*, v3-*) or JSON "
        "config (default: the starting checkpoint's, else v1; when resuming, the run's)",
    )


def run(args: argparse.Namespace) -> int:

    apply_threads(args.threads)
    for flag, value in (("--keep", args.keep), ("--val-clips", args.val_clips)):
        if value is not None and value < 0:
            raise HiFiGANError(f"{flag} must be 0 or more, got {value}")
    if args.export_authors is not None:
        found = list_checkpoints(args.out / "checkpoints")
        if not found:
            raise HiFiGANError("no step_*.pt checkpoint to export", args.out / "checkpoints")
        claim_authors_export(args, found[-1])
        g_path, do_path = export_authors(found[-1], args.export_authors)
        print(f"wrote {g_path} and {do_path}", file=sys.stderr)
        return 0
    checkpoint, config, candidates = None, args.config, None
    if args.model == AUTO:
        candidates, preset = builtin_candidates()
        config = args.config or preset
    elif args.checkpoint is not None or args.model is not None:
        checkpoint, config = model_source(args)  # a built-in model comes with its preset
    options = TrainOptions(
        out=args.out,
        data=args.data,
        config=config,
        **data_options(args),
        fine_tune_mels=args.fine_tune_mels,
        checkpoint=checkpoint,
        resume=args.resume,
        device=args.device,
        compile=args.compile,
        keep_checkpoints=args.keep,
        progress=not args.no_progress,
        tensorboard=not args.no_tensorboard,
        patience=args.patience,
        max_minutes=args.max_minutes,
        start_candidates=candidates,
    )
    # every recipe value: the option given, else the fine-tuning or the plain default
    given = {k: getattr(args, k) for k in RECIPE_FLAGS}
    try:
        result = train(with_recipe(options, given, config_given=args.config is not None))
    except Interrupted as e:  # a second signal: no checkpoint of the step reached
        at = f" at step {e.step}" if e.step is not None else ""
        newest = f"; the newest checkpoint is {e.checkpoint}" if e.checkpoint else ""
        with contextlib.suppress(OSError):
            print(f"interrupted by a second signal ({e}){at}, not saved{newest}", file=sys.stderr)
        return 128 + e.signum
    return 128 + result.signal if result.signal else 0
