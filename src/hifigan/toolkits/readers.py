"""Readers for the HiFi-GAN checkpoints of ParallelWaveGAN/ESPnet, Coqui TTS, NeMo,
SpeechBrain and NVIDIA's DeepLearningExamples, found by content.

Each reader returns a :class:`ToolkitModel`: the generator weights in the authors' key names
(weight norm folded), and a :class:`~hifigan.config.HiFiGANConfig` built from the toolkit's own
config file, whose generator section describes the toolkit's variant (padding mode, transposed
padding, inference padding) and whose mel section carries the toolkit's mel convention.
"""

from __future__ import annotations

import math
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import Tensor

from ..config import HiFiGANConfig
from ..errors import CheckpointError, ConfigError
from . import keys
from .plain import _Tagged, load_restricted, load_yaml, resolve_references

# written by hifigan export into a toolkit's config: the exact convention of the model's mel,
# which the toolkit's own mel options cannot always express
MEL_KEY = "hifigan_mel_convention"
TOOLKITS = {
    "parallel-wavegan": "ParallelWaveGAN/ESPnet",
    "coqui": "Coqui TTS",
    "nemo": "NeMo",
    "speechbrain": "SpeechBrain",
    "dle": "NVIDIA DeepLearningExamples",
}


@dataclass
class ToolkitModel:
    """A generator read from another toolkit's files."""

    toolkit: str
    """Key of :data:`TOOLKITS`."""
    config: HiFiGANConfig
    state: dict[str, Tensor]
    """Generator weights, the authors' key names, weight norm folded."""
    config_source: str
    """Where the architecture and mel convention were read."""

    @property
    def toolkit_name(self) -> str:
        return TOOLKITS[self.toolkit]


def _fail(toolkit: str, message: str, path: Path) -> CheckpointError:
    return CheckpointError(f"{TOOLKITS[toolkit]} checkpoint: {message}", path)


# ---------------------------------------------------------------------- shared pieces
def _build_config(
    toolkit: str,
    path: Path,
    source: str,
    *,
    mel: dict[str, Any],
    generator: dict[str, Any],
    convention: dict[str, Any] | None,
) -> HiFiGANConfig:
    hop_length = int(mel["hop_length"])
    data = {
        "name": f"{toolkit}:{path.stem}",
        "mel": {**mel, "convention": convention},
        "generator": generator,
        "train": {"segment_size": 32 * hop_length},
    }
    try:
        return HiFiGANConfig.from_dict(data, source=source)
    except ConfigError as e:
        raise _fail(
            toolkit, f"its config does not describe a usable generator: {e}", path
        ) from None


def _convention(
    name: str,
    description: str,
    mel: dict[str, Any],
    *,
    window: str,
    center: bool,
    pad_mode: str,
    compression: dict[str, Any],
    normalization: dict[str, Any] | None = None,
    magnitude_eps: float = 0.0,
    power: float = 1.0,
    mel_norm: str = "slaney",
    mel_scale: str = "slaney",
) -> dict[str, Any]:
    return {
        "name": name,
        "description": description,
        "sample_rate": int(mel["sample_rate"]),
        "n_fft": int(mel["n_fft"]),
        "hop_length": int(mel["hop_length"]),
        "win_length": int(mel["win_length"]),
        "n_mels": int(mel["n_mels"]),
        "fmin": float(mel["fmin"]),
        "fmax": None if mel["fmax"] is None else float(mel["fmax"]),
        "mel_scale": mel_scale,
        "filter_norm": mel_norm,
        "window": window,
        "center": center,
        "pad_mode": pad_mode,
        "power": power,
        "magnitude_eps": magnitude_eps,
        "compression": compression,
        "normalization": normalization or {"kind": "none"},
    }


def _mel(sr: Any, n_fft: Any, hop_length: Any, win: Any, n_mels: Any, fmin: Any, fmax: Any) -> dict:
    sr = int(sr)
    n_fft = int(n_fft)
    return {
        "sample_rate": sr,
        "n_fft": n_fft,
        "hop_length": int(hop_length),
        "win_length": int(win) if win else n_fft,
        "n_mels": int(n_mels),
        "fmin": float(fmin or 0.0),
        "fmax": float(fmax) if fmax else sr / 2,
    }


def _tensors(state: Any, toolkit: str, path: Path) -> dict[str, Tensor]:
    if not isinstance(state, dict) or not state:
        raise _fail(toolkit, "no generator weights found", path)
    odd = [str(k) for k, v in state.items() if not isinstance(v, Tensor)]
    if odd:
        raise _fail(toolkit, f"generator weights hold non-tensors (e.g. {odd[0]})", path)
    return dict(state)


def _int_list(value: Any) -> list:
    return [_int_list(v) if isinstance(v, (list, tuple)) else int(v) for v in value]


def _resblock_type(value: Any) -> int:
    return int(str(value).strip())


# ---------------------------------------------------------------------- ParallelWaveGAN
def _is_parallel_wavegan(obj: dict[str, Any]) -> bool:
    """ParallelWaveGAN's trainer layout (any of its generators: the reader names the type)."""
    model = obj.get("model")
    return (
        isinstance(model, dict)
        and isinstance(model.get("generator"), dict)
        and ("discriminator" in model or "steps" in obj)
        and not any(str(k).startswith("conv_pre.") for k in model["generator"])
    )


def _parallel_wavegan_unsupported(p: dict[str, Any]) -> list[str]:
    """The generator options of ``HiFiGANGenerator`` that this package does not model."""
    unsupported = []
    if p.get("out_channels", 1) != 1:
        unsupported.append(f"out_channels {p['out_channels']} (multi-band)")
    if p.get("kernel_size", 7) != 7:
        unsupported.append(f"kernel_size {p['kernel_size']} (only 7)")
    if not p.get("bias", True):
        unsupported.append("bias false")
    if p.get("use_causal_conv", False):
        unsupported.append("use_causal_conv")
    if (
        p.get("nonlinear_activation", "LeakyReLU") != "LeakyReLU"
        or (p.get("nonlinear_activation_params") or {"negative_slope": 0.1}).get(
            "negative_slope", 0.01
        )
        != 0.1
    ):
        unsupported.append("an activation other than LeakyReLU(0.1)")
    return unsupported


def read_parallel_wavegan(obj: dict[str, Any], path: Path) -> ToolkitModel:
    """``checkpoint-XXXsteps.pkl`` (``{"model": {"generator", "discriminator"}, ...}``) with
    ``config.yml`` and optionally ``stats.h5``/``stats.npy`` beside it."""
    toolkit = "parallel-wavegan"
    config_file = path.parent / "config.yml"
    if not config_file.is_file():
        raise _fail(toolkit, "its config.yml (written by the trainer) is not beside it", path)
    cfg = load_yaml(config_file)
    if not isinstance(cfg, dict):
        raise _fail(toolkit, f"{config_file} is not a YAML mapping", path)
    kind = cfg.get("generator_type", "ParallelWaveGANGenerator")
    if kind != "HiFiGANGenerator":
        raise _fail(toolkit, f"its generator is {kind}, not a HiFi-GAN (HiFiGANGenerator)", path)
    p = {
        str(k).replace("kernal", "kernel"): v
        for k, v in (cfg.get("generator_params") or {}).items()
    }
    unsupported = _parallel_wavegan_unsupported(p)
    if unsupported:
        raise _fail(toolkit, "not supported: " + ", ".join(unsupported), path)
    rates = _int_list(p.get("upsample_scales", [8, 8, 2, 2]))
    additional = bool(p.get("use_additional_convs", True))
    generator = {
        "resblock": 1 if additional else 2,
        "upsample_rates": rates,
        "upsample_kernel_sizes": _int_list(p.get("upsample_kernel_sizes", [16, 16, 4, 4])),
        "upsample_initial_channel": int(p.get("channels", 512)),
        "resblock_kernel_sizes": _int_list(p.get("resblock_kernel_sizes", [3, 7, 11])),
        "resblock_dilation_sizes": _int_list(p.get("resblock_dilations", [[1, 3, 5]] * 3)),
        "upsample_paddings": [u // 2 + u % 2 for u in rates],
        "upsample_output_paddings": [u % 2 for u in rates],
    }
    mel = _mel(
        cfg.get("sampling_rate", 22050),
        cfg.get("fft_size", 1024),
        cfg.get("hop_size", 256),
        cfg.get("win_length"),
        p.get("in_channels", 80),
        cfg.get("fmin"),
        cfg.get("fmax"),
    )
    base = cfg.get("log_base", 10.0)
    if base not in (None, 10, 10.0, math.e):
        raise _fail(toolkit, f"log_base {base} is not supported (10 or natural)", path)
    compression = {"kind": "ln_clamp" if base in (None, math.e) else "log10_clamp", "floor": 1e-10}
    ext = "h5" if cfg.get("format", "hdf5") == "hdf5" else "npy"
    stats = path.parent / f"stats.{ext}"
    normalization = {"kind": "per_band_stats", "stats": str(stats) if stats.is_file() else None}
    window = cfg.get("window", "hann")
    if window != "hann":
        raise _fail(toolkit, f"window {window!r} is not supported (hann)", path)
    convention = _convention(
        "parallel-wavegan-model",
        f"ParallelWaveGAN logmelfilterbank from {config_file.name}, normalised with "
        + (stats.name if stats.is_file() else "stats that are not beside the checkpoint"),
        mel,
        window="hann_periodic",
        center=True,
        pad_mode="reflect",
        compression=compression,
        normalization=normalization,
    )
    convention = cfg.get(MEL_KEY) if isinstance(cfg.get(MEL_KEY), dict) else convention
    state = _tensors(obj["model"]["generator"], toolkit, path)
    state = {k: v for k, v in state.items() if k not in ("mean", "scale")}
    state = keys.fold_weight_norm(keys.from_parallel_wavegan(state, additional))
    config = _build_config(
        toolkit, path, str(config_file), mel=mel, generator=generator, convention=convention
    )
    return ToolkitModel(toolkit, config, state, str(config_file))


# ---------------------------------------------------------------------- Coqui TTS
def _is_coqui(obj: dict[str, Any]) -> bool:
    model = obj.get("model")
    return isinstance(model, dict) and any(str(k).startswith("model_g.") for k in model)


def coqui_convention(audio: dict[str, Any], mel: dict[str, Any], source: str) -> dict[str, Any]:
    """The convention of Coqui's ``AudioProcessor.melspectrogram`` for an ``audio`` section."""
    if audio.get("preemphasis", 0.0):
        raise CheckpointError(f"Coqui audio preemphasis {audio['preemphasis']} is not supported")
    if audio.get("stats_path"):
        raise CheckpointError("Coqui mean-variance statistics (stats_path) are not supported")
    gain = float(audio.get("spec_gain", 20))
    log10 = audio.get("log_func", "np.log10") == "np.log10"
    gain_db = gain if log10 else gain * math.log(10)
    norm = audio.get("signal_norm", True)
    compression: dict[str, Any] = {
        "kind": "db_normalized" if norm else "db",
        "floor": 1e-8,
        "gain_db": gain_db,
        "ref_level_db": float(audio.get("ref_level_db", 20)) if norm else 0.0,
        "min_level_db": float(audio.get("min_level_db", -100)),
        "max_abs_value": float(audio.get("max_norm", 4.0)),
        "symmetric": bool(audio.get("symmetric_norm", True)),
        "clip": bool(audio.get("clip_norm", True)),
    }
    return _convention(
        "coqui-model",
        f"Coqui AudioProcessor mel from {source}",
        mel,
        window="hann_periodic",
        center=True,
        pad_mode="reflect" if audio.get("stft_pad_mode", "reflect") == "reflect" else "zero",
        compression=compression,
    )


def read_coqui(obj: dict[str, Any], path: Path) -> ToolkitModel:
    """``checkpoint_XXX.pth`` / ``best_model.pth`` (``{"config", "model", "optimizer", ...}``)
    with ``config.json`` beside it (else the config the checkpoint carries)."""
    import json

    toolkit = "coqui"
    beside = path.parent / "config.json"
    cfg: Any = None
    source = f"{path} (embedded config)"
    if beside.is_file():
        try:
            cfg = json.loads(beside.read_text())
            source = str(beside)
        except (OSError, ValueError):
            cfg = None
    if not isinstance(cfg, dict) or "audio" not in cfg:
        cfg, source = obj.get("config"), f"{path} (embedded config)"
    if not isinstance(cfg, dict):
        raise _fail(toolkit, "no config.json beside it and none embedded", path)
    kind = cfg.get("generator_model", "hifigan_generator")
    if kind != "hifigan_generator":
        raise _fail(toolkit, f"its generator is {kind}, not hifigan_generator", path)
    p = dict(cfg.get("generator_model_params") or {})
    unsupported = [
        name
        for name, bad in (
            ("cond_channels", p.get("cond_channels", 0)),
            ("pre_linear", p.get("pre_linear")),
            ("cond_in_each_up_layer", p.get("cond_in_each_up_layer", False)),
            ("conv_post_bias false", not p.get("conv_post_bias", True)),
        )
        if bad
    ]
    if unsupported:
        raise _fail(toolkit, "not supported: " + ", ".join(unsupported), path)
    audio = cfg.get("audio") or {}
    mel = _mel(
        audio.get("sample_rate", 22050),
        audio.get("fft_size", 1024),
        audio.get("hop_length", 256),
        audio.get("win_length", 1024),
        audio.get("num_mels", 80),
        audio.get("mel_fmin", 0.0),
        audio.get("mel_fmax"),
    )
    try:
        convention = cfg.get(MEL_KEY) or coqui_convention(
            audio, mel, Path(source.split(" ")[0]).name
        )
    except CheckpointError as e:
        raise _fail(toolkit, str(e), path) from None
    generator = {
        "resblock": _resblock_type(p.get("resblock_type", "1")),
        "upsample_rates": _int_list(p.get("upsample_factors", [8, 8, 2, 2])),
        "upsample_kernel_sizes": _int_list(p.get("upsample_kernel_sizes", [16, 16, 4, 4])),
        "upsample_initial_channel": int(p.get("upsample_initial_channel", 512)),
        "resblock_kernel_sizes": _int_list(p.get("resblock_kernel_sizes", [3, 7, 11])),
        "resblock_dilation_sizes": _int_list(p.get("resblock_dilation_sizes", [[1, 3, 5]] * 3)),
        "inference_padding": int(p.get("inference_padding", 5)),
    }
    state = _tensors(keys.strip_prefix(obj["model"], "model_g."), toolkit, path)
    state = keys.fold_weight_norm(state)
    config = _build_config(
        toolkit, path, source, mel=mel, generator=generator, convention=convention
    )
    return ToolkitModel(toolkit, config, state, source)


# ---------------------------------------------------------------------- NeMo
def nemo_convention(pre: dict[str, Any], source: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The mel parameters and convention of NeMo's ``FilterbankFeatures`` preprocessor."""
    sr = int(pre.get("sample_rate", 22050))
    win = pre.get("n_window_size") or int(float(pre.get("window_size", 0.02)) * sr)
    hop_length = pre.get("n_window_stride") or int(float(pre.get("window_stride", 0.01)) * sr)
    n_fft = pre.get("n_fft") or 2 ** math.ceil(math.log2(int(win)))
    mel = _mel(
        sr, n_fft, hop_length, win, pre.get("nfilt", 64), pre.get("lowfreq", 0), pre.get("highfreq")
    )
    problems = []
    if pre.get("window", "hann") != "hann":
        problems.append(f"window {pre.get('window')}")
    if pre.get("normalize") not in (None, "None", "none"):
        problems.append(f"normalize {pre.get('normalize')}")
    if pre.get("preemph") not in (None, 0, 0.0):
        problems.append(f"preemph {pre.get('preemph')}")
    if not pre.get("log", True):
        problems.append("log false")
    if problems:
        raise CheckpointError("its preprocessor is not supported: " + ", ".join(problems))
    guard = pre.get("log_zero_guard_value", 2**-24)
    if isinstance(guard, str):
        raise CheckpointError(f"log_zero_guard_value {guard!r} is not supported (a number)")
    kind = "ln_add" if pre.get("log_zero_guard_type", "add") == "add" else "ln_clamp"
    exact = bool(pre.get("exact_pad", False))
    convention = _convention(
        "nemo-model",
        f"NeMo FilterbankFeatures from {source}",
        mel,
        window="hann_symmetric",
        center=not exact,
        pad_mode="zero" if exact or pre.get("pad_mode", "constant") == "constant" else "reflect",
        compression={"kind": kind, "floor": float(guard)},
        power=float(pre.get("mag_power", 2.0)),
        mel_norm="slaney" if pre.get("mel_norm", "slaney") == "slaney" else "none",
    )
    return mel, convention


def read_nemo(cfg: Any, state: Any, path: Path, source: str) -> ToolkitModel:
    """A NeMo HifiGanModel: its model config (``model_config.yaml`` in a ``.nemo`` archive, or a
    Lightning checkpoint's ``hyper_parameters.cfg``) and state dict."""
    toolkit = "nemo"
    if not isinstance(cfg, dict) or not isinstance(cfg.get("generator"), dict):
        raise _fail(toolkit, f"{source} has no generator section", path)
    g = cfg["generator"]
    target = str(g.get("_target_", ""))
    if not target.endswith("hifigan_modules.Generator"):
        raise _fail(toolkit, f"its generator is {target or 'unknown'}, not NeMo's HiFi-GAN", path)
    pre = cfg.get("preprocessor")
    if not isinstance(pre, dict):
        raise _fail(toolkit, f"{source} has no preprocessor section (the mel)", path)
    try:
        mel, convention = nemo_convention(pre, source)
    except CheckpointError as e:
        raise _fail(toolkit, str(e), path) from None
    if int(g.get("initial_input_size", 80)) != mel["n_mels"]:
        raise _fail(toolkit, "generator input size and preprocessor nfilt differ", path)
    kernels = _int_list(g.get("resblock_kernel_sizes", [3, 7, 11]))
    generator = {
        "resblock": _resblock_type(g.get("resblock", 1)),
        "upsample_rates": _int_list(g.get("upsample_rates", [8, 8, 2, 2])),
        "upsample_kernel_sizes": _int_list(g.get("upsample_kernel_sizes", [16, 16, 4, 4])),
        "upsample_initial_channel": int(g.get("upsample_initial_channel", 512)),
        "resblock_kernel_sizes": kernels,
        "resblock_dilation_sizes": _int_list(g.get("resblock_dilation_sizes", [[1, 3, 5]] * 3)),
    }
    weights = _tensors(keys.strip_prefix(state or {}, "generator."), toolkit, path)
    weights = keys.fold_weight_norm(keys.flatten_nested_blocks(weights, len(kernels)))
    config = _build_config(
        toolkit, path, source, mel=mel, generator=generator, convention=convention
    )
    return ToolkitModel(toolkit, config, weights, source)


def read_nemo_archive(path: Path) -> ToolkitModel:
    """A ``.nemo`` file: a tar archive with ``model_config.yaml`` and ``model_weights.ckpt``
    (read in memory; nothing is extracted to disk)."""
    toolkit = "nemo"
    try:
        with tarfile.open(path, "r:*") as tar:
            members = {
                Path(m.name).as_posix().lstrip("./"): m for m in tar.getmembers() if m.isfile()
            }
            if "model_config.yaml" not in members or "model_weights.ckpt" not in members:
                names = ", ".join(sorted(members)[:5]) or "nothing"
                raise _fail(
                    toolkit,
                    "a tar archive without model_config.yaml and model_weights.ckpt "
                    f"(holds {names})",
                    path,
                )
            config_bytes = _read_member(tar, members["model_config.yaml"])
            weight_bytes = _read_member(tar, members["model_weights.ckpt"])
    except (tarfile.TarError, EOFError, OSError):
        raise CheckpointError(
            "cannot read the .nemo archive: it is corrupt or truncated", path
        ) from None
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        config_file = Path(tmp) / "model_config.yaml"
        config_file.write_bytes(config_bytes)
        cfg = load_yaml(config_file)
    state = load_restricted(weight_bytes, path, "NeMo model_weights.ckpt")
    return read_nemo(cfg, state, path, f"{path.name}:model_config.yaml")


def _read_member(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    f = tar.extractfile(member)
    if f is None:
        raise tarfile.TarError(member.name)
    return f.read()


def _is_lightning(obj: dict[str, Any]) -> bool:
    return isinstance(obj.get("state_dict"), dict) and "pytorch-lightning_version" in obj


def read_lightning(obj: dict[str, Any], path: Path) -> ToolkitModel:
    """A Lightning ``.ckpt`` of a NeMo HifiGanModel (``hyper_parameters.cfg``, ``state_dict``)."""
    hp = obj.get("hyper_parameters")
    cfg = hp.get("cfg") if isinstance(hp, dict) else None
    if not isinstance(cfg, dict) or not any(
        str(k).startswith("generator.") for k in obj["state_dict"]
    ):
        raise CheckpointError(
            "a Lightning checkpoint, but not of a NeMo HiFi-GAN (no hyper_parameters.cfg "
            "with a generator, or no generator.* weights)",
            path,
        )
    cfg = resolve_references(cfg)  # OmegaConf keeps ${...} interpolations unresolved
    return read_nemo(cfg, obj["state_dict"], path, f"{path.name}:hyper_parameters.cfg")


# ---------------------------------------------------------------------- SpeechBrain
def _is_speechbrain(obj: dict[str, Any]) -> bool:
    return any(str(k).startswith("conv_pre.conv.") for k in obj)


def _find_hyperparams(path: Path) -> Path | None:
    folder = path.parent
    for _ in range(4):  # CKPT+.../ -> save/ -> the experiment folder
        candidate = folder / "hyperparams.yaml"
        if candidate.is_file():
            return candidate
        folder = folder.parent
    return None


def read_speechbrain(obj: dict[str, Any], path: Path) -> ToolkitModel:
    """``generator.ckpt`` (a bare state dict) with ``hyperparams.yaml`` beside it or in a
    folder above (the experiment folder of ``save/CKPT+.../``)."""
    toolkit = "speechbrain"
    hp_file = _find_hyperparams(path)
    if hp_file is None:
        raise _fail(
            toolkit,
            "no hyperparams.yaml beside it or in the folders above (its model folder)",
            path,
        )
    hp = load_yaml(hp_file)
    g = hp.get("generator") if isinstance(hp, dict) else None
    if not isinstance(g, _Tagged) or not g.tag.endswith("HifiGAN.HifiganGenerator"):
        tag = g.tag if isinstance(g, _Tagged) else "missing"
        raise _fail(
            toolkit, f"{hp_file.name}: generator is {tag}, not HifiGAN.HifiganGenerator", path
        )
    if g.get("cond_channels", 0) or not g.get("conv_post_bias", True):
        raise _fail(toolkit, "cond_channels or conv_post_bias false is not supported", path)
    mel = _mel(
        hp.get("sample_rate", 22050),
        hp.get("n_fft", 1024),
        hp.get("hop_length", 256),
        hp.get("win_length", 1024),
        g.get("in_channels", hp.get("n_mel_channels", 80)),
        hp.get("mel_fmin", 0.0),
        hp.get("mel_fmax", 8000.0),
    )
    if not hp.get("dynamic_range_compression", True) or hp.get("mel_normalized", False):
        raise _fail(toolkit, "mels without dynamic range compression are not supported", path)
    convention = _convention(
        "speechbrain-model",
        f"SpeechBrain mel_spectogram from {hp_file.name}",
        mel,
        window="hann_periodic",
        center=True,
        pad_mode="reflect",
        compression={"kind": "ln_clamp", "floor": 1e-5},
        power=float(hp.get("power", 1)),
        mel_norm="slaney" if hp.get("norm", "slaney") == "slaney" else "none",
        mel_scale="slaney" if hp.get("mel_scale", "slaney") == "slaney" else "htk",
    )
    generator = {
        "resblock": _resblock_type(g.get("resblock_type", "1")),
        "upsample_rates": _int_list(g.get("upsample_factors", [8, 8, 2, 2])),
        "upsample_kernel_sizes": _int_list(g.get("upsample_kernel_sizes", [16, 16, 4, 4])),
        "upsample_initial_channel": int(g.get("upsample_initial_channel", 512)),
        "resblock_kernel_sizes": _int_list(g.get("resblock_kernel_sizes", [3, 7, 11])),
        "resblock_dilation_sizes": _int_list(g.get("resblock_dilation_sizes", [[1, 3, 5]] * 3)),
        "conv_padding_mode": "reflect",
        "inference_padding": int(g.get("inference_padding", 5)),
    }
    state = keys.fold_weight_norm(keys.from_speechbrain(_tensors(obj, toolkit, path)))
    config = _build_config(
        toolkit, path, str(hp_file), mel=mel, generator=generator, convention=convention
    )
    return ToolkitModel(toolkit, config, state, str(hp_file))


# ---------------------------------------------------------------------- NVIDIA DLE
def _is_dle(obj: dict[str, Any]) -> bool:
    cfg = obj.get("config")
    return (
        isinstance(obj.get("generator"), dict)
        and isinstance(cfg, dict)
        and "upsample_rates" in cfg
        and "num_mels" not in cfg
        and ("train_setup" in obj or "gen_ema" in obj or "train_state" in obj)
    )


def read_dle(obj: dict[str, Any], path: Path) -> ToolkitModel:
    """``hifigan_gen_checkpoint_N.pt``: ``{"generator", "gen_ema", "config", "train_setup",
    "train_state"}``; the architecture in ``config``, the mel in ``train_setup``."""
    toolkit = "dle"
    cfg = obj["config"]
    setup = obj.get("train_setup") if isinstance(obj.get("train_setup"), dict) else {}
    kernels = _int_list(cfg.get("resblock_kernel_sizes", [11, 7, 3]))
    generator = {
        "resblock": _resblock_type(cfg.get("resblock", "1")),
        "upsample_rates": _int_list(cfg.get("upsample_rates", [8, 8, 2, 2])),
        "upsample_kernel_sizes": _int_list(cfg.get("upsample_kernel_sizes", [16, 16, 4, 4])),
        "upsample_initial_channel": int(cfg.get("upsample_initial_channel", 512)),
        "resblock_kernel_sizes": kernels,
        "resblock_dilation_sizes": _int_list(cfg.get("resblock_dilation_sizes", [[1, 3, 5]] * 3)),
    }
    mel = _mel(
        setup.get("sampling_rate", 22050),
        setup.get("filter_length", 1024),
        setup.get("hop_length", 256),
        setup.get("win_length", 1024),
        80,  # DLE's generator has 80 input channels, whatever num_mels says
        setup.get("mel_fmin", 0.0),
        setup.get("mel_fmax", 8000.0),
    )
    state = _tensors(obj["generator"], toolkit, path)
    state = {k[len("module.") :] if k.startswith("module.") else k: v for k, v in state.items()}
    state = keys.fold_weight_norm(keys.flatten_nested_blocks(state, len(kernels)))
    # DLE computes the authors' mel (hifigan/data_function.py): no convention of its own
    config = _build_config(
        toolkit, path, f"{path} (embedded config and train_setup)", mel=mel,
        generator=generator, convention=None,
    )  # fmt: skip
    return ToolkitModel(toolkit, config, state, f"{path.name}: config, train_setup")


# ---------------------------------------------------------------------- dispatch
_DETECTORS: tuple[tuple[Callable[[dict[str, Any]], bool], Callable[..., ToolkitModel]], ...] = (
    (_is_parallel_wavegan, read_parallel_wavegan),
    (_is_coqui, read_coqui),
    (_is_lightning, read_lightning),
    (_is_speechbrain, read_speechbrain),
    (_is_dle, read_dle),
)


def unsupported_hint(obj: dict[str, Any]) -> str | None:
    """Why a checkpoint that none of the readers took is still not readable, when its keys
    show which toolkit wrote it; None when they do not."""
    names = [str(k) for k in obj]
    if any(k.startswith("generator.conv_pre.") for k in names):
        return (
            "NeMo model weights (model_weights.ckpt) without their model_config.yaml: load the "
            ".nemo archive they came from"
        )
    nested = [k for k in names if ".input_conv." in k or k.startswith("input_conv.")]
    if nested:
        prefix = nested[0].split("input_conv.")[0] or "the top level"
        return (
            f"ParallelWaveGAN-style HiFi-GAN weights under {prefix} (an ESPnet2 GAN-TTS model or "
            "a bare state dict): only ParallelWaveGAN's checkpoint-<N>steps.pkl with its "
            "config.yml is read; see docs/toolkits.md"
        )
    return None


def read_toolkit_checkpoint(obj: dict[str, Any], path: Path) -> ToolkitModel | None:
    """The toolkit model in a loaded checkpoint, or None when it is none of theirs."""
    for detect, read in _DETECTORS:
        if detect(obj):
            return read(obj, path)
    return None


def is_tar(path: Path) -> bool:
    try:
        return tarfile.is_tarfile(path)
    except OSError:
        return False


def load_lightning_file(path: Path) -> dict[str, Any]:
    """A checkpoint that holds pickled configuration objects (Lightning, NeMo), restricted."""
    return load_restricted(path, path, "checkpoint")
