"""Plain data from other toolkits' files, read without running their code.

* :func:`load_yaml`: YAML with the tags these toolkits write (SpeechBrain's ``!new:``/``!ref``,
  PyYAML's ``!!python/tuple``) turned into plain values, and OmegaConf's ``${a.b}`` and
  SpeechBrain's ``<name>`` references resolved;
* :func:`load_restricted`: a torch checkpoint whose pickle holds configuration objects
  (OmegaConf's ``DictConfig`` in Lightning and NeMo files) besides tensors: those objects are
  rebuilt as inert stand-ins and turned into dicts; any other pickled object is refused.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import torch

from ..errors import CheckpointError

_REF = re.compile(r"<([A-Za-z0-9_.\[\]]+)>")
_INTERP = re.compile(r"\$\{([^}]+)\}")


# ---------------------------------------------------------------------- YAML
class _Tagged(dict):
    """A YAML node with a tag (``!new:speechbrain...Class``): its arguments and its tag."""

    def __init__(self, tag: str, value: Any) -> None:
        super().__init__(value if isinstance(value, dict) else {})
        self.tag = tag
        self.value = value


def _loader() -> type:
    import yaml

    class Loader(yaml.SafeLoader):
        """SafeLoader that reads any tag as plain data instead of refusing it."""

    def construct_tagged(loader: Any, suffix: str, node: Any) -> Any:
        tag = node.tag
        if isinstance(node, yaml.MappingNode):
            value: Any = loader.construct_mapping(node, deep=True)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_scalar(node)
        if tag == "!ref":
            return ("!ref", value)
        if tag.startswith("tag:yaml.org,2002:python/tuple"):
            return list(value)
        return _Tagged(tag, value)

    Loader.add_multi_constructor("!", construct_tagged)
    Loader.add_multi_constructor("tag:yaml.org,2002:python/", construct_tagged)
    return Loader


def load_yaml(path: Path) -> Any:
    """Read a YAML file as plain data (see the module docstring); one-line errors."""
    import yaml

    try:
        text = path.read_text()
    except OSError as e:
        raise CheckpointError(f"cannot read ({e.strerror or e})", path) from None
    try:
        data = yaml.load(text, Loader=_loader())  # a SafeLoader subclass
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise CheckpointError(f"invalid YAML{where}", path) from None
    return resolve_references(data)


def _lookup(root: Any, dotted: str) -> Any:
    node = root
    for part in dotted.replace("[", ".").replace("]", "").split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def resolve_references(data: Any, root: Any = None, depth: int = 0) -> Any:
    """Replace ``("!ref", "<name>")`` and ``"${a.b}"`` values by what they name (unknown or
    computed references become None)."""
    root = data if root is None else root
    if depth > 20:
        return None
    if isinstance(data, tuple) and len(data) == 2 and data[0] == "!ref":
        text = str(data[1]).strip()
        whole = _REF.fullmatch(text)
        if whole:
            return resolve_references(_lookup(root, whole.group(1)), root, depth + 1)
        return None  # an expression: not evaluated
    if isinstance(data, str):
        whole = _INTERP.fullmatch(data.strip())
        if whole:
            return resolve_references(_lookup(root, whole.group(1)), root, depth + 1)
        return data
    if isinstance(data, _Tagged):
        out = _Tagged(data.tag, {k: resolve_references(v, root, depth) for k, v in data.items()})
        return out
    if isinstance(data, dict):
        return {k: resolve_references(v, root, depth) for k, v in data.items()}
    if isinstance(data, list):
        return [resolve_references(v, root, depth) for v in data]
    return data


# ---------------------------------------------------------------------- restricted pickles
# pickled classes that only carry configuration or training bookkeeping (a callback's path, a
# metric's numpy scalar): rebuilt as inert stand-ins, whose values are dropped unless they are
# OmegaConf's containers and nodes
_CONFIG_CLASSES = re.compile(
    r"^(omegaconf\.(dictconfig\.DictConfig|listconfig\.ListConfig|base\.(Container)?Metadata"
    r"|nodes\.\w+Node)|typing\.Any|collections\.defaultdict|builtins\.(dict|list|int|float|str"
    r"|bool|object|tuple|set)|pathlib\.(Posix|Windows)?Path"
    r"|numpy\.(core|_core)\.multiarray\.scalar|numpy\.dtype|numpy\.dtypes\.\w+DType)$"
)


class _Inert:
    """Stand-in for a pickled configuration object: keeps its state, runs nothing."""

    qualname = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args

    def __setstate__(self, state: Any) -> None:
        self.state = state


class _InertDict(dict):
    """Stand-in for ``collections.defaultdict``: a dict (the default factory is dropped)."""

    def __init__(self, *args: Any) -> None:
        super().__init__()


def _stand_in(name: str) -> type:
    if name == "collections.defaultdict":
        return _InertDict
    return type(name.rsplit(".", 1)[1], (_Inert,), {"qualname": name})


def plain(value: Any) -> Any:
    """Stand-ins of OmegaConf containers and nodes -> dicts, lists and values."""
    if isinstance(value, _Inert):
        state = getattr(value, "state", None)
        if isinstance(state, tuple) and len(state) == 2:
            state = state[1] if state[0] is None else state[0]
        if not isinstance(state, dict):
            return None
        if value.qualname.endswith(("DictConfig", "ListConfig")):
            return plain(state.get("_content"))
        if value.qualname.startswith("omegaconf.nodes."):
            return plain(state.get("_val"))
        return None
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def load_restricted(source: Path | bytes, path: Path, what: str) -> dict[str, Any]:
    """A torch checkpoint whose pickle may hold configuration objects (see the module
    docstring), as plain data. Raises :class:`CheckpointError` naming the refused class."""
    buffer = io.BytesIO(source) if isinstance(source, bytes) else source
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(buffer)
    except Exception:
        raise CheckpointError(
            f"cannot read {what}: the file is corrupt or truncated", path
        ) from None
    refused = [n for n in names if not _CONFIG_CLASSES.match(n)]
    if refused:
        raise CheckpointError(
            f"refused: the tensors and configuration in this {what} are readable, but its "
            f"pickle also holds {refused[0]}"
            + (f" (and {len(refused) - 1} more)" if len(refused) > 1 else "")
            + ", an object whose loading could run code; nothing was loaded",
            path,
        )
    stand_ins = [(_stand_in(n), n) for n in names]
    if isinstance(buffer, io.BytesIO):
        buffer.seek(0)
    try:
        with torch.serialization.safe_globals(stand_ins):
            obj = torch.load(buffer, map_location="cpu", weights_only=True)
    except Exception:
        raise CheckpointError(
            f"cannot read {what}: the file is corrupt or truncated", path
        ) from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"expected a dict in the {what}, found {type(obj).__name__}", path)
    return {k: (v if k in ("state_dict",) else plain(v)) for k, v in obj.items()}
