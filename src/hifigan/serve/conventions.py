"""Mels of other conventions over HTTP: ``?mel_convention=NAME|auto``, the per-model default
of ``serve --mel-convention``, and the statistics of ``serve --mel-stats``.

The conversion itself is the library's (:meth:`hifigan.Vocoder.prepare_mel`,
:meth:`hifigan.Vocoder.detect_convention`): a mel sent with ``?mel_convention=X`` gives the
audio of ``hifigan vocode --mel-convention X``. A client names conventions only: files are
read when the service starts, from its options, never from a request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hifigan import HiFiGANError, Vocoder
from hifigan.conventions import (
    Convention,
    MelConverter,
    MelStats,
    check_convention,
    convention_names,
    load_convention,
    load_stats,
    looks_normalized,
    same_values,
)
from hifigan.conventions.report import format_report, mel_report
from hifigan.inference.vocoder import AUTO

from .payload import RequestError, parse_mel

QUERY = "mel_convention"
_FLAG = re.compile(r"--mel-convention (\S+)")


@dataclass
class ReadMel:
    """A request's mel in the model's convention, and how it was read."""

    mel: np.ndarray
    """``(n_mels, frames)`` float32, the model's convention."""
    convention: str
    """The convention the body was read as (the model's own when nothing was converted)."""
    how: str
    """``request`` (``?mel_convention``), ``default`` (``serve --mel-convention``),
    ``detected`` (``auto``), ``model`` (the model's own) or ``audio`` (copy synthesis)."""
    warnings: list[str] = field(default_factory=list)


class MelConventions:
    """The conventions one service accepts: the named ones, those of its options' files, each
    served model's own, and ``auto``; a default per model, and statistics per convention."""

    def __init__(
        self,
        vocoders: dict[str, Vocoder],
        defaults: dict[str, Convention | str] | None = None,
        stats: dict[str, MelStats] | None = None,
        files: dict[str, Convention] | None = None,
    ) -> None:
        self.vocoders = vocoders
        """The served models by name."""
        self.defaults = defaults or {}
        """Model name -> its default convention (a :class:`Convention` or ``auto``)."""
        self.stats = stats or {}
        """Convention name -> the statistics that undo its normalisation."""
        self.files = files or {}
        """Conventions read from the options' JSON files, by name."""

    @classmethod
    def from_options(
        cls, conventions: list[str], stats: list[str], vocoders: dict[str, Vocoder]
    ) -> MelConventions:
        """``--mel-convention [MODEL=]NAME|FILE|auto`` and ``--mel-stats [CONVENTION=]FILE``
        values for the served models (``vocoders``, by name).

        Raises:
            HiFiGANError: one line naming the option value and the problem.
        """
        models = list(vocoders)
        defaults: dict[str, Convention | str] = {}
        files: dict[str, Convention] = {}
        for_all: Convention | str | None = None
        for spec in conventions:
            model, value = _split(spec)
            if model is not None and model not in models:
                raise HiFiGANError(
                    f"--mel-convention {spec}: no model {model!r} is served "
                    f"(served: {', '.join(models)})"
                )
            chosen: Convention | str = AUTO if value == AUTO else load_convention(value)
            if isinstance(chosen, Convention) and chosen.name not in convention_names():
                files[chosen.name] = chosen
            if model is None:
                if for_all is not None:
                    raise HiFiGANError(
                        f"--mel-convention {spec}: a default for every model is given twice "
                        "(MODEL=NAME sets one model's)"
                    )
                for_all = chosen
            elif model in defaults:
                raise HiFiGANError(f"--mel-convention {spec}: model {model!r} is given twice")
            else:
                defaults[model] = chosen
        if for_all is not None:
            for model in models:
                defaults.setdefault(model, for_all)
        service = cls(vocoders, defaults, {}, files)
        for spec in stats:
            service._add_stats(spec)
        return service

    @classmethod
    def check_options(cls, conventions: list[str], stats: list[str], models: list[str]) -> None:
        """The checks of :meth:`from_options` that need only the models' names, before any
        model is loaded (a statistics file for a model's own convention waits for the
        models: its convention is known only then).

        Raises:
            HiFiGANError: as :meth:`from_options`.
        """
        cls.from_options(conventions, stats, dict.fromkeys(models))  # type: ignore[arg-type]

    def _add_stats(self, spec: str) -> None:
        name, value = _split(spec)
        if name is None:
            normalised = {
                c.name
                for c in self.defaults.values()
                if isinstance(c, Convention) and c.normalization.kind != "none"
            }
            if len(normalised) != 1:
                why = "none" if not normalised else f"{', '.join(sorted(normalised))}"
                raise HiFiGANError(
                    f"--mel-stats {spec}: say which convention these statistics normalise, "
                    f"--mel-stats CONVENTION=FILE (normalised defaults of --mel-convention: {why})"
                )
            name = normalised.pop()
        convention = self.lookup(name)
        if convention is None and None in self.vocoders.values():
            return  # maybe a model's own, not loaded yet (check_options)
        if convention is None:
            raise HiFiGANError(f"--mel-stats {spec}: {self.unknown(name)}")
        if convention.normalization.kind == "none":
            raise HiFiGANError(
                f"--mel-stats {spec}: convention {name} has no normalisation: statistics do not "
                "apply"
            )
        if name in self.stats:
            raise HiFiGANError(f"--mel-stats {spec}: convention {name} has statistics already")
        loaded = load_stats(Path(value))
        if loaded.mean.shape[0] != convention.n_mels:
            raise HiFiGANError(
                f"--mel-stats {spec}: the stats hold {loaded.mean.shape[0]} bands, convention "
                f"{name} has {convention.n_mels}"
            )
        self.stats[name] = loaded

    # ------------------------------------------------------------------ names
    def lookup(self, name: str) -> Convention | None:
        """The convention a name stands for (None: no such name): one of the options' files,
        a named one, or a served model's own."""
        if name in self.files:
            return self.files[name]
        if name in convention_names():
            return load_convention(name)
        return next(
            (v.convention for v in self.vocoders.values() if v and v.convention.name == name),
            None,
        )

    def names(self) -> list[str]:
        """Every name ``?mel_convention`` accepts, ``auto`` first."""
        own = {v.convention.name for v in self.vocoders.values()}
        return [AUTO, *sorted({*convention_names(), *self.files, *own})]

    def unknown(self, name: str) -> str:
        return f"unknown mel convention {name!r} (known: {', '.join(self.names())})"

    def choose(self, requested: str | None, model: str) -> tuple[Convention | str | None, str]:
        """What ``?mel_convention=requested`` means for ``model``: a convention, ``auto`` or
        None (the model's own, unconverted), and where the choice came from.

        Raises:
            RequestError: 400 for a name the service does not know, with the known names.
        """
        if requested is None or requested == "":
            default = self.defaults.get(model)
            return (default, "default") if default is not None else (None, "model")
        if requested == AUTO:
            return AUTO, "request"
        own = self.vocoders[model].convention
        convention = own if requested == own.name else self.lookup(requested)
        if convention is None:
            raise RequestError(400, self.unknown(requested))
        return convention, "request"

    def read_body(
        self, body: bytes, requested: str | None, model: str, max_seconds: float
    ) -> ReadMel:
        """An ``.npy`` body sent to ``model`` with ``?mel_convention=requested`` -> its mel in
        the model's convention (see :meth:`choose` and :meth:`read`)."""
        choice, how = self.choose(requested, model)
        return self.read(body, self.vocoders[model], choice, how, max_seconds)

    def stream_converter(self, requested: str | None, model: str) -> MelConverter | None:
        """What converts a stream's frames sent to ``model`` with ``?mel_convention=requested``
        into the model's convention, piece by piece (None: they are the model's own).

        Raises:
            RequestError: for ``auto`` (detection needs the whole mel), an unknown name, or a
                normalised convention this service has no statistics for (the values of a
                few frames cannot tell whether they are normalised).
        """
        choice, how = self.choose(requested, model)
        if choice == AUTO:
            where = "this server's default" if how == "default" else "auto"
            raise RequestError(
                400,
                f"a stream cannot detect its mel convention ({where}: that needs the whole "
                f"mel): name it with ?{QUERY}=NAME (GET /v1/conventions lists them)",
            )
        own = self.vocoders[model].convention
        if choice is None or (same_values(choice, own) and choice.name not in self.stats):
            return None
        assert isinstance(choice, Convention)
        stats = self.stats.get(choice.name)
        if stats is None and choice.normalization.kind != "none" and not choice.normalization.stats:
            raise RequestError(
                400,
                f"convention {choice.name} is normalised, and this server has no statistics "
                f"to undo that (start it with --mel-stats {choice.name}=FILE)",
            )
        return MelConverter(choice, own, stats=stats)

    # ------------------------------------------------------------------ reading
    def read(
        self,
        body: bytes,
        vocoder: Vocoder,
        choice: Convention | str | None,
        how: str,
        max_seconds: float,
    ) -> ReadMel:
        """An ``.npy`` body -> the model's mel, converted from ``choice`` (see :meth:`choose`),
        with the warnings of ``hifigan mel-check`` for the convention it was read as.

        Raises:
            RequestError: 400 for a mel that does not fit the convention (bands, values, a
                normalised mel without statistics), 413 for one over ``max_seconds``.
        """
        own = vocoder.convention
        if choice is None:  # unchecked, as before conventions: no added latency
            mel = parse_mel(
                body, vocoder.n_mels, vocoder.hop_length, vocoder.sample_rate, max_seconds
            )
            return ReadMel(mel, own.name, how)
        rate, hop_length = vocoder.sample_rate, vocoder.hop_length
        if isinstance(choice, Convention):
            rate, hop_length = choice.sample_rate, choice.hop_length
        mel = parse_mel(body, None, hop_length, rate, max_seconds)
        try:
            if choice == AUTO:
                choice, how = vocoder.detect_convention(mel), "detected"
            assert isinstance(choice, Convention)
            stats = self.stats.get(choice.name)
            warnings = (
                [for_requests(w) for w in check_convention(mel, choice)] if stats is None else []
            )
            if stats is None and same_values(choice, own):
                return ReadMel(mel, choice.name, how, warnings)
            self._check_stats(mel, choice, stats)
            out = vocoder.prepare_mel(mel, choice, stats).numpy()
        except HiFiGANError as e:
            raise RequestError(400, for_requests(str(e))) from None
        seconds = out.shape[1] * vocoder.hop_length / vocoder.sample_rate
        if seconds > max_seconds:
            raise RequestError(
                413,
                f"mel of {mel.shape[1]} frames is {seconds:.1f} s of audio, over this server's "
                f"limit of {max_seconds:g} s",
            )
        return ReadMel(out, choice.name, how, warnings)

    def _check_stats(self, mel: np.ndarray, c: Convention, stats: MelStats | None) -> None:
        """Refuse a normalised mel that the service cannot denormalise, in the service's
        words (the library's name ``vocode``'s option)."""
        if stats is not None or c.normalization.kind == "none" or c.normalization.stats:
            return
        if mel.shape[0] == c.n_mels and looks_normalized(mel):
            raise RequestError(
                400,
                f"the mel looks normalised (per-band mean near 0, deviation near 1): convention "
                f"{c.name} needs its statistics, and this server has none for it (start it with "
                f"--mel-stats {c.name}=FILE)",
            )

    # ------------------------------------------------------------------ describing
    def describe(self) -> dict:
        """``GET /v1/conventions``: the names a request may give, and each model's default."""
        listed = []
        for name in self.names()[1:]:
            c = self.lookup(name)
            assert c is not None
            listed.append(
                {
                    "name": name,
                    "sample_rate": c.sample_rate,
                    "n_mels": c.n_mels,
                    "hop_length": c.hop_length,
                    "normalised": c.normalization.kind != "none",
                    "stats": name in self.stats or bool(c.normalization.stats),
                    "description": c.description,
                }
            )
        models = {}
        for model, v in self.vocoders.items():
            default = self.defaults.get(model)
            models[model] = {
                "own": v.convention.name,
                "default": None if default is None else _name(default),
            }
        return {"auto": AUTO, "conventions": listed, "models": models}

    def check(self, body: bytes, model: str, max_seconds: float) -> dict:
        """``POST /v1/mel-check``: ``hifigan mel-check``'s report on an ``.npy`` body for
        ``model``, with its text (``text``) and the ``mel_convention`` to vocode it with."""
        vocoder = self.vocoders[model]
        mel = parse_mel(body, None, vocoder.hop_length, vocoder.sample_rate, max_seconds)
        own = vocoder.convention
        try:
            report = mel_report(mel, own)
        except HiFiGANError as e:
            raise RequestError(400, str(e)) from None
        report["model"] = model
        chosen = report["convention"]
        report["mel_convention"] = None if chosen is None or report["fits_model"] else chosen
        report["text"] = format_report(report, f"{own.name} (model {model})")
        return report


def for_requests(message: str) -> str:
    """A library message in a client's words: the query parameter instead of ``vocode``'s
    option (``vocode it with ?mel_convention=coqui``)."""
    return _FLAG.sub(rf"?{QUERY}=\1", message)


def _name(choice: Convention | str) -> str:
    return choice.name if isinstance(choice, Convention) else choice


def _split(spec: str) -> tuple[str | None, str]:
    """``KEY=VALUE`` -> ``(KEY, VALUE)``; a value alone (or an existing file whose name holds
    ``=``) -> ``(None, spec)``."""
    if "=" in spec and not Path(spec).exists():
        key, value = spec.split("=", 1)
        return key, value
    return None, spec
