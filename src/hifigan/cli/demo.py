"""hifigan demo: hear a pretrained HiFi-GAN in one command.

Vocodes real speech through its own mel-spectrogram (copy synthesis) with the default model
(lj-v1) and writes, to OUTDIR (default hifigan-demo):

  input.wav    the speech that was vocoded, at the model's sample rate
  output.wav   what the model made of its mel-spectrogram
  mel.png      input and output mel-spectrograms and their difference
  report.txt   model, duration, synthesis speed (× real time) and, with
               pip install 'hifigan[eval]', objective metrics

Without --input it uses a bundled 6.5 s public-domain LibriVox reading (Shakespeare's
Sonnet 1; provenance in hifigan/data/SOURCE.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from ..bundled import DEMO_CLIP, DEMO_CLIP_LABEL, demo_clip_file
from ..errors import HiFiGANError, InputError
from ..extras import unavailable
from ..inference import Vocoder
from ..inference.benchmark import timed_call
from ..io import atomic_write_text, load_audio, save_wav, warn
from ..pretrained import DEFAULT_MODEL, get_model
from .common import (
    add_model_arguments,
    add_overwrite_argument,
    add_threads_argument,
    apply_threads,
    model_source,
    output_plan,
)
from .options import add_device_backend_arguments, report_backend

HELP = "vocode real speech with a pretrained model: audio, mel plots and a report"

WARMUP_FRAMES = 32
#: what the demo writes into its folder
DEMO_FILES = ("input.wav", "output.wav", "mel.png", "report.txt")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--input",
        type=Path,
        default=None,
        metavar="FILE",
        help="speech to vocode (default: a bundled 6.5 s public-domain LibriVox reading)",
    )
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        default=Path("hifigan-demo"),
        metavar="OUTDIR",
        help="folder for the audio, plot and report (default: hifigan-demo)",
    )
    add_model_arguments(p, default_model=DEFAULT_MODEL)
    add_device_backend_arguments(p)
    add_overwrite_argument(p)
    add_threads_argument(p)


def model_description(args: argparse.Namespace) -> str:
    """The model as the report names it."""
    if args.checkpoint is not None:
        return f"checkpoint {args.checkpoint}"
    name = args.model or args.default_model
    model = get_model(name)
    if model is None:
        return f"checkpoint {name}"
    return f"{model.name}: trained on {model.trained_on}; {model.source}, licence {model.licence}"


def timed_synthesis(vocoder: Vocoder, mel: torch.Tensor) -> tuple[np.ndarray, float]:
    """Vocode ``mel``; returns the audio and the seconds the generator took, measured after
    a short warm-up run (the first call of a model pays one-time set-up costs)."""
    vocoder(mel[..., :WARMUP_FRAMES], check=False)  # the model's own mel
    audio, seconds = timed_call(lambda: vocoder(mel, check=False), vocoder.device)
    return audio.cpu().numpy(), seconds


def write_mel_plot(
    vocoder: Vocoder, reference: np.ndarray, generated: np.ndarray, title: str, path: Path
) -> str | None:
    """Save the input-vs-output mel figure; returns why it was not written, or None."""
    from ..plots import mel_comparison_figure, save_figure

    real = vocoder.mel(reference).cpu().numpy()
    fake = vocoder.mel(generated).cpu().numpy()
    try:
        fig = mel_comparison_figure(
            real, fake, title=title, hop_seconds=vocoder.hop_length / vocoder.sample_rate
        )
        save_figure(fig, path)
    except HiFiGANError as e:
        return str(e)
    return None


def objective_metrics(
    reference: np.ndarray, generated: np.ndarray, sample_rate: int
) -> dict[str, float] | str:
    """The evaluation extra's quick metrics of ``generated`` against ``reference``, or, for
    the report, why there are none: the extra is not installed, or a metric failed on this
    audio (the demo's files are written all the same)."""
    from ..evaluation import METRICS, QUICK, quick_metrics

    packages = dict.fromkeys(p for name in QUICK for p in METRICS[name].packages)
    missing = unavailable("eval", *packages, purpose="scoring")
    if missing is not None:
        return f"not installed: {missing}"
    try:
        return quick_metrics(reference, generated, sample_rate)
    except HiFiGANError as e:
        return f"not computed ({metrics_problem(str(e), reference, generated)})"
    except Exception as e:  # a metric package's own failure on unusual audio
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        return f"not computed ({type(e).__name__}{': ' + first if first else ''})"


# PESQ finds no speech below about this peak level (-60 dBFS) and refuses the pair
SILENCE_PEAK = 1e-3


def metrics_problem(message: str, reference: np.ndarray, generated: np.ndarray) -> str:
    """A plain reason for a failed metric: PESQ's refusal of silence names the silent side."""
    if message.startswith("PESQ"):
        if reference.size == 0 or np.abs(reference).max() < SILENCE_PEAK:
            return "PESQ: the input is silent"
        if generated.size == 0 or np.abs(generated).max() < SILENCE_PEAK:
            return "PESQ: the output is silent"
    return message


def format_report(
    *,
    model: str,
    source: str,
    duration: float,
    sample_rate: int,
    seconds: float,
    device: str,
    metrics: dict[str, float] | str,
    plot_problem: str | None,
    outdir: Path,
) -> str:
    """The demo's plain-text report."""
    threads = f", {torch.get_num_threads()} threads" if device == "cpu" else ""
    speed = duration / seconds if seconds > 0 else float("inf")
    if isinstance(metrics, str):
        metric_text = metrics
    else:
        metric_text = ", ".join(f"{name} {value:.3f}" for name, value in metrics.items())
    files = ["input.wav", "output.wav"] + ([] if plot_problem else ["mel.png"]) + ["report.txt"]
    lines = [
        "HiFi-GAN demo: copy synthesis (speech -> mel-spectrogram -> speech)",
        f"model:     {model}",
        f"input:     {source}",
        f"duration:  {duration:.2f} s at {sample_rate} Hz",
        f"synthesis: {seconds:.2f} s on {device}{threads}: {speed:.1f}x real time",
        f"metrics:   {metric_text}",
    ]
    if plot_problem:
        lines.append(f"plot:      not written ({plot_problem})")
    lines.append(f"files:     {', '.join(files)} in {outdir}")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    apply_threads(args.threads)
    checkpoint, config = model_source(args)
    outdir: Path = args.output
    plan = output_plan(args, [args.input, checkpoint])
    plan.claim_folder(outdir)
    plan.claim_all([outdir / name for name in DEMO_FILES], holds="an earlier demo")
    vocoder = Vocoder.from_checkpoint(
        checkpoint,
        config=config,
        device=args.device,
        backend=args.backend,
        precision=args.precision,
    )
    report_backend(args)
    rate = vocoder.sample_rate
    if args.input is not None:
        with np.errstate(invalid="ignore", over="ignore"):  # as in vocode: refused just after
            audio, _ = load_audio(args.input, rate)
        source = str(args.input)
    else:
        with demo_clip_file() as path:
            audio, _ = load_audio(path, rate)
        source = f"{DEMO_CLIP}: {DEMO_CLIP_LABEL}"
    try:
        mel = vocoder.mel(audio)
        generated, seconds = timed_synthesis(vocoder, mel)
    except InputError as e:  # nothing is written: the audio is refused, or so is the output
        raise InputError(str(e), args.input or DEMO_CLIP) from None
    reference = audio[: generated.shape[0]]
    save_wav(outdir / "input.wav", audio, rate)
    save_wav(outdir / "output.wav", generated, rate)
    plot_problem = write_mel_plot(
        vocoder, reference, generated, "input vs vocoded output", outdir / "mel.png"
    )
    if plot_problem:
        warn(f"mel plot not written: {plot_problem}")
    report = format_report(
        model=model_description(args),
        source=source,
        duration=audio.shape[0] / rate,
        sample_rate=rate,
        seconds=seconds,
        device=str(vocoder.device),
        metrics=objective_metrics(reference, generated, rate),
        plot_problem=plot_problem,
        outdir=outdir,
    )
    atomic_write_text(outdir / "report.txt", report)
    print(report, end="")
    return 0
