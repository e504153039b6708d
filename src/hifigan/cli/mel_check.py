"""hifigan mel-check FILE|DIR... [--audio FILE] [--model NAME|PATH] [--json]: which mel
convention does a mel follow, and does it fit the model?

For each mel file (.npy or .pt, shape (n_mels, frames)) it prints the statistics (bands, frames,
range, floor, percentiles, a band-energy profile), the most likely conventions with the reason,
whether the mel fits the model's convention (hifigan, the authors', unless --model names another
model), and the command that vocodes it correctly. A mel_convention.json beside the files (as
hifigan mel writes) is reported and used. With --audio (the audio the mel was made from, for a
single mel file) the convention is identified exactly by computing every named convention from
that audio and comparing, and the frame rate is checked against the audio's duration.

Statistics alone cannot tell apart conventions that differ only in framing or fmax (hifigan,
tacotron2, bigvgan-22k, nemo): give --audio for that. Exit status: 0 when every mel fits the
model, 1 otherwise. See docs/mel-conventions.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ..checkpoint import read_generator_file
from ..config import HiFiGANConfig
from ..conventions import (
    Candidate,
    Convention,
    Normalization,
    check_convention,
    convention_from_mel_config,
    convention_names,
    detect_convention,
    identify_convention,
    load_convention,
    mel_statistics,
    same_values,
)
from ..errors import HiFiGANError, InputError
from ..io import MEL_SUFFIXES, collect_inputs, load_audio, load_mel
from ..pretrained import get_model, resolve_model
from .mel import CONVENTION_FILE

HELP = "tell which mel convention a mel file follows and whether it fits the model"
# an identification closer than this (in the convention's units) is the convention itself
EXACT = 1e-3


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
    """The report for one mel file (see :func:`format_report` for its text form)."""
    mel = load_mel(path)
    stats = mel_statistics(mel)
    report: dict[str, Any] = {"file": str(path), "statistics": stats.to_dict()}
    declared = declared_convention(path)
    candidates = detect_convention(mel)
    report["candidates"] = [_candidate_dict(c) for c in candidates[:5]]
    chosen: Convention | None = None
    how = "detected from statistics"
    if declared is not None:
        chosen, how = declared[0], f"declared in {declared[1]}"
        report["declared"] = {"convention": chosen.name, "file": str(declared[1])}
    if audio is not None:
        report["audio"] = _audio_report(mel, audio, candidates)
        best = report["audio"]["identified"]
        if chosen is None and best and best[0]["error"] <= EXACT:
            chosen, how = load_convention(best[0]["name"]), "identified with the audio"
    if chosen is None and candidates:
        chosen = load_convention(candidates[0].name)
    warnings = check_convention(mel, chosen or model) if chosen is not None else []
    report["warnings"] = warnings
    fits = chosen is not None and _fits(chosen, model, mel)
    report["convention"] = None if chosen is None else chosen.name
    report["how"] = how
    report["model_convention"] = model.name
    report["fits_model"] = fits
    flag = _flag(chosen, declared)
    command = f"hifigan vocode {path}{model_flag}{flag} -o OUT"
    report["command"] = command if chosen is not None else None
    if stats.normalized and chosen is not None and chosen.normalization.stats is None:
        report["note"] = (
            "the values are normalised: converting them needs their statistics file "
            "(stats.h5, feats_stats.npz or a (2, n_mels) .npy)"
        )
    return report


def _fits(chosen: Convention, model: Convention, mel: np.ndarray) -> bool:
    if same_values(chosen, model):
        return True
    return chosen.name == model.name and not check_convention(mel, model)


def _flag(chosen: Convention | None, declared: tuple[Convention, Path] | None) -> str:
    if chosen is None or chosen.name == "hifigan":
        return ""
    if declared is not None and declared[0] is chosen:
        named = chosen.name in convention_names() and same_values(
            load_convention(chosen.name), chosen.replace(normalization=_plain(chosen))
        )
        if not named or chosen.normalization.stats is not None:
            return f" --mel-convention {declared[1]}"
    return f" --mel-convention {chosen.name}"


def _plain(c: Convention) -> Normalization:
    return dataclasses.replace(c.normalization, stats=None)


def _audio_report(
    mel: np.ndarray, audio: tuple[np.ndarray, int], candidates: list[Candidate]
) -> dict[str, Any]:
    wav, rate = audio
    seconds = wav.shape[0] / rate
    identified = identify_convention(mel, wav, rate)
    out: dict[str, Any] = {
        "seconds": seconds,
        "frames_per_second": mel.shape[1] / seconds,
        "identified": [_candidate_dict(c) for c in identified[:5]],
        "expected_frames": {},
    }
    for c in candidates[:3]:
        conv = load_convention(c.name)
        out["expected_frames"][c.name] = conv.num_frames(round(seconds * conv.sample_rate))
    return out


def _candidate_dict(c: Candidate) -> dict[str, Any]:
    out: dict[str, Any] = {"name": c.name, "score": c.score, "reasons": list(c.reasons)}
    if c.error is not None:
        out["error"] = c.error
        out["frames"] = c.frames
    if c.same_values:
        out["same_values"] = list(c.same_values)
    return out


def format_report(r: dict[str, Any], model_label: str) -> str:
    """The text form of one :func:`check_file` report."""
    s = r["statistics"]
    p = s["percentiles"]
    means = np.asarray(s["band_means"])
    groups = [f"{g.mean():.2f}" for g in np.array_split(means, min(8, len(means)))]
    lines = [
        f"{r['file']}: {s['n_mels']} bands x {s['frames']} frames",
        f"  values: min {s['min']:.4g}, max {s['max']:.4g}, percentiles 1/5/50/95/99: "
        + " / ".join(f"{p[k]:.3g}" for k in ("1", "5", "50", "95", "99"))
        + f", std {s['std']:.3g}; {100 * s['fraction_at_min']:.1f}% of values at the minimum",
        f"  band profile (mean per band group, low to high): {' '.join(groups)}"
        + (f"; top {s['empty_top_bands']} bands empty" if s["empty_top_bands"] else ""),
    ]
    if s["looks_normalized"]:
        lines.append("  per-band mean ~0 and deviation ~1: normalised values")
    if "declared" in r:
        lines.append(f"  declared: {r['declared']['convention']} ({r['declared']['file']})")
    if "audio" in r:
        a = r["audio"]
        expected = ", ".join(f"{k} {v}" for k, v in a["expected_frames"].items())
        lines.append(
            f"  audio: {a['seconds']:.3f} s, {a['frames_per_second']:.2f} frames/s; "
            f"frames expected: {expected}"
        )
        for c in a["identified"][:3]:
            twins = (
                f" (same numbers as {', '.join(c['same_values'])})" if "same_values" in c else ""
            )
            lines.append(f"  with the audio: {c['name']} error {c['error']:.3g}{twins}")
    shown: set[str] = set()
    for c in r["candidates"]:
        if c["name"] in shown or len(shown) >= 4:
            continue
        twins = c.get("same_values", [])
        label = "likely" if not shown else "then"
        shown.update([c["name"], *twins])
        also = f" (or {', '.join(twins)}: same statistics)" if twins else ""
        lines.append(f"  {label}: {c['name']}{also}: {'; '.join(c['reasons'])}")
    if not r["candidates"]:
        lines.append(f"  no named convention has {s['n_mels']} bands")
    lines.extend(f"  warning: {w}" for w in r["warnings"])
    verdict = "fits" if r["fits_model"] else "does NOT fit"
    lines.append(
        f"  convention: {r['convention']} ({r['how']}); {verdict} the model's {model_label}"
    )
    if r["command"]:
        lines.append(f"  vocode it with: {r['command']}")
    if r.get("note"):
        lines.append(f"  note: {r['note']}")
    return "\n".join(lines)


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
    ok = failures == 0 and all(r.get("fits_model") for r in reports)
    return 0 if ok else 1
