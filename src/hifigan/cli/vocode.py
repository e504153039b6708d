"""``hifigan vocode INPUT... -o OUTDIR [--model NAME|PATH]``: audio or mel files to 16-bit wavs.

Audio inputs (wav, flac, ogg, ...) are re-synthesized through their own mel (copy synthesis);
mel inputs (``.npy``/``.pt``, shape ``(n_mels, frames)``) are vocoded directly. Without
``--model``/``--checkpoint`` the built-in ``lj-v1`` is used (``pip install 'hifigan[pretrained]'``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import InputError
from ..inference import Vocoder
from ..io import (
    AUDIO_SUFFIXES,
    MEL_SUFFIXES,
    check_mel,
    collect_inputs,
    load_audio,
    load_mel,
    save_wav,
)
from ..pretrained import DEFAULT_MODEL
from .common import (
    add_model_arguments,
    add_threads_argument,
    apply_threads,
    model_source,
    process_files,
)

HELP = "turn audio (copy synthesis) or mel files into 16-bit wav files"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="audio files, mel files (.npy/.pt) or folders"
    )
    p.add_argument("-o", "--output", required=True, type=Path, metavar="OUTDIR")
    add_model_arguments(p, default_model=DEFAULT_MODEL)
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    add_threads_argument(p)


def run(args: argparse.Namespace) -> int:
    apply_threads(args.threads)
    checkpoint, config = model_source(args)
    vocoder = Vocoder.from_checkpoint(checkpoint, config=config, device=args.device)
    files = collect_inputs(args.inputs, AUDIO_SUFFIXES + MEL_SUFFIXES)

    def work(path: Path, out: Path) -> None:
        suffix = path.suffix.lower()
        if suffix in MEL_SUFFIXES:
            mel = load_mel(path)
            check_mel(mel, vocoder.n_mels, path)
        elif suffix in AUDIO_SUFFIXES:
            audio, _ = load_audio(path, vocoder.sample_rate)
            try:
                mel = vocoder.mel(audio)
            except InputError as e:
                raise InputError(str(e), path) from None
        else:
            raise InputError(
                f"unsupported file type {suffix or '(none)'} (audio: {', '.join(AUDIO_SUFFIXES)}; "
                f"mel: {', '.join(MEL_SUFFIXES)})",
                path,
            )
        save_wav(out, vocoder(mel).cpu().numpy(), vocoder.sample_rate)

    return process_files(files, args.output, ".wav", work, "vocode")
