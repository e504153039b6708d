"""What each mel convention costs a vocoder: as is, converted, and detected automatically.

For every named convention (and the two normalised ones, with statistics computed over the
clips), on each clip: the convention's mel of the clip is vocoded by MODEL (a) as it is, (b)
converted with its name (``vocode --mel-convention NAME``) and (c) with ``--mel-convention
auto``; the mel MAD of each result is the mean |difference| between the model's own mel of the
output and of the clip (the first frames they share). The baseline is the model's own mel of
the clip. It also records what ``mel-check`` says of each mel: the detected convention from
the statistics alone, the identified one with the audio, and whether the guard fires.

    python scripts/convention_mad.py --model lj-v1 --clips ../shared/data/ljspeech/wavs \\
        --out docs/reports/conventions

(needs the LJSpeech clips of ``../shared``; ``--limit 2`` for a quick run).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from hifigan import Vocoder
from hifigan.conventions import (
    Convention,
    MelStats,
    check_convention,
    convention_names,
    detect_convention,
    identify_convention,
    load_convention,
    stats_from_mels,
)
from hifigan.errors import HiFiGANError
from hifigan.io import load_audio, resample

EXACT = "exact (values only)"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="lj-v1")
    p.add_argument("--clips", type=Path, required=True, help="folder of audio clips")
    p.add_argument("--out", type=Path, default=None, help="write summary.json and table.md")
    p.add_argument("--limit", type=int, default=None, help="the first N clips only")
    p.add_argument("--backend", default="fast", help="generator backend (default fast)")
    p.add_argument("--max-seconds", type=float, default=None, help="the first S s of each clip")
    return p.parse_args()


@dataclass
class Row:
    """One convention's figures, accumulated over clips."""

    name: str
    kind: str
    as_is: list[float] = field(default_factory=list)
    converted: list[float] = field(default_factory=list)
    auto: list[float] = field(default_factory=list)
    as_is_note: str = ""
    auto_note: str = ""
    detected: dict[str, int] = field(default_factory=dict)
    identified: dict[str, int] = field(default_factory=dict)
    guard_fired: int = 0
    clips: int = 0

    def summary(self) -> dict:
        def mean(xs: list[float]) -> float | None:
            return round(float(np.mean(xs)), 4) if xs else None

        return {
            "name": self.name,
            "conversion": self.kind,
            "clips": self.clips,
            "mad_as_is": mean(self.as_is),
            "as_is_note": self.as_is_note,
            "mad_converted": mean(self.converted),
            "mad_auto": mean(self.auto),
            "auto_note": self.auto_note,
            "detected": self.detected,
            "identified": self.identified,
            "guard_fired": self.guard_fired,
        }


def conversion_kind(c: Convention, native: Convention) -> str:
    """How exact ``c`` -> ``native`` can be: values only, framing only, or re-binning."""
    if c.spectral_key() != native.spectral_key():
        return "approximate (re-binning)"
    if c.analysis_key() != native.analysis_key() or c.magnitude_eps != native.magnitude_eps:
        return "approximate (framing)"
    return EXACT


_CACHE: dict[bytes, float] = {}


def cached_mad(vocoder: Vocoder, native_mel, mel, ref: np.ndarray) -> float:
    """:func:`mad` of vocoding ``mel``, once per distinct mel and reference."""
    m = np.ascontiguousarray(np.asarray(mel, dtype=np.float32))
    key = hashlib.sha1(m.tobytes() + str(m.shape).encode() + ref.tobytes()).digest()
    if key not in _CACHE:
        _CACHE[key] = mad(native_mel, vocoder(torch.from_numpy(m), check=False), ref)
    return _CACHE[key]


def mad(native_mel: torch.nn.Module, wave: torch.Tensor, ref: np.ndarray):
    out = native_mel(wave.float().cpu()).numpy()
    frames = min(out.shape[1], ref.shape[1])
    return float(np.abs(out[:, :frames] - ref[:, :frames]).mean())


def top(candidates) -> str:
    """A ranking's best name, with the names it cannot be told apart from."""
    if not candidates:
        return "(none)"
    best = candidates[0]
    return "/".join((best.name, *best.same_values)) if best.same_values else best.name


def conventions() -> list[tuple[str, Convention, bool]]:
    """(label, convention, normalised) for every named convention, plus the normalised ones."""
    out = [(n, load_convention(n), False) for n in convention_names()]
    for n in ("parallel-wavegan", "espnet"):
        out.append((f"{n} (normalised)", load_convention(n), True))
    return out


def main() -> int:
    args = parse_args()
    clips = sorted(p for p in args.clips.iterdir() if p.suffix in (".wav", ".flac"))
    clips = clips[: args.limit] if args.limit else clips
    if not clips:
        raise SystemExit(f"{args.clips}: no clips")
    vocoder = Vocoder.from_pretrained(args.model, backend=args.backend)
    native = vocoder.convention
    native_mel = native.mel_spectrogram()
    audio = {p.stem: load_audio(p, native.sample_rate)[0] for p in clips}
    if args.max_seconds:
        audio = {k: a[: int(args.max_seconds * native.sample_rate)] for k, a in audio.items()}
    refs = {k: native_mel(torch.from_numpy(a)).numpy() for k, a in audio.items()}
    baseline = [cached_mad(vocoder, native_mel, m, refs[k]) for k, m in refs.items()]
    print(f"native {native.name}: MAD {np.mean(baseline):.4f} over {len(clips)} clips")
    rows = []
    for label, c, normalised in conventions():
        rows.append(run_convention(vocoder, native_mel, audio, refs, label, c, normalised))
        print(json.dumps(rows[-1].summary()), flush=True)
    report(args, rows, float(np.mean(baseline)), len(clips))
    return 0


def convention_mels(c: Convention, audio: dict[str, np.ndarray], rate: int):
    fn = c.mel_spectrogram()
    return {
        k: fn(torch.from_numpy(np.ascontiguousarray(resample(a, rate, c.sample_rate)))).numpy()
        for k, a in audio.items()
    }


def run_convention(vocoder, native_mel, audio, refs, label, c, normalised) -> Row:
    native = vocoder.convention
    row = Row(label, conversion_kind(c, native))
    mels = convention_mels(c, audio, native.sample_rate)
    stats: MelStats | None = None
    if normalised:
        stats = stats_from_mels(list(mels.values()), c)
        mels = {
            k: stats.normalize(torch.from_numpy(m).double()).float().numpy()
            for k, m in mels.items()
        }
    for key, mel in mels.items():
        row.clips += 1
        detected = top(detect_convention(mel))
        row.detected[detected] = row.detected.get(detected, 0) + 1
        ident = top(identify_convention(mel, audio[key], native.sample_rate))
        row.identified[ident] = row.identified.get(ident, 0) + 1
        try:
            row.guard_fired += bool(check_convention(mel, native))
        except HiFiGANError:
            row.guard_fired += 1  # refused: another band count
        if mel.shape[0] == native.n_mels:
            row.as_is.append(cached_mad(vocoder, native_mel, mel, refs[key]))
        else:
            row.as_is_note = f"refused: {mel.shape[0]} bands"
        converted = vocoder.prepare_mel(mel, c, stats)
        row.converted.append(cached_mad(vocoder, native_mel, converted, refs[key]))
        try:
            auto = vocoder.prepare_mel(mel, "auto", stats)
        except HiFiGANError as e:
            row.auto_note = str(e).split(": ", 1)[-1][:60]
            continue
        row.auto.append(cached_mad(vocoder, native_mel, auto, refs[key]))
    return row


def fmt(x: float | None, base: float) -> str:
    return "-" if x is None else f"{x:.3f} ({x - base:+.3f})"


def report(args: argparse.Namespace, rows: list[Row], baseline: float, n: int) -> None:
    lines = [
        f"Model `{args.model}`, {n} clips of `{args.clips}`"
        + (f" (the first {args.max_seconds:g} s of each)" if args.max_seconds else "")
        + "; mel MAD of the output against the "
        f"clip (native `hifigan` mel: **{baseline:.3f}**); in brackets the difference from it.",
        "",
        "| convention | conversion | as is | converted | auto | detected (statistics) "
        "| identified (with audio) | guard fired |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        s = r.summary()
        as_is = s["as_is_note"] if s["mad_as_is"] is None else fmt(s["mad_as_is"], baseline)
        auto = s["auto_note"] if s["mad_auto"] is None else fmt(s["mad_auto"], baseline)
        det = ", ".join(f"{k} {v}/{r.clips}" for k, v in sorted(r.detected.items()))
        ide = ", ".join(f"{k} {v}/{r.clips}" for k, v in sorted(r.identified.items()))
        lines.append(
            f"| `{r.name}` | {r.kind} | {as_is} | {fmt(s['mad_converted'], baseline)} | {auto} "
            f"| {det} | {ide} | {r.guard_fired}/{r.clips} |"
        )
    table = "\n".join(lines)
    print(table)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        summary = {"model": args.model, "clips": n, "native_mad": baseline}
        summary["conventions"] = [r.summary() for r in rows]
        (args.out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
        command = "python scripts/convention_mad.py " + " ".join(sys.argv[1:])
        (args.out / "table.md").write_text(f"{table}\n\nMade by `{command}`.\n")


if __name__ == "__main__":
    sys.exit(main())
