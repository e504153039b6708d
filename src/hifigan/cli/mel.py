"""``hifigan mel INPUT... -o OUTDIR``: log-mel spectrograms as ``<stem>.npy``, (n_mels, frames)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from ..config import HiFiGANConfig
from ..errors import InputError
from ..io import AUDIO_SUFFIXES, atomic_path, collect_inputs, load_audio
from ..mel import MelSpectrogram
from .common import add_threads_argument, apply_threads, process_files

HELP = "compute log-mel spectrograms of audio files (<stem>.npy, (n_mels, frames))"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="audio files or folders of them")
    p.add_argument("-o", "--output", required=True, type=Path, metavar="OUTDIR")
    p.add_argument(
        "--config",
        default="v1",
        help="preset name or JSON config for the mel parameters (default v1)",
    )
    add_threads_argument(p)


def run(args: argparse.Namespace) -> int:
    apply_threads(args.threads)
    config = HiFiGANConfig.load(args.config)
    mel_fn = MelSpectrogram.from_config(config.mel)
    files = collect_inputs(args.inputs, AUDIO_SUFFIXES)

    def work(path: Path, out: Path) -> None:
        audio, _ = load_audio(path, config.mel.sample_rate)
        if audio.shape[0] < mel_fn.min_samples:
            raise InputError(
                f"audio is too short: {audio.shape[0]} samples, at least {mel_fn.min_samples} "
                "needed for one mel frame",
                path,
            )
        with torch.inference_mode():
            mel = mel_fn(torch.from_numpy(audio)).numpy().astype(np.float32)
        with atomic_path(out) as tmp, open(tmp, "wb") as f:
            np.save(f, mel)

    return process_files(files, args.output, ".npy", work, "mel")
