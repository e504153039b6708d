"""``hifigan prepare DATA -o OUTDIR``: check a dataset once and write its manifest.

DATA is an LJSpeech folder (``metadata.csv`` + ``wavs/``), a folder with the authors' filelists
(``training.txt``/``validation.txt``, ``train.txt``/``eval.txt``, or ``--train-list``/``--val-list``),
a folder of speaker subfolders (VCTK style), or any folder of audio files (searched recursively).
Writes ``OUTDIR/manifest.jsonl`` (id, path, duration, sample rate, split, speaker), converts
clips at another rate or with several channels once into ``OUTDIR/cache``, and lists unusable
files in ``OUTDIR/skipped.tsv``. Without filelists the validation split is drawn
deterministically from a hash of each clip's id. ``hifigan train --data OUTDIR`` uses it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..config import HiFiGANConfig

HELP = "check a dataset and write its manifest (train/validation split, resampled cache)"


def add_data_arguments(p: argparse.ArgumentParser) -> None:
    """The options that say where the clips and their split come from (also used by train)."""
    p.add_argument(
        "--train-list", type=Path, default=None, help="the authors' training filelist (id|text)"
    )
    p.add_argument("--val-list", type=Path, default=None, help="the validation filelist")
    p.add_argument(
        "--wavs", type=Path, default=None, help="audio folder of the filelists (default DATA/wavs)"
    )
    p.add_argument(
        "--val-size",
        type=int,
        default=None,
        help="validation clips when no split is given (default 2%%, 5 to 100)",
    )
    p.add_argument(
        "--jobs", type=int, default=1, help="processes checking/converting clips (default 1)"
    )


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", type=Path, metavar="DATA", help="dataset folder")
    p.add_argument("-o", "--output", required=True, type=Path, metavar="OUTDIR")
    p.add_argument(
        "--config", default="v1", help="preset or JSON config giving the sample rate (default v1)"
    )
    add_data_arguments(p)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from ..train.manifest import prepare

    config = HiFiGANConfig.load(args.config)

    def progress(items, total):
        return tqdm(items, total=total, desc="prepare", unit="clip", disable=None, file=sys.stderr)

    result = prepare(
        args.data,
        args.output,
        sample_rate=config.mel.sample_rate,
        min_samples=config.mel.n_fft,
        train_list=args.train_list,
        val_list=args.val_list,
        wavs=args.wavs,
        val_size=args.val_size,
        jobs=max(1, args.jobs),
        progress=progress,
    )
    for split in ("train", "val"):
        clips = result.split(split)
        minutes = sum(c.duration for c in clips) / 60
        print(f"{split}: {len(clips)} clips, {minutes:.1f} min", file=sys.stderr)
    print(f"layout: {result.layout}", file=sys.stderr)
    if result.converted:
        print(
            f"converted {result.converted} clips to {config.mel.sample_rate} Hz mono "
            f"in {args.output / 'cache'}",
            file=sys.stderr,
        )
    if result.skipped:
        print(f"skipped {len(result.skipped)} files:", file=sys.stderr)
        for path, reason in result.skipped:
            print(f"  {path}: {reason}", file=sys.stderr)
    print(f"wrote {result.manifest}", file=sys.stderr)
    return 0
