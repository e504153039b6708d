"""Which convention a mel follows, and does it fit a model: the report of ``hifigan mel-check``
and of the service's ``POST /v1/mel-check``, as data (:func:`mel_report`) and as text
(:func:`format_report`)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from .detect import (
    Candidate,
    check_convention,
    detect_convention,
    identify_convention,
    mel_statistics,
)
from .spec import Convention, load_convention, same_values

# an identification closer than this (in the convention's units) is the convention itself
EXACT = 1e-3


def mel_report(
    mel: np.ndarray,
    model: Convention,
    *,
    declared: tuple[Convention, str] | None = None,
    audio: tuple[np.ndarray, int] | None = None,
) -> dict[str, Any]:
    """The verdict on one ``(bands, frames)`` mel: its statistics, the likely conventions with
    their reasons, the one chosen (``declared`` by a convention file named by its second item,
    else identified from ``audio`` -- ``(samples,)`` and its rate -- else the best detected),
    its warnings, and whether it fits ``model`` (the convention the model reads).

    Raises:
        InputError: values no log-mel can hold.
    """
    stats = mel_statistics(mel)
    report: dict[str, Any] = {"statistics": stats.to_dict()}
    candidates = detect_convention(mel)
    report["candidates"] = [candidate_dict(c) for c in candidates[:5]]
    chosen: Convention | None = None
    how = "detected from statistics"
    if declared is not None:
        chosen, how = declared[0], f"declared in {declared[1]}"
        report["declared"] = {"convention": chosen.name, "file": declared[1]}
    if audio is not None:
        report["audio"] = _audio_report(mel, audio, candidates)
        best = report["audio"]["identified"]
        if chosen is None and best and best[0]["error"] <= EXACT:
            chosen, how = load_convention(best[0]["name"]), "identified with the audio"
    if chosen is None and candidates:
        chosen = load_convention(candidates[0].name)
    report["warnings"] = check_convention(mel, chosen) if chosen is not None else []
    report["convention"] = None if chosen is None else chosen.name
    report["how"] = how
    report["model_convention"] = model.name
    report["fits_model"] = chosen is not None and fits(chosen, model, mel)
    if stats.normalized and chosen is not None and chosen.normalization.stats is None:
        report["note"] = (
            "the values are normalised: converting them needs their statistics file "
            "(stats.h5, feats_stats.npz or a (2, n_mels) .npy)"
        )
    return report


def fits(chosen: Convention, model: Convention, mel: np.ndarray) -> bool:
    """Whether a mel of convention ``chosen`` can go to a model reading ``model`` as it is."""
    if same_values(chosen, model):
        return True
    return chosen.name == model.name and not check_convention(mel, model)


def without_stats(c: Convention) -> Convention:
    """``c`` with no statistics file named."""
    return c.replace(normalization=dataclasses.replace(c.normalization, stats=None))


def _audio_report(
    mel: np.ndarray, audio: tuple[np.ndarray, int], candidates: list[Candidate]
) -> dict[str, Any]:
    wav, rate = audio
    seconds = wav.shape[0] / rate
    identified = identify_convention(mel, wav, rate)
    out: dict[str, Any] = {
        "seconds": seconds,
        "frames_per_second": mel.shape[1] / seconds,
        "identified": [candidate_dict(c) for c in identified[:5]],
        "expected_frames": {},
    }
    for c in candidates[:3]:
        conv = load_convention(c.name)
        out["expected_frames"][c.name] = conv.num_frames(round(seconds * conv.sample_rate))
    return out


def candidate_dict(c: Candidate) -> dict[str, Any]:
    """A :class:`Candidate` as JSON-ready data."""
    out: dict[str, Any] = {"name": c.name, "score": c.score, "reasons": list(c.reasons)}
    if c.error is not None:
        out["error"] = c.error
        out["frames"] = c.frames
    if c.same_values:
        out["same_values"] = list(c.same_values)
    return out


def format_report(r: dict[str, Any], model_label: str, name: str = "mel") -> str:
    """The text form of a :func:`mel_report` (``name``: what the first line calls the mel,
    unless the report names its ``file``; a ``command`` in the report is shown last)."""
    s = r["statistics"]
    p = s["percentiles"]
    means = np.asarray(s["band_means"])
    groups = [f"{g.mean():.2f}" for g in np.array_split(means, min(8, len(means)))]
    lines = [
        f"{r.get('file', name)}: {s['n_mels']} bands x {s['frames']} frames",
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
    if r.get("command"):
        lines.append(f"  vocode it with: {r['command']}")
    if r.get("note"):
        lines.append(f"  note: {r['note']}")
    return "\n".join(lines)
