"""Fuzz the mel and audio readers with mutated files for a fixed time.

Every input must either load (finite float32 of the documented shape) or raise the package's
own error; anything else is a crash, saved under ``--out`` with its traceback. The input
being read is written to ``--out/current`` first, so a hard crash of a native library leaves
the file that caused it.

    python scripts/fuzz_readers.py --minutes 10 --out out/fuzz
"""

from __future__ import annotations

import argparse
import io
import random
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from hifigan.errors import HiFiGANError
from hifigan.io import check_mel, load_audio, load_mel


def seed_files() -> dict[str, bytes]:
    """Small valid files of every format the readers accept."""
    rng = np.random.default_rng(0)
    audio = (0.3 * rng.standard_normal(2000)).astype(np.float32)
    seeds: dict[str, bytes] = {}
    for suffix, fmt, subtype in [
        (".wav", "WAV", "PCM_16"),
        (".wav", "WAV", "FLOAT"),
        (".flac", "FLAC", "PCM_16"),
        (".ogg", "OGG", "VORBIS"),
        (".aiff", "AIFF", "PCM_16"),
        (".mp3", "MP3", "MPEG_LAYER_III"),
    ]:
        buf = io.BytesIO()
        sf.write(buf, audio, 22050, format=fmt, subtype=subtype)
        seeds[f"{suffix}:{subtype}"] = buf.getvalue()
    mel = rng.standard_normal((80, 20)).astype(np.float32)
    buf = io.BytesIO()
    np.save(buf, mel)
    seeds[".npy:f32"] = buf.getvalue()
    buf = io.BytesIO()
    torch.save({"mel": torch.from_numpy(mel)}, buf)
    seeds[".pt:dict"] = buf.getvalue()
    return seeds


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One to eight random edits: flips, overwrites with boundary values, inserts, deletes,
    truncation, or splicing in a copy of another part."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        if not out:
            out = bytearray(rng.randbytes(rng.randint(1, 64)))
        op = rng.randrange(6)
        i = rng.randrange(len(out))
        if op == 0:
            out[i] ^= 1 << rng.randrange(8)
        elif op == 1:
            value = rng.choice([0x00, 0xFF, 0x7F, 0x80, 0x41])
            out[i : i + rng.randint(1, 8)] = bytes([value]) * rng.randint(1, 8)
        elif op == 2:
            out[i:i] = rng.randbytes(rng.randint(1, 32))
        elif op == 3:
            del out[i : i + rng.randint(1, 64)]
        elif op == 4:
            del out[rng.randrange(len(out)) :]
        else:
            j = rng.randrange(len(out))
            out[i:i] = out[j : j + rng.randint(1, 128)]
    return bytes(out)


def check_one(path: Path) -> None:
    """Read ``path`` with the matching reader; raise AssertionError on a bad result."""
    if path.suffix.lower() in (".npy", ".pt"):
        mel = load_mel(path)
        assert mel.dtype == np.float32 and mel.ndim == 2, (mel.dtype, mel.shape)
        try:
            check_mel(mel, mel.shape[0], path)
        except HiFiGANError:
            return
        assert np.isfinite(mel).all()
    else:
        audio, rate = load_audio(path, 22050)
        assert audio.dtype == np.float32 and audio.ndim == 1 and audio.size > 0
        assert np.isfinite(audio).all() and rate == 22050


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="how long to run")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--out", type=Path, default=Path("out/fuzz"), help="crash folder")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    seeds = seed_files()
    names = sorted(seeds)
    end = time.monotonic() + 60 * args.minutes
    runs = errors = 0
    crashes: dict[str, int] = {}
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        while time.monotonic() < end:
            name = rng.choice(names)
            suffix = name.split(":")[0]
            if rng.random() < 0.1:
                suffix = suffix.upper()
            data = mutate(seeds[name], rng) if rng.random() < 0.95 else rng.randbytes(100)
            path = Path(tmp) / f"input{suffix}"
            path.write_bytes(data)
            (args.out / "current").write_bytes(data)
            runs += 1
            try:
                check_one(path)
            except HiFiGANError:
                errors += 1
            except Exception as e:
                key = f"{type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}"
                if key not in crashes:
                    (args.out / f"crash{len(crashes)}{suffix}").write_bytes(data)
                    (args.out / f"crash{len(crashes)}.txt").write_text(traceback.format_exc())
                crashes[key] = crashes.get(key, 0) + 1
    print(f"{runs} inputs in {args.minutes:g} min: {runs - errors - sum(crashes.values())} loaded,")
    print(f"{errors} refused with a one-line error, {sum(crashes.values())} crashed")
    for key, count in crashes.items():
        print(f"  {count} x {key}")
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
