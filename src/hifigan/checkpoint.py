"""Checkpoint files: the authors' formats and ours.

The authors' formats (read and written):

* generator file (``g_XXXXXXXX``, ``generator_v2``): ``{"generator": state_dict}``;
* discriminator/optimizer file (``do_XXXXXXXX``):
  ``{"mpd", "msd", "optim_g", "optim_d", "steps", "epoch"}``.

Their state dicts use the names of the old ``torch.nn.utils.weight_norm`` (``conv_pre.weight_g``,
``conv_pre.weight_v``); our modules use ``torch.nn.utils.parametrizations`` and
:func:`to_authors_keys` / :func:`from_authors_keys` translate between the two. Spectral
norm (first MSD sub-discriminator) has the same names in both (``weight_orig``, ``weight_u``,
``weight_v``).

Our checkpoint is a superset of the authors' generator file: ``{"format": "hifigan",
"version", "config", "generator", ...}`` with the state dicts in the authors' key names, so their
tools can read our ``generator`` entry, and ours carries its config. Everything is loaded with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .config import HiFiGANConfig
from .errors import CheckpointError, HiFiGANError
from .generator import Generator
from .io import save_torch, torch_load, warn

FORMAT = "hifigan"
_G_OURS = ".parametrizations.weight.original0"
_V_OURS = ".parametrizations.weight.original1"


def to_authors_keys(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Rename parametrized weight-norm keys to the authors' ``weight_g``/``weight_v``."""
    out = {}
    for key, value in state.items():
        if key.endswith(_G_OURS):
            key = key[: -len(_G_OURS)] + ".weight_g"
        elif key.endswith(_V_OURS):
            key = key[: -len(_V_OURS)] + ".weight_v"
        out[key] = value
    return out


def from_authors_keys(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Inverse of :func:`to_authors_keys`. ``weight_v`` is a weight-norm key only where a
    matching ``weight_g`` exists (spectral norm also has a ``weight_v``)."""
    out = {}
    for key, value in state.items():
        if key.endswith(".weight_g"):
            key = key[: -len(".weight_g")] + _G_OURS
        elif key.endswith(".weight_v") and key[: -len("v")] + "g" in state:
            key = key[: -len(".weight_v")] + _V_OURS
        out[key] = value
    return out


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint safely (tensors and plain containers only) and verify the digest
    of its weights when it carries one, with one-line errors for every failure."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError("checkpoint not found", path)
    if path.is_dir():
        raise CheckpointError("is a folder, not a checkpoint file", path)
    obj = torch_load(path, "checkpoint", CheckpointError)
    if isinstance(obj, torch.Tensor):
        raise CheckpointError(
            f"is a tensor of shape {tuple(obj.shape)} (a mel?), not a checkpoint", path
        )
    if not isinstance(obj, dict):
        raise CheckpointError(f"expected a dict of state dicts, found {type(obj).__name__}", path)
    verify_digest(obj, path)
    return obj


def weights_digest(state: dict[str, Any]) -> str:
    """sha256 over a state dict's names, dtypes, shapes and bytes, in name order."""
    h = hashlib.sha256()
    for key in sorted(state):
        value = state[key]
        if not isinstance(value, Tensor):
            continue
        t = value.detach().cpu().contiguous()
        h.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def verify_digest(checkpoint: dict[str, Any], path: str | Path) -> None:
    """Compare every state dict listed in ``checkpoint["digest"]`` with its stored sha256."""
    digests = checkpoint.get("digest")
    if not isinstance(digests, dict):
        return
    for name, expected in digests.items():
        state = checkpoint.get(name)
        if not isinstance(state, dict) or weights_digest(state) != expected:
            raise CheckpointError(
                f"checkpoint is corrupt: the {name} weights do not match their stored sha256", path
            )


def check_finite(state: dict[str, Any], path: str | Path, what: str = "generator") -> None:
    """Refuse weights with NaN or infinite values (a diverged run), which would vocode to
    silence or noise."""
    bad = [
        k
        for k, v in state.items()
        if isinstance(v, Tensor) and v.is_floating_point() and not torch.isfinite(v).all()
    ]
    if bad:
        raise CheckpointError(
            f"checkpoint contains non-finite {what} weights ({len(bad)} tensors, e.g. {bad[0]})",
            path,
        )


def generator_state(checkpoint: dict[str, Any], path: str | Path) -> dict[str, Tensor]:
    """The generator state dict (authors' key names) inside a loaded checkpoint."""
    state = checkpoint.get("generator")
    if state is None and any(str(k).startswith("conv_pre.") for k in checkpoint):
        state = checkpoint  # a bare state dict
    if not isinstance(state, dict):
        from .toolkits.readers import unsupported_hint

        hint = unsupported_hint(checkpoint)
        if hint is not None:
            raise CheckpointError(hint, path)
        keys = ", ".join(sorted(map(str, checkpoint))[:6])
        hint = " (this looks like a discriminator 'do_' file)" if "mpd" in checkpoint else ""
        raise CheckpointError(
            f"no generator weights in checkpoint (top-level keys: {keys}){hint}", path
        )
    odd = [str(k) for k, v in state.items() if not isinstance(v, Tensor)]
    if odd:
        raise CheckpointError(
            f"generator weights hold {len(odd)} entries that are not tensors (e.g. {odd[0]})",
            path,
        )
    check_finite(state, path)
    return state


def load_state_strict(
    module: nn.Module, state: dict[str, Tensor], path: str | Path, what: str
) -> None:
    """``module.load_state_dict(state)`` with a one-line description of any mismatch."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [
        f"{k} is {tuple(state[k].shape)} in the checkpoint"
        f" but {tuple(expected[k].shape)} in the model"
        for k in expected
        if k in state and tuple(state[k].shape) != tuple(expected[k].shape)
    ]
    problems = []
    if wrong:
        problems.append(f"{len(wrong)} tensors of another shape ({wrong[0]})")
    if missing:
        problems.append(f"{len(missing)} missing tensors (e.g. {missing[0]})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected tensors (e.g. {unexpected[0]})")
    if problems:
        raise CheckpointError(
            f"{what} weights do not match the config: " + "; ".join(problems), path
        )
    module.load_state_dict(state)


def load_generator_weights(
    generator: Generator, state: dict[str, Tensor], path: str | Path
) -> None:
    """Load a generator state dict in the authors' key names (with or without weight norm)."""
    if generator.has_weight_norm and not any(k.endswith(".weight_g") for k in state):
        generator.remove_weight_norm()  # a checkpoint saved with weight norm already folded
    load_state_strict(generator, from_authors_keys(state), path, "generator")


def resolve_config(
    path: str | Path, checkpoint: dict[str, Any], config: HiFiGANConfig | str | Path | None
) -> HiFiGANConfig:
    """The config for a checkpoint: the one given, else the one it carries, else
    ``config.json`` beside it (the authors' layout)."""
    path = Path(path)
    if isinstance(config, HiFiGANConfig):
        return config
    if config is not None:
        return HiFiGANConfig.load(config)
    if isinstance(checkpoint.get("config"), dict):
        return HiFiGANConfig.from_dict(checkpoint["config"], source=f"{path} (embedded config)")
    beside = path.parent / "config.json"
    if beside.exists():
        return HiFiGANConfig.from_file(beside)
    raise CheckpointError(
        "no config: the checkpoint carries none and there is no config.json beside it; "
        "pass one (--config v1|v2|v3|PATH)",
        path,
    )


def unverified_note(checkpoint: dict[str, Any], path: str | Path) -> str | None:
    """Why the generator weights of a loaded checkpoint were not verified (it carries no
    digest of them), or None when :func:`read_checkpoint` verified them."""
    digests = checkpoint.get("digest")
    if isinstance(digests, dict) and "generator" in digests:
        return None
    if checkpoint.get("format") == FORMAT:
        version = checkpoint.get("version", "an older version")
        return (
            f"{path}: this checkpoint (written by hifigan {version}) carries no digest of its "
            "weights; loaded unverified"
        )
    return (
        f"{path}: the authors' checkpoint format carries no digest of its weights; "
        "loaded unverified"
    )


def read_generator_file(
    path: str | Path, config: HiFiGANConfig | str | Path | None = None
) -> tuple[dict[str, Tensor], HiFiGANConfig, str | None, dict[str, Any]]:
    """``(generator state in the authors' names, config, toolkit, checkpoint)`` of any
    supported file: ours, the authors', or another toolkit's (``toolkit`` names it, see
    :mod:`hifigan.toolkits`; None otherwise). A toolkit's file gets the config built from the
    toolkit's own config unless ``config`` is given."""
    from .toolkits import is_tar, read_model_file

    path = Path(path)
    checkpoint: dict[str, Any] | None
    try:
        checkpoint = read_checkpoint(path)
    except CheckpointError as e:
        # torch cannot read a .nemo archive (a tar) nor, as plain data, the pickled
        # configuration objects of a Lightning checkpoint: the toolkit readers can
        pickled = "holds Python objects" in str(e)
        if not path.is_file() or not (pickled or ("truncated" in str(e) and is_tar(path))):
            raise
        checkpoint = None
        model = read_model_file(path, None)
    else:
        model = read_model_file(path, checkpoint)
    if model is not None:
        check_finite(model.state, path)
        cfg = model.config if config is None else resolve_config(path, {}, config)
        return model.state, cfg, model.toolkit, checkpoint or {}
    assert checkpoint is not None
    state = generator_state(checkpoint, path)
    return state, resolve_config(path, checkpoint, config), None, checkpoint


def load_generator(
    path: str | Path,
    config: HiFiGANConfig | str | Path | None = None,
    *,
    warn_unverified: bool = False,
) -> tuple[Generator, HiFiGANConfig]:
    """Read a generator from any supported checkpoint (ours, the authors', or another
    toolkit's: :func:`read_generator_file`). Returns ``(generator, config)``; the generator
    keeps weight norm when the file has it. With ``warn_unverified``, a successful load of
    weights that carry no digest emits a :class:`~hifigan.io.HiFiGANWarning`
    (:func:`unverified_note`)."""
    from .toolkits import TOOLKITS

    state, cfg, toolkit, checkpoint = read_generator_file(path, config)
    generator = Generator.from_config(cfg)
    load_generator_weights(generator, state, path)
    if toolkit is not None:
        note = (
            f"{path}: {TOOLKITS[toolkit]} checkpoints carry no digest of their weights; "
            "loaded unverified"
        )
    else:
        note = unverified_note(checkpoint, path)
    note = note if warn_unverified else None
    if note is not None:
        warn(note)
    return generator, cfg


def save_checkpoint(
    path: str | Path, config: HiFiGANConfig, generator: Generator, **extra: Any
) -> None:
    """Write our checkpoint format atomically: config, version, generator and any ``extra``
    entries (modules are stored as state dicts in the authors' key names)."""
    from . import __version__

    obj: dict[str, Any] = {
        "format": FORMAT,
        "version": __version__,
        "config": config.to_dict(),
        "generator": to_authors_keys(generator.state_dict()),
    }
    digest = {"generator": weights_digest(obj["generator"])}
    for key, value in extra.items():
        if isinstance(value, nn.Module):
            obj[key] = to_authors_keys(value.state_dict())
            digest[key] = weights_digest(obj[key])
        else:
            obj[key] = value
    obj["digest"] = digest
    save_torch(obj, path)


def export_authors_generator(generator: Generator, path: str | Path) -> None:
    """Write the authors' generator file ``{"generator": state_dict}``."""
    save_torch({"generator": to_authors_keys(generator.state_dict())}, path)


def export_authors_discriminators(
    path: str | Path,
    *,
    mpd: nn.Module,
    msd: nn.Module,
    optim_g: dict[str, Any],
    optim_d: dict[str, Any],
    steps: int,
    epoch: int,
) -> None:
    """Write the authors' ``do_`` file. The optimizer state dicts must come from optimizers
    built in the authors' parameter order: generator parameters for ``optim_g``, and
    ``msd`` then ``mpd`` parameters for ``optim_d``."""
    save_torch(
        {
            "mpd": to_authors_keys(mpd.state_dict()),
            "msd": to_authors_keys(msd.state_dict()),
            "optim_g": optim_g,
            "optim_d": optim_d,
            "steps": steps,
            "epoch": epoch,
        },
        path,
    )


__all__ = [
    "CheckpointError",
    "HiFiGANError",
    "export_authors_discriminators",
    "export_authors_generator",
    "from_authors_keys",
    "generator_state",
    "load_generator",
    "load_generator_weights",
    "load_state_strict",
    "read_checkpoint",
    "read_generator_file",
    "resolve_config",
    "save_checkpoint",
    "to_authors_keys",
    "unverified_note",
]
