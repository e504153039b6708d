"""hifigan prepare DATA -o OUTDIR: check a dataset once and write its manifest.

DATA is an LJSpeech folder (metadata.csv + wavs/), a folder with the authors' filelists
(training.txt/validation.txt, train.txt/eval.txt, or --train-list/--val-list), a folder of
speaker subfolders (VCTK style), any folder of audio files (searched recursively), one id|text
filelist (audio in wavs/ beside it), or a prepared folder (to convert it for another rate).
Writes OUTDIR/manifest.jsonl (id, path, duration, sample rate, split, speaker), converts clips
at another rate than the config's or with several channels once into OUTDIR/cache/<rate>, and
lists unusable files in OUTDIR/skipped.tsv. Without filelists the validation split is drawn
deterministically from a hash of each clip's id. hifigan train --data OUTDIR uses it (with a
config of the same sample rate).

Lists may carry a byte-order mark and CRLF line ends; an id ends at the first | or tab. A folder
scan follows symbolic links and passes over hidden entries (.*), OUTDIR and the folders hifigan
writes (prepared and run folders), so OUTDIR may lie inside DATA. Dangling links, unreadable
files and folders, repeats and undecodable clips are skipped with the reason; names that are
not valid UTF-8 are used, shown with \\xNN escapes. Data with no usable clip are refused, and
then nothing is written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..config import HiFiGANConfig
from ..train.manifest import DATA_OPTIONS, prepare, shown
from .options import integer

HELP = "check a dataset and write its manifest (train/validation split, resampled cache)"


def add_data_arguments(p: argparse.ArgumentParser) -> None:
    """The options that say where the clips and their split come from (also used by train)."""
    p.add_argument(
        "--train-list", type=Path, default=None, help="the authors' training filelist (id|text)"
    )
    p.add_argument("--val-list", type=Path, default=None, help="the validation filelist")
    p.add_argument(
        "--wavs",
        type=Path,
        default=None,
        help="audio folder of the filelists (default: wavs/ in the dataset folder)",
    )
    p.add_argument(
        "--val-size",
        type=integer(0),
        default=None,
        help="validation clips to draw when no filelists give the split (default: 2%% of the "
        "clips, at least 5 and at most 100; of fewer than 25 clips a fifth, at least one; "
        "0: none)",
    )
    p.add_argument(
        "--jobs",
        type=integer(1, 1024),
        default=1,
        help="processes checking/converting clips (default 1)",
    )


def data_options(args: argparse.Namespace) -> dict[str, Any]:
    """The values of :func:`add_data_arguments`' options, as keyword arguments of
    :func:`~hifigan.train.manifest.prepare` and :class:`~hifigan.train.TrainOptions`."""

    return {name: getattr(args, name) for name in DATA_OPTIONS}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "data", type=Path, metavar="DATA", help="dataset folder (or id|text filelist, or prepared)"
    )
    written = "folder for manifest.jsonl, skipped.tsv and the converted clips (cache/)"
    p.add_argument("-o", "--output", required=True, type=Path, metavar="OUTDIR", help=written)
    p.add_argument(
        "--config",
        default="v1",
        help="preset or JSON config giving the sample rate (default v1: 22050 Hz)",
    )
    add_data_arguments(p)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    config = HiFiGANConfig.load(args.config)

    def progress(items, total):
        return tqdm(items, total=total, desc="prepare", unit="clip", disable=None, file=sys.stderr)

    result = prepare(
        args.data,
        args.output,
        sample_rate=config.mel.sample_rate,
        min_samples=config.mel.n_fft,
        progress=progress,
        **data_options(args),
    )
    for line in result.summary():
        print(line, file=sys.stderr)
    print(f"wrote {shown(result.manifest)}", file=sys.stderr)
    return 0
