"""A mel convention as data: how a toolkit turns audio into the mel its models read.

A :class:`Convention` names every choice that changes the numbers: the analysis (sample rate,
FFT size, hop, window, mel bands, frequency range, mel scale, filter normalisation), the framing
(centred frames or the authors' ``(n_fft - hop_length) / 2`` padding, reflect or zero padding), the
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
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..frontend import MelFrontEnd
from ..jsonconfig import check_fields, from_json, parse_json, read_json, show_json
from ..mel import FILTER_NORMS, MEL_SCALES, PAD_MODES, MelSpectrogram

if TYPE_CHECKING:
    from ..config import MelConfig

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


@dataclass(unsafe_hash=True)
class Convention(MelFrontEnd):
    """Every parameter of a mel-spectrogram convention (see the module docstring): the analysis
    fields of :class:`~hifigan.frontend.MelFrontEnd` (``fmax`` None means the Nyquist frequency)
    and those below. ``magnitude_eps`` is added to ``re^2 + im^2`` before the square root (the
    authors' 1e-9).

    A convention is read-only once built (:meth:`replace` makes a changed copy): the named ones
    are shared, and conventions are keys of the caches of filterbanks and conversions.
    """

    name: str = field(kw_only=True)
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

    def __setattr__(self, name: str, value: Any) -> None:
        # each field is set once, by __init__ (a frozen dataclass cannot extend MelFrontEnd,
        # which MelConfig extends mutable)
        if name in self.__dict__:
            raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}")

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
            **self.front_end(),
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
        """Plain JSON form (the layout :func:`load_convention` reads, the named files' order)."""
        fields = dataclasses.asdict(self)
        data = {key: fields.pop(key) for key in ("name", "description", "used_by")}
        data.update(fields, used_by=list(self.used_by))
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


def convention_from_dict(
    data: Any, source: str | Path = "mel convention", path: str = ""
) -> Convention:
    """Build and validate a :class:`Convention` from its JSON form (``path``: where it sits in a
    larger file, e.g. ``mel.convention`` in a model config)."""
    if not isinstance(data, dict):
        what = path or "a mel convention"
        raise ConfigError(f"{what} must be a JSON object, got {show_json(data)}", source)
    if any(key in data for key in ("generator", "upsample_rates", "resblock", "train")):
        raise ConfigError(
            "is a model config, not a mel convention: pass it as --config (its mel is the "
            "authors' convention at its values)",
            source,
        )
    convention = from_json(Convention, data, source, path)
    validate_convention(convention, source, path)
    return convention


def validate_convention(
    c: Convention, source: str | Path = "mel convention", path: str = ""
) -> None:
    """Raise :class:`ConfigError` naming ``source`` and the field (under ``path``) if a value
    is impossible: of the wrong type (a convention built in Python), out of range, or unknown."""
    check_fields(c, source, path)

    def fail(name: str, message: str) -> None:
        raise ConfigError(f"{path}.{name} {message}" if path else f"{name} {message}", source)

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
    for key, problem in c.front_end_problems(centred=c.center):
        fail(key, problem)
    if c.power not in (1.0, 2.0):
        fail("power", f"must be 1 (magnitude) or 2 (power), got {c.power}")
    if c.magnitude_eps < 0:
        fail("magnitude_eps", "must not be negative")
    comp = c.compression
    if comp.floor <= 0:
        fail("compression.floor", f"must be positive, got {comp.floor}")
    if comp.is_db and (comp.gain_db <= 0 or comp.min_level_db >= 0 or comp.max_abs_value <= 0):
        fail("compression", "needs gain_db > 0, min_level_db < 0 and max_abs_value > 0")


def convention_from_mel_config(mel: MelConfig) -> Convention:
    """The convention a model with this mel config reads: the authors' (``hifigan``) at the
    config's rate, FFT, bands and range; named after a shipped convention when it is one.
    A model read from another toolkit carries its own convention (``mel.convention``)."""
    if mel.convention is not None:
        return convention_from_dict(mel.convention, source="the model's mel convention")
    base = load_convention("hifigan")
    derived = base.replace(
        **mel.front_end(),
        name="hifigan-config",
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
