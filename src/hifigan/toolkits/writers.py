"""Writing a generator in ParallelWaveGAN/ESPnet's and Coqui TTS's formats.

* ParallelWaveGAN: ``checkpoint-<steps>steps.pkl`` (``{"model": {"generator": ...}, "steps",
  "epochs"}``, ParallelWaveGAN's key names with weight norm) and ``config.yml`` beside it
  (``generator_type: HiFiGANGenerator`` and its ``generator_params``, the mel parameters), read
  by ``parallel_wavegan.utils.load_model``;
* Coqui: ``checkpoint_<steps>.pth`` (``{"config", "model", "step", "epoch", "date"}``, the
  weights under ``model_g.``) and ``config.json`` beside it, read by Coqui's ``GAN`` vocoder.

Only generators these toolkits can express are written: zero padding, and for
ParallelWaveGAN upsampling kernels of twice their rate.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

from torch import Tensor

from ..checkpoint import to_authors_keys
from ..config import HiFiGANConfig
from ..errors import HiFiGANError
from ..generator import Generator
from ..io import atomic_write_text, save_torch
from . import keys
from .readers import MEL_KEY

FORMATS = ("parallel-wavegan", "coqui")


def _model_convention(config: HiFiGANConfig) -> dict[str, Any]:
    from ..conventions import convention_from_mel_config

    return convention_from_mel_config(config.mel).to_dict()


def _weight_normed_state(generator: Generator) -> dict[str, Tensor]:
    """The authors' names with ``weight_g``/``weight_v`` (both toolkits train with weight
    norm and their loaders expect it)."""
    state = to_authors_keys(generator.state_dict())
    if any(k.endswith(".weight_g") for k in state):
        return {k: v.detach().clone() for k, v in state.items()}
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        if key.endswith(".weight") and value.dim() == 3:
            norm = value.norm(dim=tuple(range(1, value.dim())), keepdim=True)
            out[key[: -len("weight")] + "weight_g"] = norm.clone()
            out[key[: -len("weight")] + "weight_v"] = value.detach().clone()
        else:
            out[key] = value.detach().clone()
    return out


def _check_expressible(config: HiFiGANConfig, fmt: str) -> None:
    g = config.generator
    if g.conv_padding_mode != "zeros":
        raise HiFiGANError(f"cannot write the {fmt} format: its convolutions pad with zeros only")
    if fmt == "coqui" and (g.upsample_paddings or g.upsample_output_paddings):
        raise HiFiGANError("cannot write the coqui format: its upsampling pads (k - u) / 2 only")
    doubled = all(k == 2 * u for u, k in zip(g.upsample_rates, g.upsample_kernel_sizes))
    if fmt == "parallel-wavegan" and not doubled:
        raise HiFiGANError(
            "cannot write the parallel-wavegan format: its upsampling kernels must be "
            "twice their rates"
        )


def write_parallel_wavegan(
    generator: Generator, config: HiFiGANConfig, path: str | Path, *, steps: int = 0
) -> list[Path]:
    """Write ``path`` (the ``.pkl`` checkpoint) and ``config.yml`` beside it; returns both."""
    import yaml

    _check_expressible(config, "parallel-wavegan")
    path = Path(path)
    g, m = config.generator, config.mel
    additional = g.resblock == 1
    state = keys.to_parallel_wavegan(_weight_normed_state(generator), additional)
    params = {
        "in_channels": m.n_mels,
        "out_channels": 1,
        "channels": g.upsample_initial_channel,
        "kernel_size": 7,
        "upsample_scales": list(g.upsample_rates),
        "upsample_kernel_sizes": list(g.upsample_kernel_sizes),
        "resblock_kernel_sizes": list(g.resblock_kernel_sizes),
        "resblock_dilations": [list(d) for d in g.resblock_dilation_sizes],
        "use_additional_convs": additional,
        "bias": True,
        "nonlinear_activation": "LeakyReLU",
        "nonlinear_activation_params": {"negative_slope": 0.1},
        "use_weight_norm": True,
    }
    cfg: dict[str, Any] = {
        "sampling_rate": m.sample_rate,
        "fft_size": m.n_fft,
        "hop_size": m.hop_length,
        "win_length": m.win_length,
        "window": "hann",
        "num_mels": m.n_mels,
        "fmin": m.fmin,
        "fmax": m.fmax,
        "generator_type": "HiFiGANGenerator",
        "generator_params": params,
        "format": "npy",
        "log_base": None
        if _model_convention(config)["compression"]["kind"].startswith("ln")
        else 10.0,
        # the exact mel the model reads (ParallelWaveGAN ignores this key; hifigan reads it)
        MEL_KEY: _model_convention(config),
    }
    config_file = path.parent / "config.yml"
    save_torch({"model": {"generator": state}, "steps": steps, "epochs": 0}, path)
    atomic_write_text(config_file, yaml.safe_dump(cfg, sort_keys=False))
    return [path, config_file]


def write_coqui(
    generator: Generator, config: HiFiGANConfig, path: str | Path, *, steps: int = 0
) -> list[Path]:
    """Write ``path`` (the ``.pth`` checkpoint) and ``config.json`` beside it; returns both."""
    _check_expressible(config, "coqui")
    path = Path(path)
    g, m = config.generator, config.mel
    state = {f"model_g.{k}": v for k, v in _weight_normed_state(generator).items()}
    conv = config.mel.convention or {}
    comp = conv.get("compression", {})
    audio: dict[str, Any] = {
        "sample_rate": m.sample_rate,
        "fft_size": m.n_fft,
        "win_length": m.win_length,
        "hop_length": m.hop_length,
        "num_mels": m.n_mels,
        "mel_fmin": m.fmin,
        "mel_fmax": m.fmax,
    }
    if comp.get("kind") == "db_normalized":
        audio.update(
            signal_norm=True,
            spec_gain=comp.get("gain_db", 20.0),
            ref_level_db=comp.get("ref_level_db", 20.0),
            min_level_db=comp.get("min_level_db", -100.0),
            max_norm=comp.get("max_abs_value", 4.0),
            symmetric_norm=comp.get("symmetric", True),
            clip_norm=comp.get("clip", True),
        )
    cfg = {
        "model": "hifigan",
        "generator_model": "hifigan_generator",
        "generator_model_params": {
            "upsample_factors": list(g.upsample_rates),
            "upsample_kernel_sizes": list(g.upsample_kernel_sizes),
            "upsample_initial_channel": g.upsample_initial_channel,
            "resblock_kernel_sizes": list(g.resblock_kernel_sizes),
            "resblock_dilation_sizes": [list(d) for d in g.resblock_dilation_sizes],
            "resblock_type": str(g.resblock),
            "inference_padding": g.inference_padding if g.inference_padding else 5,
        },
        "audio": audio,
        MEL_KEY: _model_convention(config),
    }
    save_torch(
        {
            "config": cfg,
            "model": state,
            "step": steps,
            "epoch": 0,
            "date": datetime.date.today().strftime("%B %d, %Y"),
        },
        path,
    )
    config_file = path.parent / "config.json"
    atomic_write_text(config_file, json.dumps(cfg, indent=2) + "\n")
    return [path, config_file]
