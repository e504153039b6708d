"""Typed configuration: mel front end, generator, discriminators and training recipe.

A :class:`HiFiGANConfig` is built from a preset name (``v1``, ``v2``, ``v3``, ... stored as JSON
files in ``hifigan/presets``), from one of our JSON files, or from the authors' flat
``config.json``. Every checkpoint we write carries ``config.to_dict()``.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .frontend import (  # noqa: F401  (re-exported: the config's front end)
    MEL_BLOCK_BYTES,
    MEL_RANGES,
    MelFrontEnd,
    check_mel_front_end,
    mel_front_end_problems,
)
from .jsonconfig import check_fields, from_json, parse_json, read_json, show_json


@dataclass
class MelConfig(MelFrontEnd):
    """Log-mel front end (the generator's input and the mel loss).

    The generator input uses ``fmax``; the training loss uses ``fmax_loss`` (None = Nyquist).
    """

    fmax_loss: float | None = None
    # the full mel convention (its JSON form, see hifigan.conventions) when the model reads
    # another toolkit's mel; None: the authors' mel at the values above
    convention: dict | None = None


@dataclass
class GeneratorConfig:
    """Generator architecture (paper section 2.1 and appendix A).

    The last four fields describe other toolkits' variants (see ``docs/toolkits.md``): the
    padding of the stride-1 convolutions (``zeros``, or ``reflect`` as in SpeechBrain), the
    transposed convolutions' padding and output padding (empty: the authors' ``(k - u) // 2``
    and 0), and the frames that the toolkit's own inference repeats at each end of the mel.
    """

    resblock: int = 1
    upsample_rates: tuple[int, ...] = (8, 8, 2, 2)
    upsample_kernel_sizes: tuple[int, ...] = (16, 16, 4, 4)
    upsample_initial_channel: int = 512
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    conv_padding_mode: str = "zeros"
    upsample_paddings: tuple[int, ...] = ()
    upsample_output_paddings: tuple[int, ...] = ()
    inference_padding: int = 0


@dataclass
class DiscriminatorConfig:
    """Multi-period and multi-scale discriminators (paper section 2.2 and 2.3).

    The channel lists let small presets use narrower networks; the defaults are the paper's.
    """

    periods: tuple[int, ...] = (2, 3, 5, 7, 11)
    mpd_channels: tuple[int, ...] = (32, 128, 512, 1024, 1024)
    msd_scales: int = 3
    msd_channels: tuple[int, ...] = (128, 128, 256, 512, 1024, 1024, 1024)
    msd_groups: tuple[int, ...] = (1, 4, 16, 16, 16, 16, 1)


@dataclass
class TrainConfig:
    """Training recipe (paper section 4 and the authors' config files)."""

    segment_size: int = 8192
    batch_size: int = 16
    learning_rate: float = 2e-4
    adam_b1: float = 0.8
    adam_b2: float = 0.99
    weight_decay: float = 0.01
    lr_decay: float = 0.999
    lambda_adv: float = 1.0
    lambda_fm: float = 2.0
    lambda_mel: float = 45.0
    seed: int = 1234
    num_workers: int = 4
    # run length and intervals (in steps), the authors' command-line defaults
    max_steps: int = 2_500_000
    log_interval: int = 100
    val_interval: int = 1000
    checkpoint_interval: int = 5000


@dataclass
class HiFiGANConfig:
    """The complete configuration of one model and its training recipe."""

    name: str = "custom"
    mel: MelConfig = field(default_factory=MelConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> HiFiGANConfig:
        """Build from our nested format or the authors' flat ``config.json`` format, every
        field checked against its annotation (:func:`hifigan.jsonconfig.from_json`)."""
        if not isinstance(data, dict):
            raise ConfigError(
                f"a model config must be a JSON object, got {show_json(data)}", source
            )
        if any(key in data for key in _CONVENTION_ONLY_KEYS):
            raise ConfigError(
                "is a mel convention, not a model config: pass it as --convention (hifigan mel) "
                "or --mel-convention (hifigan vocode)",
                source,
            )
        if _looks_flat(data):
            data = _authors_to_nested(data, source)
        config = from_json(cls, {"name": "custom", **data}, source)
        config.validate(source)
        return config

    @classmethod
    def from_file(cls, path: str | Path) -> HiFiGANConfig:
        """Read a JSON config file (ours or the authors')."""
        path = Path(path)
        config = cls.from_dict(read_json(path, "config file"), source=str(path))
        if config.name == "custom":
            config.name = path.stem
        return config

    @classmethod
    def preset(cls, name: str) -> HiFiGANConfig:
        """Load a built-in preset by name (see :func:`preset_names`)."""
        if name not in preset_names():
            raise ConfigError(f"unknown preset {name!r} (available: {', '.join(preset_names())})")
        text = resources.files("hifigan.presets").joinpath(f"{name}.json").read_text()
        source = f"preset {name}"
        return cls.from_dict(parse_json(text, source), source=source)

    @classmethod
    def load(cls, name_or_path: str | Path) -> HiFiGANConfig:
        """A preset name or a path to a JSON file."""
        if isinstance(name_or_path, str) and name_or_path in preset_names():
            return cls.preset(name_or_path)
        return cls.from_file(name_or_path)

    # ------------------------------------------------------------------ output
    def to_dict(self) -> dict[str, Any]:
        """Nested plain-Python form (JSON-serialisable; lists instead of tuples)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def to_authors_dict(self) -> dict[str, Any]:
        """The authors' flat ``config.json`` format (for exporting to their tools)."""
        m, g, t = self.mel, self.generator, self.train
        return {
            "resblock": str(g.resblock),
            "num_gpus": 0,
            "batch_size": t.batch_size,
            "learning_rate": t.learning_rate,
            "adam_b1": t.adam_b1,
            "adam_b2": t.adam_b2,
            "lr_decay": t.lr_decay,
            "seed": t.seed,
            "upsample_rates": list(g.upsample_rates),
            "upsample_kernel_sizes": list(g.upsample_kernel_sizes),
            "upsample_initial_channel": g.upsample_initial_channel,
            "resblock_kernel_sizes": list(g.resblock_kernel_sizes),
            "resblock_dilation_sizes": [list(d) for d in g.resblock_dilation_sizes],
            "segment_size": t.segment_size,
            "num_mels": m.n_mels,
            "num_freq": m.n_fft // 2 + 1,
            "n_fft": m.n_fft,
            "hop_size": m.hop_length,
            "win_size": m.win_length,
            "sampling_rate": m.sample_rate,
            "fmin": m.fmin,
            "fmax": m.fmax,
            "fmax_for_loss": m.fmax_loss,
            "num_workers": t.num_workers,
        }

    def save(self, path: str | Path) -> None:
        """Write as JSON (atomically)."""
        from .io import atomic_write_text

        atomic_write_text(Path(path), json.dumps(self.to_dict(), indent=2) + "\n")

    # ------------------------------------------------------------------ checks
    def validate(self, source: str = "config") -> None:
        """Raise :class:`ConfigError` (naming ``source``) if any value has the wrong type (a
        config built in Python), is out of range, or the values are inconsistent with each
        other; a carried mel convention is checked as a convention file is."""
        check_fields(self, source)
        for problem in _mel_problems(self.mel):
            raise ConfigError(problem, source)
        if self.mel.convention is not None:
            # checked as a convention file is, by the conventions module (which needs torch,
            # so it is imported only for a config that carries a convention)
            from .conventions.spec import convention_from_dict

            convention_from_dict(self.mel.convention, source, path="mel.convention")
        for problem in _problems(self):
            raise ConfigError(problem, source)


def preset_names() -> list[str]:
    """Names of the built-in presets."""
    folder = resources.files("hifigan.presets")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".json"))


# ---------------------------------------------------------------------- other rates
# stage factors are kept at most this large where the hop allows (the paper's largest is 8);
# larger caps are tried only when a hop cannot be split otherwise
_STAGE_CAPS = (8, 10, 12, 16)


def upsample_plan(hop_length: int, stages: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Upsampling rates and kernel sizes for ``hop_length`` samples per frame in ``stages`` stages.

    The rule that gives the paper's (8, 8, 2, 2) for hop_length 256 in four stages and (8, 8, 4) in
    three: the earliest stages take the largest factors (at most 8 where the hop allows), every
    stage at least 2; each kernel is twice its rate, plus one for odd rates so that kernel
    minus rate stays even (the transposed convolution then has symmetric padding).
    """
    for cap in _STAGE_CAPS:
        rates = _split(hop_length, stages, cap)
        if rates is not None:
            kernels = tuple(2 * r + (r % 2) for r in rates)
            return rates, kernels
    raise ConfigError(
        f"hop_length {hop_length} cannot be split into {stages} upsampling stages of 2 to 16"
    )


def _split(hop_length: int, stages: int, cap: int) -> tuple[int, ...] | None:
    """The greedy split of ``hop_length`` into ``stages`` factors in [2, cap], largest first."""
    if stages == 1:
        return (hop_length,) if 2 <= hop_length <= cap else None
    for factor in range(min(cap, hop_length), 1, -1):
        if hop_length % factor == 0:
            rest = _split(hop_length // factor, stages - 1, min(cap, factor))
            if rest is not None:
                return (factor, *rest)
    return None


def for_mel(base: HiFiGANConfig, mel: MelConfig, name: str) -> HiFiGANConfig:
    """``base``'s architecture and recipe for another mel front end (rate, hop, bands).

    The generator keeps its stage count and widths, with :func:`upsample_plan` for the new hop;
    the training segment stays 32 frames, as in the paper (8192 samples at hop 256).
    """
    rates, kernels = upsample_plan(mel.hop_length, len(base.generator.upsample_rates))
    generator = dataclasses.replace(
        base.generator, upsample_rates=rates, upsample_kernel_sizes=kernels
    )
    train = dataclasses.replace(base.train, segment_size=32 * mel.hop_length)
    config = dataclasses.replace(base, name=name, mel=mel, generator=generator, train=train)
    config.validate(f"preset {name}")
    return config


# ---------------------------------------------------------------------- helpers
_AUTHORS_KEYS: dict[str, tuple[str, str]] = {
    "resblock": ("generator", "resblock"),
    "upsample_rates": ("generator", "upsample_rates"),
    "upsample_kernel_sizes": ("generator", "upsample_kernel_sizes"),
    "upsample_initial_channel": ("generator", "upsample_initial_channel"),
    "resblock_kernel_sizes": ("generator", "resblock_kernel_sizes"),
    "resblock_dilation_sizes": ("generator", "resblock_dilation_sizes"),
    "num_mels": ("mel", "n_mels"),
    "n_fft": ("mel", "n_fft"),
    "hop_size": ("mel", "hop_length"),
    "win_size": ("mel", "win_length"),
    "sampling_rate": ("mel", "sample_rate"),
    "fmin": ("mel", "fmin"),
    "fmax": ("mel", "fmax"),
    "fmax_for_loss": ("mel", "fmax_loss"),
    "segment_size": ("train", "segment_size"),
    "batch_size": ("train", "batch_size"),
    "learning_rate": ("train", "learning_rate"),
    "adam_b1": ("train", "adam_b1"),
    "adam_b2": ("train", "adam_b2"),
    "lr_decay": ("train", "lr_decay"),
    "seed": ("train", "seed"),
    "num_workers": ("train", "num_workers"),
}


# keys of a mel convention file that no model config has
_CONVENTION_ONLY_KEYS = ("compression", "normalization", "mel_scale", "filter_norm", "window")
# keys that every authors' config.json carries: without them it cannot describe a generator
_AUTHORS_REQUIRED = ("resblock", "upsample_rates", "upsample_kernel_sizes", "num_mels")


def _looks_flat(data: dict[str, Any]) -> bool:
    """Whether ``data`` is the authors' flat format: several of its keys are theirs."""
    return sum(key in _AUTHORS_KEYS for key in data) >= 2


def _authors_to_nested(data: dict[str, Any], source: str) -> dict[str, Any]:
    """Map the authors' flat config keys onto our sections (their other keys are ignored)."""
    missing = [key for key in _AUTHORS_REQUIRED if key not in data]
    if missing:
        raise ConfigError(
            f"looks like the authors' config format but lacks {', '.join(missing)}", source
        )
    out: dict[str, Any] = {"mel": {}, "generator": {}, "train": {}}
    for key, value in data.items():
        if key in _AUTHORS_KEYS:
            section, name = _AUTHORS_KEYS[key]
            out[section][name] = value
    resblock = data["resblock"]
    if isinstance(resblock, str) and resblock.strip() in ("1", "2"):
        # their files store the block type as a string
        out["generator"]["resblock"] = int(resblock)
    return out


# ---------------------------------------------------------------------- validation
def _finite(value: float) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _mel_problems(m: MelConfig) -> Iterator[str]:
    for key, problem in m.front_end_problems(fmax_loss=m.fmax_loss):
        yield f"mel.{key} {problem}"


def _generator_problems(g: GeneratorConfig, hop_length: int) -> Iterator[str]:
    if g.resblock not in (1, 2):
        yield f"generator.resblock must be 1 or 2, got {g.resblock}"
    lists = ("upsample_rates", "upsample_kernel_sizes", "resblock_kernel_sizes")
    for key in lists:
        values = getattr(g, key)
        if not values or any(v < 1 for v in values):
            yield f"generator.{key} must list positive integers, got {list(values)}"
            return
    if len(g.upsample_rates) != len(g.upsample_kernel_sizes):
        yield "upsample_rates and upsample_kernel_sizes must have the same length"
    if math.prod(g.upsample_rates) != hop_length:
        yield (
            f"the product of upsample_rates {list(g.upsample_rates)} is "
            f"{math.prod(g.upsample_rates)}, but hop_length is {hop_length}"
        )
    if g.upsample_paddings or g.upsample_output_paddings:
        yield from _explicit_padding_problems(g)
    else:
        for u, k in zip(g.upsample_rates, g.upsample_kernel_sizes):
            if k < u or (k - u) % 2:
                yield (
                    f"upsample kernel {k} for rate {u}: need kernel >= rate and kernel - rate even"
                )
    if g.conv_padding_mode not in ("zeros", "reflect"):
        yield f"generator.conv_padding_mode must be zeros or reflect, got {g.conv_padding_mode!r}"
    if g.inference_padding < 0:
        yield f"generator.inference_padding must be 0 or more, got {g.inference_padding}"
    channels = g.upsample_initial_channel
    stages = len(g.upsample_rates)
    if channels < 2**stages or channels % (2**stages):
        yield (
            f"generator.upsample_initial_channel ({channels}) must be a positive multiple of "
            f"2 ** {stages} (one halving per upsampling stage)"
        )
    if len(g.resblock_kernel_sizes) != len(g.resblock_dilation_sizes):
        yield "resblock_kernel_sizes and resblock_dilation_sizes must have the same length"
    if any(k % 2 == 0 for k in g.resblock_kernel_sizes):
        yield f"resblock kernel sizes must be odd, got {list(g.resblock_kernel_sizes)}"
    for dilations in g.resblock_dilation_sizes:
        if not isinstance(dilations, tuple) or not dilations or any(d < 1 for d in dilations):
            yield f"resblock dilations must be lists of positive integers, got {dilations!r}"


def _explicit_padding_problems(g: GeneratorConfig) -> Iterator[str]:
    """Explicit transposed-convolution paddings must give exactly ``rate`` samples per input."""
    n = len(g.upsample_rates)
    pads = g.upsample_paddings or tuple(
        (k - u) // 2 for u, k in zip(g.upsample_rates, g.upsample_kernel_sizes)
    )
    outs = g.upsample_output_paddings or (0,) * n
    if len(pads) != n or len(outs) != n:
        yield "upsample_paddings and upsample_output_paddings need one value per upsampling stage"
        return
    for u, k, p, o in zip(g.upsample_rates, g.upsample_kernel_sizes, pads, outs):
        if p < 0 or not 0 <= o < u or k - 2 * p + o != u:
            yield (
                f"upsample kernel {k}, rate {u}, padding {p}, output padding {o}: "
                "need kernel - 2 * padding + output padding = rate"
            )


def _discriminator_problems(d: DiscriminatorConfig) -> Iterator[str]:
    for key in ("periods", "mpd_channels", "msd_channels", "msd_groups"):
        values = getattr(d, key)
        if not values or any(v < 1 for v in values):
            yield f"discriminator.{key} must list positive integers, got {list(values)}"
            return
    if d.msd_scales < 1:
        yield f"discriminator.msd_scales must be positive, got {d.msd_scales}"
    if len(d.mpd_channels) != 5:
        yield "mpd_channels must list 5 channel counts"
    if len(d.msd_channels) != 7 or len(d.msd_groups) != 7:
        yield "msd_channels and msd_groups must list 7 values each"
        return
    for i, groups in enumerate(d.msd_groups):
        c_in = 1 if i == 0 else d.msd_channels[i - 1]
        if c_in % groups or d.msd_channels[i] % groups:
            yield f"msd layer {i}: channels {c_in}->{d.msd_channels[i]} not divisible by {groups}"


# train field -> the interval it must lie in: (low, high, low included, high included)
_TRAIN_RANGES: dict[str, tuple[float, float, bool, bool]] = {
    "learning_rate": (0.0, math.inf, False, False),
    "adam_b1": (0.0, 1.0, True, False),
    "adam_b2": (0.0, 1.0, True, False),
    "weight_decay": (0.0, math.inf, True, False),
    "lr_decay": (0.0, 1.0, False, True),
    "lambda_adv": (0.0, math.inf, True, False),
    "lambda_fm": (0.0, math.inf, True, False),
    "lambda_mel": (0.0, math.inf, True, False),
}


def _train_problems(t: TrainConfig, hop_length: int) -> Iterator[str]:
    for key, (low, high, low_in, high_in) in _TRAIN_RANGES.items():
        value = getattr(t, key)
        inside = (value >= low if low_in else value > low) and (
            value <= high if high_in else value < high
        )
        if not (_finite(value) and inside):
            interval = f"{'[' if low_in else '('}{low:g}, {high:g}{']' if high_in else ')'}"
            yield f"train.{key} must lie in {interval}, got {value}"
    for key in ("segment_size", "batch_size", "max_steps", "log_interval", "val_interval"):
        if getattr(t, key) < 1:
            yield f"train.{key} must be positive, got {getattr(t, key)}"
    if t.checkpoint_interval < 1:
        yield f"train.checkpoint_interval must be positive, got {t.checkpoint_interval}"
    if t.num_workers < 0:
        yield f"train.num_workers must be 0 or more, got {t.num_workers}"
    if t.segment_size >= 1 and t.segment_size % hop_length:
        yield f"segment_size ({t.segment_size}) must be a multiple of hop_length ({hop_length})"


# the largest value (of each element, for lists) that a field may take: far beyond any
# published model, small enough that no value can ask for more memory than a machine has
_UPPER: dict[str, int] = {
    "generator.upsample_initial_channel": 8192,
    "generator.upsample_kernel_sizes": 1024,
    "generator.resblock_kernel_sizes": 1023,
    "generator.resblock_dilation_sizes": 4096,
    "generator.inference_padding": 4096,
    "discriminator.periods": 1024,
    "discriminator.mpd_channels": 8192,
    "discriminator.msd_channels": 8192,
    "discriminator.msd_groups": 8192,
    "discriminator.msd_scales": 8,
    "train.segment_size": 1 << 20,
    "train.batch_size": 4096,
    "train.num_workers": 256,
}
# the generator's float32 weights may take at most this much (the paper's V1: 53 MiB)
MAX_GENERATOR_BYTES = 1 << 30


def generator_parameters(g: GeneratorConfig, n_mels: int) -> int:
    """The number of weights of the generator ``g`` describes (biases included), computed
    from the sizes alone."""
    ch = g.upsample_initial_channel
    total = n_mels * ch * 7 + ch
    for u_kernel in g.upsample_kernel_sizes:
        out = ch // 2
        total += ch * out * u_kernel + out
        for kernel, dilations in zip(g.resblock_kernel_sizes, g.resblock_dilation_sizes):
            convs = len(dilations) * (2 if g.resblock == 1 else 1)
            total += convs * (out * out * kernel + out)
        ch = out
    return total + ch * 7 + 1


def _size_problems(config: HiFiGANConfig) -> Iterator[str]:
    """Values above :data:`_UPPER`, and a generator too large for :data:`MAX_GENERATOR_BYTES`."""
    for name, high in _UPPER.items():
        section, key = name.split(".")
        value = getattr(getattr(config, section), key)
        values = (
            [v for d in value for v in (d if isinstance(d, tuple) else (d,))]
            if isinstance(value, tuple)
            else [value]
        )
        if any(v > high for v in values):
            shown = (
                [list(v) if isinstance(v, tuple) else v for v in value]
                if isinstance(value, tuple)
                else value
            )
            yield f"{name} ({shown}) must not exceed {high}"
            return
    weights = 4 * generator_parameters(config.generator, config.mel.n_mels)
    if weights > MAX_GENERATOR_BYTES:
        yield (
            f"generator: these sizes make {weights / 4 / 1e6:.0f} million weights "
            f"({weights / 2**30:.1f} GiB), over the {MAX_GENERATOR_BYTES >> 30} GiB limit "
            "(lower upsample_initial_channel or the kernel sizes)"
        )


def _problems(config: HiFiGANConfig) -> Iterator[str]:
    """Every problem of ``config`` past its mel section (checked first: these rely on it)."""
    hop_length = config.mel.hop_length
    found = [
        *_generator_problems(config.generator, hop_length),
        *_discriminator_problems(config.discriminator),
        *_train_problems(config.train, hop_length),
    ]
    yield from found
    if not found:  # the sizes are all positive integers
        yield from _size_problems(config)
