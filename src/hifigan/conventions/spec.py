"""A mel convention as data: how a toolkit turns audio into the mel its models read.

A :class:`Convention` names every choice that changes the numbers: the analysis (sample rate,
FFT size, hop, window, mel bands, frequency range, mel scale, filter normalisation), the framing
(centred frames or the authors' ``(n_fft - hop) / 2`` padding, reflect or zero padding), the
magnitude power, the value compression (:class:`Compression`) and an optional normalisation with
a statistics file (:class:`Normalization`). The named conventions ship as JSON files in
``hifigan/conventions/named``; a user's JSON file in the same layout describes a new one.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ..config import MelConfig, json_number, mel_front_end_problems, parse_json, read_json
from ..errors import ConfigError
from ..mel import FILTER_NORMS, MEL_SCALES, PAD_MODES, MelSpectrogram

COMPRESSIONS = ("ln_clamp", "ln_add", "log10_clamp", "log10_add", "db", "db_normalized")
DB_KINDS = ("db", "db_normalized")
NORMALIZATIONS = ("none", "per_band_stats", "global_mvn")
WINDOWS = ("hann_periodic", "hann_symmetric")
# written beside mels made with a convention (hifigan mel), read by hifigan vocode
CONVENTION_FILE = "mel_convention.json"


@dataclass(frozen=True)
class Compression:
    """Linear mel ``x`` -> stored values.

    ``ln_clamp``: ``ln(max(x, floor))``; ``ln_add``: ``ln(x + floor)``; ``log10_clamp`` and
    ``log10_add`` likewise in base 10; ``db``: ``gain_db * log10(max(x, floor)) -
    ref_level_db``; ``db_normalized``: that dB value mapped from ``[min_level_db, 0]`` onto
    ``[-max_abs_value, max_abs_value]`` (``symmetric``) or ``[0, max_abs_value]``, clipped to
    that range when ``clip``. The dB fields are used by the dB kinds only.
    """

    kind: str = "ln_clamp"
    floor: float = 1e-5
    gain_db: float = 20.0
    ref_level_db: float = 20.0
    min_level_db: float = -100.0
    max_abs_value: float = 4.0
    symmetric: bool = True
    clip: bool = True

    @property
    def is_db(self) -> bool:
        return self.kind in DB_KINDS


@dataclass(frozen=True)
class Normalization:
    """Optional standardisation of the stored values with a statistics file.

    ``none``; ``per_band_stats``: ``(v - mean) / scale`` per band with ParallelWaveGAN's
    ``stats.h5`` (datasets ``mean`` and ``scale``, or a ``.npy`` of shape ``(2, n_mels)``);
    ``global_mvn``: the same with ESPnet's ``feats_stats.npz`` (``count``, ``sum``,
    ``sum_square``). A mel of such a convention is normalised only when its stats are given.
    ``stats``: the statistics file the mels were normalised with, when they were (a relative
    path in a JSON file is relative to that file's folder).
    """

    kind: str = "none"
    stats: str | None = None


@dataclass(frozen=True)
class Convention:
    """Every parameter of a mel-spectrogram convention (see the module docstring).

    ``fmax`` None means the Nyquist frequency. ``magnitude_eps`` is added to ``re^2 + im^2``
    before the square root (the authors' 1e-9).
    """

    name: str
    sample_rate: int = 22050
    n_fft: int = 1024
    hop_length: int = 256
    win_length: int = 1024
    n_mels: int = 80
    fmin: float = 0.0
    fmax: float | None = 8000.0
    mel_scale: str = "slaney"
    filter_norm: str = "slaney"
    window: str = "hann_periodic"
    center: bool = False
    pad_mode: str = "reflect"
    power: float = 1.0
    magnitude_eps: float = 0.0
    compression: Compression = field(default_factory=Compression)
    normalization: Normalization = field(default_factory=Normalization)
    description: str = ""
    used_by: tuple[str, ...] = ()

    # ------------------------------------------------------------------ derived values
    @property
    def fmax_hz(self) -> float:
        return self.sample_rate / 2 if self.fmax is None else float(self.fmax)

    @property
    def pad(self) -> int:
        """Samples of padding on each side before framing."""
        return self.n_fft // 2 if self.center else (self.n_fft - self.hop_length) // 2

    @property
    def frame_rate(self) -> float:
        """Frames per second."""
        return self.sample_rate / self.hop_length

    @property
    def time_offset(self) -> float:
        """Time of frame 0's centre in hops: 0 for centred frames, 1/2 for the authors'."""
        return (self.n_fft / 2 - self.pad) / self.hop_length

    def num_frames(self, num_samples: int) -> int:
        """Frames computed from ``num_samples`` samples."""
        return (num_samples + 2 * self.pad - self.n_fft) // self.hop_length + 1

    def analysis_key(self) -> tuple:
        """Everything that decides the linear mel (all but compression and normalisation)."""
        return (self.spectral_key(), self.hop_length, self.center, self.pad_mode)

    def spectral_key(self) -> tuple:
        """Everything that decides which frequencies each band holds, and how strongly."""
        return (
            self.sample_rate,
            self.n_fft,
            self.win_length,
            self.n_mels,
            float(self.fmin),
            self.fmax_hz,
            self.mel_scale,
            self.filter_norm,
            self.window,
            self.power,
        )

    def mel_spectrogram(self) -> MelSpectrogram:
        """The module that computes this convention's values (before any normalisation) from
        audio at :attr:`sample_rate`."""
        from .values import compress

        return MelSpectrogram(
            sample_rate=self.sample_rate,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            win_length=self.win_length,
            n_mels=self.n_mels,
            fmin=self.fmin,
            fmax=self.fmax_hz,
            mel_scale=self.mel_scale,
            filter_norm=self.filter_norm,
            periodic_window=self.window == "hann_periodic",
            center=self.center,
            pad_mode=self.pad_mode,
            power=self.power,
            magnitude_eps=self.magnitude_eps,
            compress=lambda x: compress(x, self.compression),
        )

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON form (the layout :func:`load_convention` reads)."""
        data = dataclasses.asdict(self)
        data["used_by"] = list(self.used_by)
        if not self.compression.is_db:
            data["compression"] = {"kind": self.compression.kind, "floor": self.compression.floor}
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def replace(self, **changes: Any) -> Convention:
        return dataclasses.replace(self, **changes)


# ---------------------------------------------------------------------- loading
def convention_names() -> list[str]:
    """The named conventions shipped with the package, sorted."""
    return list(_named_files())


@functools.lru_cache(maxsize=1)
def _named_files() -> tuple[str, ...]:
    folder = resources.files("hifigan.conventions").joinpath("named")
    return tuple(sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".json")))


@functools.cache
def _named(name: str) -> Convention:
    """A shipped convention, read once (conventions are immutable)."""
    folder = resources.files("hifigan.conventions").joinpath("named")
    source = f"mel convention {name}"
    return convention_from_dict(
        parse_json(folder.joinpath(f"{name}.json").read_text(), source), source
    )


def load_convention(name_or_path: str | Path | Convention) -> Convention:
    """A named convention (see :func:`convention_names`) or a user's JSON file.

    Raises :class:`~hifigan.errors.ConfigError` (one line naming the file and the field) when
    the file is unreadable or a value is wrong.
    """
    if isinstance(name_or_path, Convention):
        return name_or_path
    text_name = str(name_or_path)
    if not isinstance(name_or_path, Path) and text_name in _named_files():
        return _named(text_name)
    path = Path(text_name)
    if not path.exists():
        if path.suffix != ".json" and "/" not in text_name:
            raise ConfigError(
                f"unknown mel convention {text_name!r} (named: {', '.join(convention_names())}; "
                "or a JSON file)"
            )
        raise ConfigError("mel convention file not found", path)
    data = read_json(path, "mel convention file")
    if isinstance(data, dict) and "name" not in data:
        data = {**data, "name": path.stem}
    convention = convention_from_dict(data, source=str(path))
    stats = convention.normalization.stats
    if stats is not None and not Path(stats).is_absolute():
        resolved = str((path.parent / stats).resolve())
        convention = convention.replace(
            normalization=dataclasses.replace(convention.normalization, stats=resolved)
        )
    return convention


def convention_from_dict(data: Any, source: str = "mel convention") -> Convention:
    """Build and validate a :class:`Convention` from its JSON form."""
    if not isinstance(data, dict):
        raise ConfigError("a mel convention must be a JSON object", source)
    if any(key in data for key in ("generator", "upsample_rates", "resblock", "train")):
        raise ConfigError(
            "is a model config, not a mel convention: pass it as --config (its mel is the "
            "authors' convention at its values)",
            source,
        )
    values = _fields_from(Convention, data, "", source)
    values["compression"] = Compression(
        **_fields_from(Compression, data.get("compression", {}), "compression.", source)
    )
    values["normalization"] = Normalization(
        **_fields_from(Normalization, data.get("normalization", {}), "normalization.", source)
    )
    if "used_by" in values:
        values["used_by"] = tuple(values["used_by"])
    convention = Convention(**values)
    validate_convention(convention, source)
    return convention


def _fields_from(cls: type, data: Any, prefix: str, source: str) -> dict[str, Any]:
    """The values of ``data`` for ``cls``'s fields, type-checked (nested objects excluded)."""
    if not isinstance(data, dict):
        raise ConfigError(f"field '{prefix.rstrip('.')}' must be a JSON object", source)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown field '{prefix}{unknown[0]}' (known: {', '.join(fields)})", source
        )
    if cls is Convention and "name" not in data:
        raise ConfigError("field 'name' is missing", source)
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key in ("compression", "normalization") and cls is Convention:
            continue
        expected = _TYPES[key] if key in _TYPES else type(getattr(_DEFAULTS[cls], key))
        values[key] = _check_type(value, expected, f"{prefix}{key}", source)
    return values


def _check_type(value: Any, expected: Any, name: str, source: str) -> Any:
    """``value`` converted to ``expected`` (int, float, str, bool, "float|None", "list[str]");
    numbers go through :func:`hifigan.config.json_number` (finite, no booleans or strings)."""
    ok = True
    if expected in (int, float, "float|None") and value is not None:
        kind = int if expected is int else float
        try:
            return json_number(value, kind)
        except TypeError as e:
            if "finite" in str(e):
                raise ConfigError(f"field '{name}' {e}, got {value!r}", source) from None
            ok = False
    elif expected == "float|None":
        return None
    elif expected == "str|None":
        ok = value is None or isinstance(value, str)
    elif expected == "list[str]":
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    elif expected is bool:
        ok = isinstance(value, bool)
    elif expected is str:
        ok = isinstance(value, str)
    else:
        ok = False
    if not ok:
        label = {
            "float|None": "a number or null",
            "str|None": "a string or null",
            "list[str]": "a list of strings",
        }.get(expected, getattr(expected, "__name__", str(expected)))
        raise ConfigError(f"field '{name}' must be {label}, got {value!r}", source)
    return value


_TYPES: dict[str, Any] = {"fmax": "float|None", "used_by": "list[str]", "stats": "str|None"}
_DEFAULTS: dict[type, Any] = {
    Convention: Convention(name=""),
    Compression: Compression(),
    Normalization: Normalization(),
}


def validate_convention(c: Convention, source: str = "mel convention") -> None:
    """Raise :class:`ConfigError` naming ``source`` and the field if a value is impossible."""

    def fail(name: str, message: str) -> None:
        raise ConfigError(f"field '{name}' {message}", source)

    choices = {
        "mel_scale": MEL_SCALES,
        "filter_norm": FILTER_NORMS,
        "window": WINDOWS,
        "pad_mode": PAD_MODES,
    }
    for key, allowed in choices.items():
        if getattr(c, key) not in allowed:
            fail(key, f"must be one of {', '.join(allowed)}, got {getattr(c, key)!r}")
    if c.compression.kind not in COMPRESSIONS:
        fail("compression.kind", f"must be one of {', '.join(COMPRESSIONS)}")
    if c.normalization.kind not in NORMALIZATIONS:
        fail("normalization.kind", f"must be one of {', '.join(NORMALIZATIONS)}")
    if c.normalization.stats is not None and c.normalization.kind == "none":
        fail("normalization.stats", "needs a normalization kind other than none")
    if not c.name:
        fail("name", "must not be empty")
    sizes = ("sample_rate", "n_fft", "hop_length", "win_length", "n_mels")
    for key, problem in mel_front_end_problems(
        **{k: getattr(c, k) for k in sizes},
        fmin=c.fmin,
        fmax={"fmax": c.fmax},
        centred=c.center,
    ):
        fail(key, problem)
    for key in ("power", "magnitude_eps"):
        _finite_field(getattr(c, key), key, source)
    for f in dataclasses.fields(Compression):
        if f.type == "float":
            _finite_field(getattr(c.compression, f.name), f"compression.{f.name}", source)
    if c.power not in (1.0, 2.0):
        fail("power", f"must be 1 (magnitude) or 2 (power), got {c.power}")
    if c.magnitude_eps < 0:
        fail("magnitude_eps", "must not be negative")
    comp = c.compression
    if comp.floor <= 0:
        fail("compression.floor", f"must be positive, got {comp.floor}")
    if comp.is_db and (comp.gain_db <= 0 or comp.min_level_db >= 0 or comp.max_abs_value <= 0):
        fail("compression", "needs gain_db > 0, min_level_db < 0 and max_abs_value > 0")


def _finite_field(value: Any, name: str, source: str) -> None:
    """Refuse a non-finite number in a field built without :func:`_check_type` (a
    :class:`Convention` made in Python)."""
    try:
        json_number(value, float)
    except TypeError as e:
        raise ConfigError(f"field '{name}' {e}, got {value!r}", source) from None


def convention_from_mel_config(mel: MelConfig) -> Convention:
    """The convention a model with this mel config reads: the authors' (``hifigan``) at the
    config's rate, FFT, bands and range; named after a shipped convention when it is one.
    A model read from another toolkit carries its own convention (``mel.convention``)."""
    if mel.convention is not None:
        return convention_from_dict(mel.convention, source="the model's mel convention")
    base = load_convention("hifigan")
    derived = base.replace(
        name="hifigan-config",
        sample_rate=mel.sample_rate,
        n_fft=mel.n_fft,
        hop_length=mel.hop_length,
        win_length=mel.win_length,
        n_mels=mel.n_mels,
        fmin=float(mel.fmin),
        fmax=mel.sample_rate / 2 if mel.fmax is None else float(mel.fmax),
        description="the authors' mel at a model config's parameters",
        used_by=(),
    )
    for name in convention_names():
        named = load_convention(name)
        if same_values(named, derived):
            return named
    return derived


def same_values(a: Convention, b: Convention) -> bool:
    """Whether two conventions give identical numbers from the same audio."""
    return (
        a.analysis_key() == b.analysis_key()
        and a.magnitude_eps == b.magnitude_eps
        and a.compression == b.compression
        and a.normalization == b.normalization
    )
