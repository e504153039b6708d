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
from typing import Any, TypeVar

from .errors import ConfigError

T = TypeVar("T")


@dataclass
class MelConfig:
    """Log-mel front end (the generator's input and the mel loss).

    The generator input uses ``fmax``; the training loss uses ``fmax_loss`` (None = Nyquist).
    """

    sample_rate: int = 22050
    n_fft: int = 1024
    hop_length: int = 256
    win_length: int = 1024
    n_mels: int = 80
    fmin: float = 0.0
    fmax: float | None = 8000.0
    fmax_loss: float | None = None


@dataclass
class GeneratorConfig:
    """Generator architecture (paper section 2.1 and appendix A)."""

    resblock: int = 1
    upsample_rates: tuple[int, ...] = (8, 8, 2, 2)
    upsample_kernel_sizes: tuple[int, ...] = (16, 16, 4, 4)
    upsample_initial_channel: int = 512
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))


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
        """Build from our nested format or the authors' flat ``config.json`` format."""
        if not isinstance(data, dict):
            raise ConfigError("expected a JSON object", source)
        if _looks_flat(data):
            data = _authors_to_nested(data, source)
        unknown = set(data) - {"name", "mel", "generator", "discriminator", "train"}
        if unknown:
            raise ConfigError(f"unknown config section(s): {', '.join(sorted(unknown))}", source)
        config = cls(
            name=str(data.get("name", "custom")),
            mel=_build(MelConfig, data.get("mel", {}), "mel", source),
            generator=_build(GeneratorConfig, data.get("generator", {}), "generator", source),
            discriminator=_build(
                DiscriminatorConfig, data.get("discriminator", {}), "discriminator", source
            ),
            train=_build(TrainConfig, data.get("train", {}), "train", source),
        )
        config.validate(source)
        return config

    @classmethod
    def from_file(cls, path: str | Path) -> HiFiGANConfig:
        """Read a JSON config file (ours or the authors')."""
        path = Path(path)
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise ConfigError("config file not found", path) from None
        except OSError as e:
            raise ConfigError(f"cannot read config file ({e.strerror})", path) from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"invalid JSON at line {e.lineno}: {e.msg}", path) from None
        config = cls.from_dict(data, source=str(path))
        if config.name == "custom":
            config.name = path.stem
        return config

    @classmethod
    def preset(cls, name: str) -> HiFiGANConfig:
        """Load a built-in preset by name (see :func:`preset_names`)."""
        if name not in preset_names():
            raise ConfigError(f"unknown preset {name!r} (available: {', '.join(preset_names())})")
        text = resources.files("hifigan.presets").joinpath(f"{name}.json").read_text()
        return cls.from_dict(json.loads(text), source=f"preset {name}")

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
        """Raise :class:`ConfigError` (naming ``source``) if any value is out of range or the
        values are inconsistent with each other."""
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


def upsample_plan(hop: int, stages: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Upsampling rates and kernel sizes for ``hop`` samples per frame in ``stages`` stages.

    The rule that gives the paper's (8, 8, 2, 2) for hop 256 in four stages and (8, 8, 4) in
    three: the earliest stages take the largest factors (at most 8 where the hop allows), every
    stage at least 2; each kernel is twice its rate, plus one for odd rates so that kernel
    minus rate stays even (the transposed convolution then has symmetric padding).
    """
    for cap in _STAGE_CAPS:
        rates = _split(hop, stages, cap)
        if rates is not None:
            kernels = tuple(2 * r + (r % 2) for r in rates)
            return rates, kernels
    raise ConfigError(f"hop {hop} cannot be split into {stages} upsampling stages of 2 to 16")


def _split(hop: int, stages: int, cap: int) -> tuple[int, ...] | None:
    """The greedy split of ``hop`` into ``stages`` factors in [2, cap], largest first."""
    if stages == 1:
        return (hop,) if 2 <= hop <= cap else None
    for factor in range(min(cap, hop), 1, -1):
        if hop % factor == 0:
            rest = _split(hop // factor, stages - 1, min(cap, factor))
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


def _build(cls: type[T], data: Any, section: str, source: str) -> T:
    """Instantiate a config dataclass from a dict, checking names and converting lists."""
    if not isinstance(data, dict):
        raise ConfigError(f"section {section!r} must be a JSON object", source)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = set(data) - set(fields)
    if unknown:
        raise ConfigError(
            f"unknown key(s) in {section!r}: {', '.join(sorted(unknown))} "
            f"(known: {', '.join(fields)})",
            source,
        )
    values = {}
    defaults = cls()
    for key, value in data.items():
        default = getattr(defaults, key)
        try:
            if value is None and "None" in str(fields[key].type):
                values[key] = None
                continue
            values[key] = _coerce(value, default)
        except (TypeError, ValueError, OverflowError):
            raise ConfigError(
                f"{section}.{key} = {value!r} has the wrong type "
                f"(expected something like {default!r})",
                source,
            ) from None
    return cls(**values)


def _coerce(value: Any, like: Any) -> Any:
    """Convert a JSON value to the type of the default ``like`` (lists become tuples)."""
    if isinstance(like, tuple):
        if not isinstance(value, (list, tuple)):
            raise TypeError
        inner = like[0] if like else None
        return tuple(_coerce(v, inner) if inner is not None else v for v in value)
    if isinstance(like, bool):
        if not isinstance(value, bool):
            raise TypeError
        return value
    if isinstance(like, int) and not isinstance(like, bool):
        if isinstance(value, bool) or float(value) != int(value):
            raise TypeError
        return int(value)
    if isinstance(like, float) or (like is None and isinstance(value, (int, float))):
        if isinstance(value, bool):
            raise TypeError
        return float(value)
    if like is None:
        return value
    if isinstance(like, str):
        return str(value)
    return value


# ---------------------------------------------------------------------- validation
def _finite(value: float) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _mel_problems(m: MelConfig) -> Iterator[str]:
    for key in ("sample_rate", "n_fft", "hop_length", "win_length", "n_mels"):
        if getattr(m, key) < 1:
            yield f"mel.{key} must be a positive integer, got {getattr(m, key)}"
            return
    if m.n_mels > m.n_fft // 2 + 1:
        yield f"mel.n_mels ({m.n_mels}) exceeds the {m.n_fft // 2 + 1} frequency bins of n_fft"
    if m.win_length > m.n_fft:
        yield f"win_length ({m.win_length}) must not exceed n_fft ({m.n_fft})"
    if (m.n_fft - m.hop_length) % 2 or m.hop_length > m.n_fft:
        yield f"n_fft - hop_length must be even and >= 0 (n_fft {m.n_fft}, hop {m.hop_length})"
    nyquist = m.sample_rate / 2
    if not (_finite(m.fmin) and 0 <= m.fmin < nyquist):
        yield f"mel.fmin ({m.fmin}) must lie in [0, sample_rate / 2) = [0, {nyquist})"
    for key in ("fmax", "fmax_loss"):
        value = getattr(m, key)
        if value is not None and not (_finite(value) and m.fmin < value <= nyquist):
            yield f"mel.{key} ({value}) must lie in (fmin, sample_rate / 2] = ({m.fmin}, {nyquist}]"


def _generator_problems(g: GeneratorConfig, hop: int) -> Iterator[str]:
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
    if math.prod(g.upsample_rates) != hop:
        yield (
            f"the product of upsample_rates {list(g.upsample_rates)} is "
            f"{math.prod(g.upsample_rates)}, but hop_length is {hop}"
        )
    for u, k in zip(g.upsample_rates, g.upsample_kernel_sizes):
        if k < u or (k - u) % 2:
            yield f"upsample kernel {k} for rate {u}: need kernel >= rate and kernel - rate even"
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


def _train_problems(t: TrainConfig, hop: int) -> Iterator[str]:
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
    if t.segment_size >= 1 and t.segment_size % hop:
        yield f"segment_size ({t.segment_size}) must be a multiple of hop_length ({hop})"


def _problems(config: HiFiGANConfig) -> Iterator[str]:
    """Every problem of ``config``, mel first (later checks rely on a sane mel section)."""
    mel = list(_mel_problems(config.mel))
    yield from mel
    if mel:
        return
    hop = config.mel.hop_length
    yield from _generator_problems(config.generator, hop)
    yield from _discriminator_problems(config.discriminator)
    yield from _train_problems(config.train, hop)
