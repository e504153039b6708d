"""Wall time of ``hifigan vocode`` on a folder of clips: the old default (``--backend eager``)
against the new one (no flag: ``auto``), alternating, each run a fresh process.

Each repeat runs both commands once, in turn (the order flips every repeat, so that a drift in
machine load falls on both alike), on the same folder of clips, writing into a new folder.
A run's wall time covers everything a user waits for: start-up, model loading, reading,
mel, synthesis and writing. The table gives, per command, the median wall seconds, the audio
seconds written, the real-time factor (wall / audio: below 1 is faster than real time) and
the ratio of the old median to the new one.

The clips: ``--clips DIR`` (its first ``--count`` audio files by name), else 10 LJSpeech and
10 Kathleen clips from the shared data root (``$HIFIGAN_SHARED``, default ``../shared``),
copied as 16-bit WAV files into a temporary folder.

    python scripts/bench_default_backend.py --repeats 5 --threads 2
    python scripts/bench_default_backend.py --clips my_wavs --count 20 -- --model lj-v1

Arguments after ``--`` go to both commands (e.g. ``--checkpoint PATH``). Run it on a quiet
machine: other programs' load changes the figures.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HIFIGAN_SHARED", REPO.parent / "shared"))
AUDIO = {".wav", ".flac"}
#: the two commands compared: the flags each adds to ``hifigan vocode``
COMMANDS = {"old (--backend eager)": ["--backend", "eager"], "new (no flag)": []}


def default_clips(count: int) -> list[Path]:
    """Half LJSpeech (by name), half Kathleen (its evaluation list, in order)."""
    lj = sorted((SHARED / "data/ljspeech/wavs").glob("*.flac"))
    kathleen_dir = SHARED / "data/kathleen"
    names = [line.split("|", 1)[0] for line in (kathleen_dir / "eval.txt").read_text().split("\n")]
    kathleen = [kathleen_dir / "wavs" / f"{n}.flac" for n in names if n]
    half = count // 2
    clips = lj[: count - half] + [p for p in kathleen if p.is_file()][:half]
    if len(clips) < count:
        sys.exit(f"error: {SHARED / 'data'}: found {len(clips)} of {count} clips")
    return clips


def prepare_clips(args: argparse.Namespace, folder: Path) -> float:
    """Fill ``folder`` with the clips as 16-bit WAV files; returns their total seconds."""
    if args.clips is not None:
        sources = sorted(p for p in args.clips.iterdir() if p.suffix.lower() in AUDIO)
        sources = sources[: args.count]
        if len(sources) < args.count:
            sys.exit(f"error: {args.clips}: holds {len(sources)} audio files, not {args.count}")
    else:
        sources = default_clips(args.count)
    seconds = 0.0
    for i, source in enumerate(sources):
        audio, rate = sf.read(source, dtype="int16")
        sf.write(folder / f"{i:02d}_{source.stem}.wav", audio, rate, subtype="PCM_16")
        seconds += audio.shape[0] / rate
    return seconds


def run_once(flags: list[str], args: argparse.Namespace, clips: Path, out: Path) -> tuple:
    """One fresh ``hifigan vocode`` process: ``(wall seconds, its backend line)``."""
    cmd = [sys.executable, "-m", "hifigan", "vocode", str(clips), "-o", str(out)]
    cmd += ["--threads", str(args.threads), "--device", "cpu", *flags, *args.vocode_args]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"error: {' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    lines = [line for line in done.stderr.splitlines() if line.startswith("backend: ")]
    return wall, lines[0] if lines else "(no backend line)"


def written_audio(out: Path) -> tuple[float, dict[str, np.ndarray]]:
    """The seconds of audio in ``out``'s WAV files, and their 16-bit samples by name."""
    samples = {p.name: sf.read(p, dtype="int16")[0] for p in sorted(out.glob("*.wav"))}
    rate = sf.info(next(out.glob("*.wav"))).samplerate
    return sum(a.shape[0] for a in samples.values()) / rate, samples


def cpu_name() -> str:
    """The CPU's model name (Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--clips", type=Path, default=None, help="a folder of audio clips")
    ap.add_argument("--count", type=int, default=20, help="clips to vocode (default 20)")
    ap.add_argument("--repeats", type=int, default=5, help="runs per command (default 5)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    ap.add_argument("vocode_args", nargs="*", help="after --: more hifigan vocode arguments")
    args = ap.parse_args()
    if args.count < 1 or args.repeats < 1 or args.threads < 1:
        ap.error("--count, --repeats and --threads must be at least 1")

    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    notes: dict[str, str] = {}
    last: dict[str, dict[str, np.ndarray]] = {}
    audio_seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        clips = Path(tmp) / "clips"
        clips.mkdir()
        input_seconds = prepare_clips(args, clips)
        for repeat in range(args.repeats):
            order = list(COMMANDS) if repeat % 2 == 0 else list(reversed(COMMANDS))
            for name in order:
                out = Path(tmp) / f"out_{repeat}_{name.split()[0]}"
                wall, notes[name] = run_once(COMMANDS[name], args, clips, out)
                times[name].append(wall)
                audio_seconds[name], last[name] = written_audio(out)
                print(f"repeat {repeat + 1}: {name}: {wall:.2f} s", file=sys.stderr)

    cpu = cpu_name()
    print(f"{args.count} clips, {input_seconds:.1f} s of input audio")
    print(f"{args.repeats} runs per command, {args.threads} threads, torch {torch.__version__}")
    print(f"CPU: {cpu}")
    for name, note in notes.items():
        print(f"{name}: {note}")
    old, new = COMMANDS
    diff = max(
        int(np.abs(last[old][f].astype(int) - last[new][f]).max(initial=0)) for f in last[old]
    )
    print(f"largest difference between their outputs: {diff} LSB (16-bit)\n")
    header = ["command", "median wall s", "min-max s", "audio s", "RTF", "ratio old/new"]
    rows = []
    for name in COMMANDS:
        median = statistics.median(times[name])
        ratio = statistics.median(times[old]) / median
        rows.append(
            [
                name,
                f"{median:.2f}",
                f"{min(times[name]):.2f}-{max(times[name]):.2f}",
                f"{audio_seconds[name]:.1f}",
                f"{median / audio_seconds[name]:.3f}",
                f"{ratio:.2f}x",
            ]
        )
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    for row in [header, ["-" * w for w in widths], *rows]:
        print(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))
            )
        )


if __name__ == "__main__":
    main()
