"""hifigan mel INPUT... -o OUTDIR [--convention NAME|FILE.json]: log-mel spectrograms as
<stem>.npy, shape (n_mels, frames).

By default the mel is the one the model config reads (--config, default v1: the authors'
convention, named hifigan). --convention computes another toolkit's mel instead (see
hifigan mel-check and docs/mel-conventions.md): hifigan, bigvgan-22k, bigvgan-24k, bigvgan-44k,
tacotron2, coqui-tacotron2, coqui, parallel-wavegan, parallel-wavegan-24k, espnet, nemo,
nemo-fastpitch, nemo-log1p, vocos, or a JSON file describing one. --stats normalises the values
of a convention that uses statistics (parallel-wavegan stats.h5 or .npy, ESPnet
feats_stats.npz); a copy of them is written as OUTDIR/mel_stats.npz.

The convention is written beside the mels as OUTDIR/mel_convention.json, so that the folder
says how its mels were made.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import torch

from ..config import HiFiGANConfig
from ..conventions import (
    CONVENTION_FILE,
    Convention,
    convention_from_mel_config,
    load_convention,
    load_stats,
)
from ..errors import ConfigError, InputError
from ..io import AUDIO_SUFFIXES, collect_inputs, load_audio
from .common import (
    add_overwrite_argument,
    add_threads_argument,
    apply_threads,
    output_plan,
    process_files,
)

HELP = "compute log-mel spectrograms of audio files (<stem>.npy, (n_mels, frames))"
STATS_FILE = "mel_stats.npz"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="audio files or folders of them")
    p.add_argument("-o", "--output", required=True, type=Path, metavar="OUTDIR")
    which = p.add_mutually_exclusive_group()
    which.add_argument(
        "--config",
        default=None,
        help="preset name or JSON config whose mel to compute (default v1)",
    )
    which.add_argument(
        "--convention",
        default=None,
        metavar="NAME|FILE.json",
        help="a named mel convention or a JSON file (default: the config's, hifigan for v1)",
    )
    p.add_argument(
        "--stats",
        type=Path,
        default=None,
        help="normalise with these statistics (conventions with normalisation only)",
    )
    add_overwrite_argument(p)
    add_threads_argument(p)


def resolve_convention(args: argparse.Namespace) -> Convention:
    """The convention chosen by --convention, else the one of --config (v1 by default)."""
    if args.convention is not None:
        return load_convention(args.convention)
    return convention_from_mel_config(HiFiGANConfig.load(args.config or "v1").mel)


def run(args: argparse.Namespace) -> int:
    apply_threads(args.threads)
    convention = resolve_convention(args)
    stats = None
    if args.stats is not None:
        if convention.normalization.kind == "none":
            raise ConfigError(
                f"convention {convention.name} has no normalisation: --stats does not apply"
            )
        stats = load_stats(args.stats)
        if stats.mean.shape[0] != convention.n_mels:
            raise InputError(
                f"the stats hold {stats.mean.shape[0]} bands, convention {convention.name} "
                f"has {convention.n_mels}",
                args.stats,
            )
        norm = dataclasses.replace(convention.normalization, stats=STATS_FILE)
        convention = convention.replace(normalization=norm)
    mel_fn = convention.mel_spectrogram()
    files = collect_inputs(args.inputs, AUDIO_SUFFIXES)
    conv_file = Path(args.convention) if args.convention is not None else None
    plan = output_plan(args, [*files, args.stats, conv_file])
    folder_files = [args.output / CONVENTION_FILE]
    if stats is not None:
        folder_files.append(args.output / STATS_FILE)

    def work(path: Path, out: Path) -> None:
        audio, _ = load_audio(path, convention.sample_rate)
        if audio.shape[0] < mel_fn.min_samples:
            raise InputError(
                f"audio is too short: {audio.shape[0]} samples, at least {mel_fn.min_samples} "
                "needed for one mel frame",
                path,
            )
        with torch.inference_mode():
            mel = mel_fn(torch.from_numpy(audio))
        if stats is not None:
            mel = stats.normalize(mel.double())
        with plan.writing(out, path) as tmp, open(tmp, "wb") as f:
            np.save(f, mel.numpy().astype(np.float32))

    code = process_files(files, args.output, ".npy", work, "mel", plan, also=folder_files)
    if stats is not None:
        with plan.writing(args.output / STATS_FILE) as tmp, open(tmp, "wb") as f:
            np.savez(f, mean=stats.mean, scale=stats.scale)
    plan.write_text(args.output / CONVENTION_FILE, convention.to_json())
    return code
