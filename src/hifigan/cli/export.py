"""hifigan export --checkpoint PATH --format onnx -o FILE: a portable inference graph.

The ONNX graph maps mel (batch, n_mels, frames) to audio (batch, 1, frames * hop_length)
with dynamic batch and frame axes; the file carries the config, sample rate and receptive field as
metadata. Before reporting success the export loads the written file in ONNX Runtime and
checks its output against the eager generator (--tolerance); otherwise nothing is written.
The export runs on the CPU.

--format parallel-wavegan or coqui writes the generator of any checkpoint the package loads in
that toolkit's training format instead: the checkpoint FILE and its config beside it
(config.yml, config.json), read by the toolkit's own loader (see docs/toolkits.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..checkpoint import load_generator
from ..inference.onnx import OPSET, export_onnx
from ..toolkits.writers import write_coqui, write_parallel_wavegan
from .common import (
    add_model_arguments,
    add_overwrite_argument,
    add_threads_argument,
    apply_threads,
    model_source,
    output_plan,
)
from .options import integer, number

HELP = "export the generator to ONNX (dynamic frame axis), checked against eager"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_model_arguments(p)
    p.add_argument(
        "--format",
        default="onnx",
        choices=["onnx", "parallel-wavegan", "coqui"],
        help="output format: onnx (default), or a toolkit's checkpoint with its config beside "
        "it: parallel-wavegan (also ESPnet's vocoders; config.yml), coqui (config.json)",
    )
    p.add_argument(
        "-o", "--output", required=True, type=Path, metavar="FILE", help="the file to write"
    )
    p.add_argument(
        "--opset",
        type=integer(7, 30),
        default=OPSET,
        help=f"ONNX opset (default {OPSET}; older ones by conversion, where it succeeds)",
    )
    p.add_argument(
        "--tolerance",
        type=number(0, 2, above=True),
        default=1e-4,
        help="largest |onnx - eager| sample accepted (default 1e-4)",
    )
    add_overwrite_argument(p)
    add_threads_argument(p)


def run(args: argparse.Namespace) -> int:
    apply_threads(args.threads)
    checkpoint, config = model_source(args)
    plan = output_plan(args, [checkpoint, checkpoint.parent / "config.json"])
    plan.claim(args.output)  # before the model loads: a refusal costs nothing
    writers = {
        "parallel-wavegan": (write_parallel_wavegan, "config.yml"),
        "coqui": (write_coqui, "config.json"),
    }
    if args.format in writers:
        write, config_name = writers[args.format]
        plan.claim(args.output.parent / config_name)
        generator, cfg = load_generator(checkpoint, config)
        written = write(generator, cfg, args.output)
        print(f"wrote {' and '.join(str(p) for p in written)} ({args.format} format)")
        return 0
    generator, cfg = load_generator(checkpoint, config)
    report = export_onnx(
        generator, cfg, args.output, opset=args.opset, tolerance=args.tolerance, outputs=plan
    )
    frames = ", ".join(str(n) for n in report.frames_checked)
    print(
        f"wrote {report.path} ({report.size_bytes / 1e6:.1f} MB, opset {report.opset}); "
        f"ONNX Runtime matches eager within {report.max_abs_diff:.2g} "
        f"(batch 2 x {frames} frames)"
    )
    return 0
