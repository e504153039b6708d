"""hifigan mel-check FILE|DIR... [--audio FILE] [--model NAME|PATH] [--json]: which mel
convention does a mel follow, and does it fit the model?

For each mel file (.npy or .pt, shape (n_mels, frames)) it prints the statistics (bands, frames,
range, floor, percentiles, a band-energy profile), the most likely conventions with the reason,
whether the mel fits the model's convention (hifigan, the authors', unless --model names another
model), and the command that vocodes it correctly. A mel_convention.json beside the files (as
hifigan mel writes) is reported and used. A folder of several mels gets one more line: the
convention their pooled statistics fit, as vocode --mel-convention auto decides it. With --audio
(the audio the mel was made from, for a
single mel file) the convention is identified exactly by computing every named convention from
that audio and comparing, and the frame rate is checked against the audio's duration.

Statistics alone cannot tell apart conventions that differ only in framing or fmax (hifigan,
tacotron2, bigvgan-22k, nemo): give --audio for that. Exit status: 0 when every mel fits the
model, 1 otherwise. See docs/mel-conventions.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ..checkpoint import read_generator_file
from ..config import HiFiGANConfig
from ..conventions import (
    Convention,
    convention_from_mel_config,
    convention_names,
    load_convention,
    same_values,
)
from ..conventions.detect import detect_shared_convention, thinned
from ..conventions.report import format_report, mel_report, without_stats
from ..errors import HiFiGANError, InputError
from ..io import MEL_SUFFIXES, collect_inputs, load_audio, load_mel
from ..pretrained import get_model, resolve_model
from .mel import CONVENTION_FILE

HELP = "tell which mel convention a mel file follows and whether it fits the model"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="FILE|DIR", help="mel files or folders of them")
    p.add_argument(
        "--audio", type=Path, default=None, help="the audio the mel was made from (one mel file)"
    )
    p.add_argument(
        "--model",
        metavar="NAME|PATH",
        default=None,
        help="the model to vocode with: a built-in name or a checkpoint (default: the authors' "
        "convention, hifigan)",
    )
    p.add_argument("--json", action="store_true", help="print a JSON report instead of text")


def model_convention(model: str | None) -> tuple[Convention, str]:
    """The convention a model reads, and a label for it."""
    if model is None:
        return load_convention("hifigan"), "hifigan (default)"
    registered = get_model(model)
    if registered is not None and registered.config is not None:
        config = HiFiGANConfig.load(registered.config)
    else:
        path, _ = resolve_model(model)
        config = read_generator_file(path)[1]  # any format, toolkits' included
    convention = convention_from_mel_config(config.mel)
    return convention, f"{convention.name} (model {model})"


def declared_convention(path: Path) -> tuple[Convention, Path] | None:
    """The convention named by a mel_convention.json beside ``path``, if there is one."""
    file = path.parent / CONVENTION_FILE
    return (load_convention(file), file) if file.is_file() else None


def check_file(
    path: Path,
    model: Convention,
    audio: tuple[np.ndarray, int] | None,
    model_flag: str = "",
) -> dict[str, Any]:
    """The report for one mel file (see :func:`~hifigan.conventions.report.mel_report`), with
    the file and the command that vocodes it."""
    mel = load_mel(path)
    found = declared_convention(path)
    declared = None if found is None else (found[0], str(found[1]))
    report: dict[str, Any] = {
        "file": str(path),
        **mel_report(mel, model, declared=declared, audio=audio),
    }
    chosen: Convention | None = None
    if report["convention"] is not None:
        chosen = found[0] if found is not None else load_convention(report["convention"])
    flag = _flag(chosen, found)
    command = f"hifigan vocode {path}{model_flag}{flag} -o OUT"
    report["command"] = command if chosen is not None else None
    return report


def _flag(chosen: Convention | None, declared: tuple[Convention, Path] | None) -> str:
    if chosen is None or chosen.name == "hifigan":
        return ""
    if declared is not None and declared[0] is chosen:
        named = chosen.name in convention_names() and same_values(
            load_convention(chosen.name), without_stats(chosen)
        )
        if not named or chosen.normalization.stats is not None:
            return f" --mel-convention {declared[1]}"
    return f" --mel-convention {chosen.name}"


def folder_verdicts(files: list[Path]) -> list[str]:
    """One line per folder of several mels: the convention their pooled statistics fit (as
    ``hifigan vocode --mel-convention auto`` decides), where a single mel may mislead."""
    folders: dict[Path, list[np.ndarray]] = {}
    for path in files:
        try:
            folders.setdefault(path.parent, []).append(thinned(load_mel(path)))
        except HiFiGANError:
            continue  # reported with its file
    lines = []
    for folder, mels in folders.items():
        if len(mels) < 2 or len({m.shape[0] for m in mels}) > 1:
            continue
        try:
            ranked = detect_shared_convention(mels).ranked
        except HiFiGANError:
            continue
        if ranked:
            best = ranked[0]
            twins = ", ".join(best.same_values)
            also = f" (or {twins}: same statistics)" if twins else ""
            lines.append(f"{folder}: its {len(mels)} mels judged together: {best.name}{also}")
    return lines


def run(args: argparse.Namespace) -> int:
    model, label = model_convention(args.model)
    files = collect_inputs(args.inputs, MEL_SUFFIXES)
    if args.audio is not None and len(files) != 1:
        raise InputError(f"--audio goes with one mel file, got {len(files)}", args.audio)
    audio = load_audio(args.audio) if args.audio is not None else None
    reports, failures = [], 0
    for path in files:
        try:
            flag = f" --model {args.model}" if args.model else ""
            report = check_file(path, model, audio, flag)
        except HiFiGANError as e:
            failures += 1
            report = {"file": str(path), "error": str(e)}
            print(f"error: {e}", file=sys.stderr)
        reports.append(report)
        if not args.json and "error" not in report:
            print(format_report(report, label))
    if args.json:
        print(json.dumps(reports, indent=2))
    else:
        for line in folder_verdicts(files):
            print(line)
    ok = failures == 0 and all(r.get("fits_model") for r in reports)
    return 0 if ok else 1
