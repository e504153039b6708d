"""Where does a model's CREPE periodicity error come from? Split it by frame class.

The periodicity error of ``hifigan evaluate`` is the RMSE, over all frames of a clip, between the
CREPE periodicity of the reference and of its copy synthesis. This script re-synthesises the
first N clips of an ``id|text`` list (audio in ``wavs/`` beside it) with each given model and
splits the squared error into the frames the reference voices (CREPE's hysteresis decision),
the unvoiced frames and the silent ones (periodicity 0 under -60 dB), with the mean signed
difference (generated minus reference: negative means the copy is less periodic than the
reference). Models are built-in names or checkpoint paths, so a run's step checkpoints show how
the error moves during fine-tuning::

    python scripts/periodicity_split.py --list ../shared/data/kathleen/eval.txt --clips 24 \\
        --models lj-v1 runs/adapt60/run/checkpoints/step_00000600.pt ...

Output: one Markdown row per model (pooled over the clips' frames).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from hifigan import Vocoder
from hifigan.evaluation.clips import dataset_files
from hifigan.evaluation.pitch import PitchTrack, PitchTracker
from hifigan.io import load_audio, peak_normalize

CLASSES = ("voiced", "unvoiced", "silent")


def frame_classes(track: PitchTrack) -> dict[str, np.ndarray]:
    """Boolean masks over the reference's frames, one per class."""
    voiced = track.voiced()
    silent = (track.periodicity == 0) & ~voiced
    return {"voiced": voiced, "unvoiced": ~voiced & ~silent, "silent": silent}


def load_model(spec: str) -> Vocoder:
    return Vocoder.from_checkpoint(spec) if Path(spec).exists() else Vocoder.from_pretrained(spec)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--list", type=Path, required=True, help="id|text list, wavs/ beside it")
    p.add_argument("--clips", type=int, default=24, help="the first N clips of the list")
    p.add_argument("--models", nargs="+", required=True, help="built-in names or checkpoints")
    p.add_argument("--crepe", choices=("full", "tiny"), default="tiny")
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    _, files = dataset_files(args.list)
    tracker = PitchTracker(capacity=args.crepe)
    references = []
    for path in files[: args.clips]:
        audio, _ = load_audio(path, 22050)
        audio = peak_normalize(np.asarray(audio, dtype=np.float32))
        references.append((audio, tracker.track(audio)))
    print(f"{len(references)} clips of {args.list}, CREPE {args.crepe}")
    print("| model | RMSE | " + " | ".join(f"{c}: share, RMSE, bias" for c in CLASSES) + " |")
    print("|---|---|" + "---|" * len(CLASSES))
    for spec in args.models:
        vocoder = load_model(spec)
        diffs: dict[str, list[np.ndarray]] = {c: [] for c in CLASSES}
        for audio, ref in references:
            copy = vocoder.copy_synthesis(torch.from_numpy(audio)).numpy().reshape(-1)
            gen = tracker.track(copy)
            n = min(ref.periodicity.shape[0], gen.periodicity.shape[0])
            d = gen.periodicity[:n] - ref.periodicity[:n]
            for c, mask in frame_classes(ref).items():
                diffs[c].append(d[mask[:n]])
        pooled = {c: np.concatenate(v) for c, v in diffs.items()}
        total = sum(float(np.sum(v**2)) for v in pooled.values())
        frames = sum(v.size for v in pooled.values())
        cells = [
            f"{np.sum(v**2) / total:.2f}, {np.sqrt(np.mean(v**2)):.4f}, {np.mean(v):+.4f}"
            if v.size
            else "–"
            for v in pooled.values()
        ]
        path = Path(spec)  # a run's checkpoint: name it by run folder and file
        name = f"{path.parent.parent.name}/{path.stem}" if path.exists() else spec
        print(f"| {name} | {np.sqrt(total / frames):.4f} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
