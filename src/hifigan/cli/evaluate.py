"""hifigan evaluate: objective metrics, per-file CSV, summary JSON, Markdown report, plots.

Score existing files (paired by stem with the references):

    hifigan evaluate --ref refs/ --gen model_a/ --gen model_b/ -o report/

Or re-synthesize reference clips first (copy synthesis), beside a Griffin-Lim baseline:

    hifigan evaluate --data hifigan-demo --model lj-v1 --compare universal=universal-v1 -o report/
    hifigan evaluate --data LJSpeech-1.1/metadata.csv --limit 20 --data my_voice/ \\
        --checkpoint runs/my_voice/checkpoints/best.pt --compare lj=lj-v1 -o report/

--data takes a folder of audio files (hifigan-demo/ is what `hifigan demo` writes) or an id|text
list with the audio in wavs/ beside it (LJSpeech-1.1/ stands for your copy of that dataset).
Profiles: --quick (PESQ, ESTOI, M-STFT, mel L1, LSD, MCD: no neural metric) or the default
full set; --metrics a,b,c picks any. Needs pip install 'hifigan[eval]'.

Scoring happens at the model's rate (with --ref, the references' rate or --sample-rate): the
spectral distances at that rate; PESQ, ESTOI, ViSQOL, DNSMOS and the CREPE pitch metrics
resample to the rate they were built for, as the report's metric table says.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from ..errors import HiFiGANError
from ..evaluation import (
    GRIFFIN_LIM,
    GriffinLim,
    MetricSuite,
    Report,
    dataset_files,
    evaluate_copy_synthesis,
    evaluate_folders,
)
from ..evaluation.metrics import SAMPLE_RATE
from ..evaluation.render import figure_path
from ..inference import Vocoder
from ..io import AUDIO_SUFFIXES
from ..outputs import OutputPlan
from ..pretrained import get_model, resolve_model
from .common import (
    add_model_arguments,
    add_overwrite_argument,
    add_threads_argument,
    apply_threads,
    model_source,
    output_plan,
    progress,
)
from .options import add_device_backend_arguments, integer, report_backend

HELP = "objective metrics (PESQ, M-STFT, mel L1, MCD, periodicity, ...) and a report"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-o",
        "--output",
        required=True,
        type=Path,
        metavar="OUTDIR",
        help="where the report goes: metrics.csv, summary.json, report.md, figures, audio/",
    )
    _add_file_options(p)
    _add_synthesis_options(p)
    _add_report_options(p)
    add_overwrite_argument(p)
    add_threads_argument(p)


def _add_file_options(p: argparse.ArgumentParser) -> None:
    files = p.add_argument_group("score existing files")
    files.add_argument("--ref", type=Path, metavar="DIR", help="reference audio folder")
    files.add_argument(
        "--gen",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="generated audio folder, files named like the references (repeatable)",
    )
    files.add_argument(
        "--sample-rate",
        type=integer(1000, 384_000),
        metavar="HZ",
        help="score the files at this rate (default: the first reference file's)",
    )
    files.add_argument(
        "--name",
        action="append",
        default=[],
        metavar="LABEL",
        help="label of each --gen folder (default: the folder name), or of --checkpoint",
    )


def _add_synthesis_options(p: argparse.ArgumentParser) -> None:
    synth = p.add_argument_group("copy synthesis first")
    synth.add_argument(
        "--data",
        action="append",
        default=[],
        metavar="DIR|LIST",
        help="reference clips: a folder of audio, or an id|text list with wavs/ beside it "
        "(repeatable)",
    )
    add_model_arguments(synth)
    synth.add_argument(
        "--compare",
        action="append",
        default=[],
        metavar="LABEL=NAME|PATH",
        help="another generator to evaluate beside --model/--checkpoint: a built-in model or a "
        "checkpoint (config from the checkpoint or config.json beside it; repeatable)",
    )
    synth.add_argument(
        "--no-griffin-lim", action="store_true", help="leave out the Griffin-Lim baseline"
    )
    synth.add_argument(
        "--normalize", action="store_true", help="peak-normalise references to 0.95 first"
    )
    synth.add_argument(
        "--limit", type=integer(1), default=None, metavar="N", help="first N clips per dataset"
    )
    add_device_backend_arguments(synth, what="each generator")


def _add_report_options(p: argparse.ArgumentParser) -> None:
    which = p.add_argument_group("metrics and report")
    which.add_argument("--quick", action="store_true", help="quick profile: no neural metric (CI)")
    which.add_argument("--metrics", default=None, help="comma-separated metric names or a profile")
    which.add_argument(
        "--crepe",
        choices=("full", "tiny"),
        default="full",
        help="CREPE size for periodicity / V/UV F1 (full: as published; tiny: ~30x faster)",
    )
    which.add_argument(
        "--plots",
        type=integer(0, 100_000),
        default=3,
        metavar="N",
        help="mel figures for the first N clips (0: none)",
    )
    which.add_argument(
        "--no-plots", action="store_true", help="no PNG at all (no matplotlib needed)"
    )
    which.add_argument(
        "--dpi", type=integer(10, 1200), default=100, help="resolution of the PNG figures"
    )


def _run_options(args: argparse.Namespace) -> dict[str, str]:
    """Where and how each generator runs (--device, --backend, --precision)."""
    return {"device": args.device, "backend": args.backend, "precision": args.precision}


def _systems(args: argparse.Namespace) -> dict:
    """The systems of copy synthesis: --checkpoint (or --model), each --compare, Griffin-Lim."""

    systems: dict = {}
    if args.checkpoint is not None or getattr(args, "model", None) or not args.compare:
        checkpoint, config = model_source(args)
        label = (args.name[0] if args.name else None) or getattr(args, "model", None)
        label = label or Path(checkpoint).name.split(".")[0]
        systems[label] = Vocoder.from_checkpoint(checkpoint, config=config, **_run_options(args))
    for item in args.compare:
        label, sep, path = item.partition("=")
        if not sep or not label or not path:
            raise HiFiGANError(f"--compare expects LABEL=NAME|PATH, got {item!r}")
        if label in systems:
            raise HiFiGANError(f"system label {label!r} is used twice")
        path, config = resolve_model(path)  # a built-in name: its verified file and preset
        systems[label] = Vocoder.from_checkpoint(path, config=config, **_run_options(args))
    if not args.no_griffin_lim:
        # inverts the first model's mel, at its rate (v1's mel without a model)
        first = next(iter(systems.values()), None)
        systems[GRIFFIN_LIM] = GriffinLim(None if first is None else first.config.mel)
    return systems


def _folder_rate(args: argparse.Namespace) -> int:
    """The rate to score --ref/--gen files at: --sample-rate, else the first reference's."""
    import soundfile as sf

    if args.sample_rate is not None:
        return args.sample_rate
    for f in sorted(Path(args.ref).iterdir()) if Path(args.ref).is_dir() else []:
        if f.suffix.lower() in AUDIO_SUFFIXES:
            try:
                return sf.info(str(f)).samplerate
            except Exception:
                continue  # pair_by_stem / load_pair report unreadable files
    return SAMPLE_RATE


def _suite(args: argparse.Namespace, rate: int) -> MetricSuite:
    return MetricSuite(
        args.metrics or ("quick" if args.quick else "full"), crepe=args.crepe, sample_rate=rate
    )


def _rate_line(report: Report) -> str:
    """Which rate the scores are at, and which metrics resampled to their own."""
    probe = MetricSuite(report.metrics, sample_rate=report.sample_rate, skip_failures=False)
    others = probe.resampled()
    note = f"; resampled for {', '.join(others)}" if others else ""
    return f"scored at {report.sample_rate} Hz{note}"


def _audio_in(folder: Path | None) -> list[Path]:
    """The audio files directly in ``folder`` (none when it is not a folder)."""
    if folder is None or not Path(folder).is_dir():
        return []
    return [f for f in Path(folder).iterdir() if f.suffix.lower() in AUDIO_SUFFIXES]


def _plan(args: argparse.Namespace) -> OutputPlan:
    """This run's outputs, with every file it reads as an input; the report's own files are
    claimed at once (the copy-synthesized audio once the systems are known)."""
    inputs = [*_audio_in(args.ref), *(f for g in args.gen for f in _audio_in(g))]
    inputs += [Path(s) for _, _, s in (c.partition("=") for c in args.compare) if not get_model(s)]
    plan = output_plan(args, inputs)
    plan.claim_folder(args.output)
    plan.claim_all(Report(metrics=()).output_files(args.output, plots=not args.no_plots))
    return plan


def _evaluate(args: argparse.Namespace, plan: OutputPlan) -> Report:
    """Score --gen folders against --ref, or copy-synthesize the --data clips and score them."""

    plot_files = 0 if args.no_plots else max(0, args.plots)
    if args.ref:
        suite = _suite(args, _folder_rate(args))
        if args.name and len(args.name) != len(args.gen):
            raise HiFiGANError(f"{len(args.name)} --name for {len(args.gen)} --gen folders")
        names = args.name or None
        return evaluate_folders(
            args.ref, args.gen, suite, names=names, plot_files=plot_files, progress=progress
        )
    datasets = {}
    for spec in args.data:
        name, files = dataset_files(spec)
        if name in datasets:
            raise HiFiGANError(f"two datasets are named {name!r}", spec)
        datasets[name] = files[: args.limit] if args.limit else files
    systems = _systems(args)
    audio_dir = args.output / "audio"
    plan.add_inputs(f for files in datasets.values() for f in files)
    plan.claim_all(
        (audio_dir / dataset / system / f"{f.stem}.wav", f)
        for dataset, files in datasets.items()
        for f in files
        for system in systems
    )
    plan.claim_all(  # the mel figures of the first clips
        figure_path(args.output, dataset, f.stem, system)
        for dataset, files in datasets.items()
        for f in files[:plot_files]
        for system in systems
    )
    if any(system != GRIFFIN_LIM for system in systems):
        report_backend(args)  # after the output checks, so a refusal stays one line
    rate = next(iter(systems.values())).sample_rate
    return evaluate_copy_synthesis(
        datasets,
        systems,
        _suite(args, rate),
        audio_dir=audio_dir,
        normalize=args.normalize,
        plot_files=plot_files,
        progress=progress,
    )


def run(args: argparse.Namespace) -> int:
    apply_threads(args.threads)
    if bool(args.ref) == bool(args.data):
        raise HiFiGANError(
            "give either --ref DIR with --gen DIR..., or --data DIR|LIST with a model"
        )
    if args.ref and not args.gen:
        raise HiFiGANError("--ref needs at least one --gen DIR")
    plan = _plan(args)
    report = _evaluate(args, plan)
    if not report.rows:
        raise HiFiGANError(
            f"no file could be scored ({report.failures[0] if report.failures else 'no input'})"
        )
    argv = sys.argv[1:]
    report.command = "hifigan " + shlex.join(argv) if argv[:1] == ["evaluate"] else ""
    written = report.write(args.output, plots=not args.no_plots, dpi=args.dpi, outputs=plan)
    print(_rate_line(report), file=sys.stderr)
    if report.failures:
        print(f"error: {len(report.failures)} file(s) could not be scored:", file=sys.stderr)
        for line in report.failures:
            print(f"  {line}", file=sys.stderr)
    print(
        f"wrote {len(written)} files to {args.output} (report: {args.output / 'report.md'})",
        file=sys.stderr,
    )
    return 1 if report.failures else 0
