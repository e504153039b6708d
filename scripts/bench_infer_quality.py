"""Quality cost of reduced precision: copy synthesis of the LJSpeech clips, bf16 against fp32.

For each clip: its log-mel (the generator input), synthesis with every variant, then the mel L1
distance to the real clip (full-band loss mel, as in the paper's ablation) and PESQ-WB at 16 kHz
(both signals resampled with soxr). Variants: eager fp32 (the reference), fast fp32, fast bf16
with the default stage policy, and bf16 in every stage (``conv_post`` still fp32), to show why
the default keeps the last stage in fp32. Target: the default bf16 path within 1% mel
L1 and 0.02 PESQ-WB of fp32 with the authors' LJ_V2 weights.

    python scripts/bench_infer_quality.py                  # LJ_V2, all 37 clips
    python scripts/bench_infer_quality.py --models v1 v2 --clips 10
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from infer_common import add_json_argument, ljspeech_clips, load_model, write_json

from hifigan import HiFiGANConfig, MelSpectrogram
from hifigan.inference.backends import FastBackend
from hifigan.inference.fast import default_reduced_stages
from hifigan.io import load_audio, resample


def pesq_wb(reference: np.ndarray, degraded: np.ndarray, rate: int) -> float:
    from pesq import pesq

    return float(
        pesq(16000, resample(reference, rate, 16000), resample(degraded, rate, 16000), "wb")
    )


@torch.inference_mode()
def score_variants(
    variants: dict[str, Callable[[torch.Tensor], torch.Tensor]],
    config: HiFiGANConfig,
    clips: list[Path],
) -> dict[str, dict[str, list[float]]]:
    """Copy synthesis of every clip by every variant: mel L1 and PESQ-WB per clip."""
    input_mel = MelSpectrogram.from_config(config.mel)
    loss_mel = MelSpectrogram.from_config(config.mel, for_loss=True)
    rate = config.mel.sample_rate
    scores: dict[str, dict[str, list[float]]] = {v: {"l1": [], "pesq": []} for v in variants}
    for clip in clips:
        audio, _ = load_audio(clip, rate)
        mel = input_mel(torch.from_numpy(audio)).unsqueeze(0)
        for label, run in variants.items():
            out = run(mel).reshape(-1)
            n = min(out.shape[0], audio.shape[0])
            real, fake = torch.from_numpy(audio[:n]), out[:n].float()
            l1 = (loss_mel(fake) - loss_mel(real)).abs().mean().item()
            scores[label]["l1"].append(l1)
            scores[label]["pesq"].append(pesq_wb(audio[:n], fake.numpy(), rate))
    return scores


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--models", nargs="+", default=["v2"], help="v1 and/or v2 (trained weights)")
    ap.add_argument("--clips", type=int, default=None, help="first N clips only")
    ap.add_argument("--threads", type=int, default=2)
    add_json_argument(ap)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    clips = ljspeech_clips()[: args.clips]
    summary = []
    for name in args.models:
        generator, config, source = load_model(name)
        stages = len(generator.ups)
        variants = {
            "eager fp32": generator,
            "fast fp32": FastBackend(generator),
            f"fast bf16 ({default_reduced_stages(generator)}/{stages} stages)": FastBackend(
                generator, precision="bf16"
            ),
            f"bf16 all {stages} stages": FastBackend(
                generator, precision="bf16", reduced_stages=stages
            ),
        }
        scores = score_variants(variants, config, clips)
        base_l1 = float(np.mean(scores["eager fp32"]["l1"]))
        base_pesq = float(np.mean(scores["eager fp32"]["pesq"]))
        print(f"\n{name} ({source}), {len(clips)} clips, copy synthesis")
        print(f"{'variant':28} {'mel L1':>8} {'vs fp32':>8} {'PESQ-WB':>8} {'vs fp32':>8}")
        for label, s in scores.items():
            l1, pq = float(np.mean(s["l1"])), float(np.mean(s["pesq"]))
            print(
                f"{label:28} {l1:8.4f} {100 * (l1 / base_l1 - 1):+7.2f}% {pq:8.3f} "
                f"{pq - base_pesq:+8.3f}"
            )
            summary.append(
                {
                    "model": name,
                    "weights": source,
                    "variant": label,
                    "clips": len(clips),
                    "mel_l1": l1,
                    "mel_l1_rel_change": l1 / base_l1 - 1,
                    "pesq_wb": pq,
                    "pesq_change": pq - base_pesq,
                }
            )
    write_json(args.json, summary)


if __name__ == "__main__":
    main()
