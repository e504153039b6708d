"""Optional packages: the one way to check for them and to say which extra installs them.

Every feature that needs a package outside the base dependencies checks for it here, before
importing it, so that a missing package is reported the same way everywhere: one line naming
the feature, the extra and its install command (``pip install 'hifigan[serve]'``). Packages
are found without importing them (some would import torchaudio or librosa on import).

>>> require("serve", "starlette", "uvicorn", purpose="hifigan serve")  # or MissingExtraError
>>> if available("matplotlib"): ...  # a plot is drawn only where the extra is installed
"""

from __future__ import annotations

import importlib.util
from importlib.machinery import ModuleSpec
from pathlib import Path

from .errors import HiFiGANError


class MissingExtraError(HiFiGANError):
    """A feature's optional packages are not installed."""


def install_command(extra: str) -> str:
    """The command that installs an extra: ``pip install 'hifigan[EXTRA]'``."""
    return f"pip install 'hifigan[{extra}]'"


def find(module: str) -> ModuleSpec | None:
    """Where the top-level or dotted ``module`` would be imported from, without importing it
    (a dotted name imports its parents); None when it is not installed."""
    try:
        return importlib.util.find_spec(module)
    except (ImportError, ValueError):  # a parent that is absent, or a broken module entry
        return None


def available(module: str) -> bool:
    """Whether ``module`` is installed."""
    return find(module) is not None


def package_dir(package: str) -> Path | None:
    """The folder of an installed package, found without importing it; None if absent (or a
    single-file module)."""
    spec = find(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def unavailable(extra: str, *modules: str, purpose: str) -> str | None:
    """Why ``purpose`` cannot run here, in one line naming ``extra``; None when every one of
    ``modules`` is installed."""
    missing = [m for m in modules if not available(m)]
    if not missing:
        return None
    verb = "is" if len(missing) == 1 else "are"
    return (
        f"{purpose} needs the {extra} extra: {install_command(extra)} "
        f"({' and '.join(missing)} {verb} not installed)"
    )


def require(
    extra: str,
    *modules: str,
    purpose: str,
    error: type[HiFiGANError] = MissingExtraError,
    path: str | Path | None = None,
) -> None:
    """Raise ``error`` (about ``path`` if given) unless every one of ``modules`` is installed.

    Args:
        extra: the extra that installs them, e.g. ``"serve"``.
        modules: import names, e.g. ``"starlette", "uvicorn"``.
        purpose: what needs them, as the message starts: ``"hifigan serve"``.
    """
    reason = unavailable(extra, *modules, purpose=purpose)
    if reason is not None:
        raise error(reason, path) if path is not None else error(reason)


__all__ = [
    "MissingExtraError",
    "available",
    "find",
    "install_command",
    "package_dir",
    "require",
    "unavailable",
]
