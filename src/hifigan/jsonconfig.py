"""JSON files -> typed dataclasses, for model configs and mel conventions alike.

:func:`read_json` and :func:`parse_json` turn a file or text into Python values;
:func:`from_json` builds a dataclass from them, checking every value against the field's
annotation (``int``, ``float``, ``bool``, ``str``, ``X | None``, ``tuple[X, ...]``, ``dict``, a
nested dataclass). Every failure is one :class:`~hifigan.errors.ConfigError` line that names
the file and the field's path, e.g. ``config.json: mel.hop_length must be an integer, got
"256"``. :func:`check_fields` applies the same checks to a dataclass built in Python.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from .errors import ConfigError

T = TypeVar("T")

# a config or convention file is a few kilobytes; anything far larger is not one
MAX_JSON_BYTES = 16 << 20


# ---------------------------------------------------------------------- reading
class _JSONConstant(str):
    """A ``NaN``, ``Infinity`` or ``-Infinity`` literal met while parsing (Python's json
    accepts them; JSON does not), refused once the field that holds it is known."""


def parse_json(text: str, source: str) -> Any:
    """JSON text -> Python values; NaN and Infinity literals are refused naming their field.

    Raises:
        ConfigError: naming ``source``, the line of a syntax error or the field of a literal.
    """
    try:
        # a byte-order mark, as Windows editors save UTF-8, is not part of the JSON text
        data = json.loads(text.removeprefix("\ufeff"), parse_constant=_JSONConstant)
    except json.JSONDecodeError as e:
        raise ConfigError(f"invalid JSON at line {e.lineno}: {e.msg}", source) from None
    except RecursionError:
        raise ConfigError("invalid JSON: nested too deeply", source) from None
    found = _find_constant(data, "")
    if found is not None:
        where, literal = found
        raise ConfigError(
            f"{where} must be a finite number, got {literal} (NaN and Infinity are not JSON)",
            source,
        )
    return data


def _find_constant(data: Any, where: str) -> tuple[str, str] | None:
    """The first ``(field path, literal)`` of a :class:`_JSONConstant` inside ``data``."""
    if isinstance(data, _JSONConstant):
        return where or "the top-level value", str(data)
    if isinstance(data, dict):
        items = ((_join(where, str(k)), v) for k, v in data.items())
    elif isinstance(data, list):
        items = ((f"{where}[{i}]", v) for i, v in enumerate(data))
    else:
        return None
    for name, value in items:
        found = _find_constant(value, name)
        if found is not None:
            return found
    return None


def read_json(path: Path, what: str) -> Any:
    """Read and parse the JSON file ``path`` (a ``what``: "config file", ...), each failure as
    one :class:`ConfigError` line naming the file: missing, a folder, too large, not text,
    invalid JSON, a NaN or Infinity literal."""
    try:
        if path.is_dir():
            raise ConfigError(f"is a folder, not a {what}", path)
        size = path.stat().st_size
        if size > MAX_JSON_BYTES:
            raise ConfigError(
                f"is {size / 2**20:.0f} MiB, far larger than any {what} "
                f"(at most {MAX_JSON_BYTES >> 20} MiB read)",
                path,
            )
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{what} not found", path) from None
    except OSError as e:
        raise ConfigError(f"cannot read {what} ({e.strerror or e})", path) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        from .io import describe_file

        kind = describe_file(path) or "a binary file"
        raise ConfigError(f"is {kind}, not a {what} (JSON text)", path) from None
    return parse_json(text, str(path))


def json_number(value: Any, kind: type) -> int | float:
    """``value`` as an ``int`` or ``float`` field (``kind``), or :class:`TypeError`.

    Booleans and strings are not numbers; an int field takes integral floats (``1024.0``);
    NaN and infinities are refused (values that reach us as Python objects, e.g. a config
    inside a checkpoint, may hold them).
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"must be {'an integer' if kind is int else 'a number'}")
    if not math.isfinite(value):
        raise TypeError("must be a finite number")
    if kind is int:
        if value != int(value):
            raise TypeError("must be an integer")
        return int(value)
    return float(value)


# ---------------------------------------------------------------------- typed fields
class _Wrong(Exception):
    """``value`` at field ``path`` breaks its annotation: ``problem`` reads after the path."""

    def __init__(self, path: str, problem: str, value: Any) -> None:
        super().__init__(path, problem, value)
        self.path, self.problem, self.value = path, problem, value


def from_json(cls: type[T], data: Any, source: str | Path, path: str = "") -> T:
    """An instance of the dataclass ``cls`` from the JSON object ``data``.

    Every key must be a field of ``cls`` and every value must fit its annotation (lists become
    tuples, nested objects nested dataclasses); fields left out take their defaults, and fields
    without one are required. ``path`` prefixes the field names in messages (``"mel"`` for a
    section of a larger file).

    Raises:
        ConfigError: one line naming ``source`` and the field's path.
    """
    try:
        return _build(cls, data, path)
    except _Wrong as e:
        message = f"{e.path} {e.problem}" if e.path else e.problem
        if not isinstance(e.value, _Nothing):
            message += f", got {show_json(e.value)}"
        raise ConfigError(message, source) from None


def check_fields(obj: Any, source: str | Path, path: str = "") -> None:
    """Hold the dataclass instance ``obj`` (built in Python, e.g. with ``dataclasses.replace``)
    to the checks of :func:`from_json`: a NaN, a string or a boolean where a number belongs."""
    from_json(type(obj), _fields_of(obj), source, path)


def _fields_of(obj: Any) -> dict[str, Any]:
    """A dataclass instance's values by field name, nested dataclasses as dicts in turn."""
    return {
        f.name: _fields_of(v) if dataclasses.is_dataclass(v) else v
        for f in dataclasses.fields(obj)
        for v in (getattr(obj, f.name),)
    }


def _build(cls: type[T], data: Any, path: str) -> T:
    """``cls`` from the object ``data`` at ``path``, or :class:`_Wrong`."""
    if not isinstance(data, dict):
        raise _Wrong(path, "must be a JSON object", data)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = [str(key) for key in data if key not in fields]
    if unknown:
        raise _Wrong("", _unknown(unknown, list(fields), path), _NOTHING)
    hints = typing.get_type_hints(cls)
    values = {key: _convert(value, hints[key], _join(path, key)) for key, value in data.items()}
    for name, f in fields.items():
        needed = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if needed and name not in values:
            raise _Wrong(_join(path, name), "is missing", _NOTHING)
    return cls(**values)


def _convert(value: Any, tp: Any, path: str) -> Any:
    """``value`` as the annotation ``tp`` asks, or :class:`_Wrong`."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) != 1:
            raise TypeError(f"{path}: only X | None unions can be JSON fields, not {tp!r}")
        try:
            return _convert(value, inner[0], path)
        except _Wrong as e:
            if e.path == path and "finite" not in e.problem:
                raise _Wrong(path, f"must be {_label(tp)}", value) from None
            raise
    if tp is Any:
        return value
    if origin is tuple or tp is tuple:
        if not isinstance(value, (list, tuple)):
            raise _Wrong(path, f"must be {_label(tp)}", value)
        if not args:
            return tuple(value)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0], f"{path}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise _Wrong(path, f"must be {_label(tp)}", value)
        return tuple(_convert(v, a, f"{path}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise _Wrong(path, "must be a JSON object", value)
        return value
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, path)
    if tp in (int, float):
        try:
            return json_number(value, tp)
        except TypeError as e:
            raise _Wrong(path, str(e), value) from None
    if tp in (bool, str):
        if not isinstance(value, tp):
            raise _Wrong(path, f"must be {_label(tp)}", value)
        return value
    raise TypeError(f"{path}: annotation {tp!r} is not one a JSON field can have")


_LABELS = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
_PLURALS = {int: "integers", float: "numbers", bool: "booleans", str: "strings"}


def _label(tp: Any, plural: bool = False) -> str:
    """What a value of annotation ``tp`` looks like in JSON: ``an integer``, ``a list of
    numbers``, ``a string or null``..."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        names = [_label(a, plural) for a in args if a is not type(None)]
        return " or ".join(names) + (" or null" if type(None) in args else "")
    if origin is tuple or tp is tuple:
        inner = args[0] if args and (len(args) == 1 or args[1] is Ellipsis) else Any
        of = "values" if inner is Any else _label(inner, plural=True)
        return f"lists of {of}" if plural else f"a list of {of}"
    if tp in _LABELS:
        return _PLURALS[tp] if plural else _LABELS[tp]
    return "JSON objects" if plural else "a JSON object"


# ---------------------------------------------------------------------- messages
class _Nothing:
    """Stands for "no value to show" in a :class:`_Wrong` (an unknown or a missing field)."""


_NOTHING = _Nothing()


def _join(path: str, key: str) -> str:
    """The path of field ``key`` inside ``path`` (``mel`` + ``n_fft``: ``mel.n_fft``)."""
    return f"{path}.{key}" if path else key


def _unknown(unknown: list[str], known: list[str], path: str) -> str:
    """The problem of keys that are no field: a close match named, else the known fields."""
    names = ", ".join(_join(path, key) for key in unknown)
    if len(unknown) == 1:
        key = unknown[0]
        # a misspelling, or a shortened name (hop for hop_length)
        close = difflib.get_close_matches(key, known, n=1) or [
            name for name in known if name.startswith(key)
        ]
        if len(close) == 1:
            return f"unknown field {names} (did you mean {close[0]}?)"
    fields = "fields" if len(unknown) > 1 else "field"
    return f"unknown {fields} {names} (known: {', '.join(known)})"


def show_json(value: Any, limit: int = 60) -> str:
    """``value`` as JSON writes it (``"256"``, ``true``, ``null``, ``NaN``), shortened."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
