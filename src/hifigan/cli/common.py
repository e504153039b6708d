"""Helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from ..errors import HiFiGANError
from ..io import why_absent
from ..outputs import OVERWRITE_FLAG, OutputPlan
from ..pretrained import ModelChoice, choose_model
from ..threads import apply_threads as apply_threads  # the subcommands import it from here
from .options import threads as threads_type


def add_model_arguments(parser: argparse.ArgumentParser, default_model: str | None = None) -> None:
    """``--model NAME|PATH`` or ``--checkpoint PATH``, and ``--config PRESET|PATH``: which
    generator to load.

    Every command that loads a model uses these options (and :func:`model_source`), so that
    model selection behaves the same everywhere. With ``default_model`` (a registered name),
    that model is used when neither ``--model`` nor ``--checkpoint`` is given.
    """
    choice = parser.add_mutually_exclusive_group()
    default_note = f" (default: {default_model})" if default_model else ""
    choice.add_argument(
        "--model",
        metavar="NAME|PATH",
        default=None,
        help="a built-in model (see `hifigan models`) or a checkpoint path" + default_note,
    )
    choice.add_argument(
        "--checkpoint", type=Path, default=None, help="generator checkpoint (ours or the authors')"
    )
    parser.add_argument(
        "--config",
        default=None,
        help="preset name or JSON config, needed only if the checkpoint carries none and has no "
        "config.json beside it",
    )
    parser.set_defaults(default_model=default_model)


def model_source(args: argparse.Namespace) -> tuple[Path, str | None]:
    """The checkpoint path and config chosen by :func:`add_model_arguments`' options (see
    :func:`hifigan.pretrained.choose_model`); says so on stderr when the default is used."""
    choice = choose_model(
        args.model, args.checkpoint, args.config, getattr(args, "default_model", None)
    )
    note_default_model(choice)
    return choice.checkpoint, choice.config


def note_default_model(choice: ModelChoice) -> None:
    """Say on stderr which model is used when the command line named none."""
    if choice.is_default:
        print(f"model: {choice.name} (the default; choose another with --model)", file=sys.stderr)


def add_threads_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threads",
        type=threads_type,
        default=None,
        help="CPU threads for torch (default: the cores idle when the command starts)",
    )


def progress(items: list, desc: str) -> Iterable:
    """A progress bar over ``items`` on standard error (hidden when it is not a terminal)."""
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="file", disable=None, file=sys.stderr, dynamic_ncols=True)


def add_overwrite_argument(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
    help: str = "replace output files that exist already (never an input)",
) -> None:
    """``--overwrite``: the one option, in every command that writes, that lets an output
    replace a file that exists (an input is never replaced; see :mod:`hifigan.outputs`)."""
    parser.add_argument(OVERWRITE_FLAG, action="store_true", help=help)


def output_plan(args: argparse.Namespace, inputs: Iterable[str | Path | None] = ()) -> OutputPlan:
    """The :class:`~hifigan.outputs.OutputPlan` of this run: ``--overwrite`` as given, with
    ``inputs`` and the model files the command reads (checkpoint, config, config.json beside
    the checkpoint) never to be replaced."""
    plan = OutputPlan(overwrite=bool(getattr(args, "overwrite", False)), inputs=inputs)
    for name in ("checkpoint", "config", "model"):
        value = getattr(args, name, None)
        if value is not None:
            plan.add_inputs([Path(value), Path(value).parent / "config.json"])
    return plan


def claim_authors_export(args: argparse.Namespace, checkpoint: Path) -> OutputPlan:
    """Claim what ``train --export-authors DIR`` writes for the run's ``step_N.pt``:
    ``DIR/g_N``, ``DIR/do_N`` and ``DIR/config.json``; the checkpoint and the run's own
    config are inputs."""
    out: Path = args.export_authors
    step = int(checkpoint.stem.split("_")[-1])
    plan = output_plan(
        argparse.Namespace(overwrite=args.overwrite),
        [checkpoint, checkpoint.parent / "config.json", args.out / "config.json"],
    )
    plan.claim_folder(out)
    plan.claim_all(out / name for name in (f"g_{step:08d}", f"do_{step:08d}", "config.json"))
    return plan


def claim_batch(
    plan: OutputPlan, files: list[Path], outdir: Path, suffix: str, also: Iterable[Path] = ()
) -> None:
    """Claim ``outdir/<stem><suffix>`` for each of ``files`` (inputs of ``plan``), and the
    ``also`` files, all at once (:meth:`~hifigan.outputs.OutputPlan.claim_all`). Missing
    inputs claim nothing: they are reported as not found."""
    plan.add_inputs(files)
    plan.claim_folder(outdir)
    present = [p for p in files if p.exists()]
    plan.claim_all([*((outdir / f"{p.stem}{suffix}", p) for p in present), *also])


def process_files(
    files: list[Path],
    outdir: Path,
    suffix: str,
    work: Callable[[Path, Path], None],
    desc: str,
    plan: OutputPlan,
    also: Iterable[Path] = (),
) -> int:
    """Run ``work(input, output)`` for each file, writing ``outdir/<stem><suffix>``.

    Every output is claimed in ``plan`` before any work: an output folder that is a file, an
    output that is an input, two inputs with one output name, or an existing output without
    ``--overwrite`` stop the command with nothing written; ``also`` are the command's other
    outputs, written after the files, claimed with them. After that, a failing file does
    not stop the others; failures are listed at the end and the exit status is 1 if there
    were any.
    """
    claim_batch(plan, files, outdir, suffix, also)
    failures: list[str] = []
    written: set[Path] = set()
    for path in progress(files, desc):
        out = outdir / f"{path.stem}{suffix}"
        if not path.exists():
            failures.append(f"{path}: {why_absent(path)}")
            continue
        if out in written:
            continue  # the same input named twice
        try:
            work(path, out)
        except HiFiGANError as e:
            failures.append(str(e))
        else:
            written.add(out)
    done = len(written)
    if failures:
        print(f"error: {len(failures)} of {len(files)} files failed:", file=sys.stderr)
        for line in failures:
            print(f"  {line}", file=sys.stderr)
    print(f"wrote {done} file{'s' if done != 1 else ''} to {outdir}", file=sys.stderr)
    return 1 if failures else 0
