"""The one rule for the files a command writes: nothing the user already has is replaced
unless they ask for it (``--overwrite``), and an input is never replaced at all.

Every writing command builds one :class:`OutputPlan` for its run, tells it the files it reads,
and claims each path it will write before it writes anything (paths known only later are
claimed when they become known, still before anything replaces them). A claim is refused,
with a one-line :class:`OutputError`, when the path

* is one of the inputs: the same path, a symbolic link to it, or a hard link of it (same
  device and inode), even with ``--overwrite``;
* would be written for two different inputs (``a/x.wav`` and ``b/x.wav`` into one folder);
* is a folder where a file goes, or lies below a file where a folder goes;
* already exists and was not claimed earlier in this run, unless ``--overwrite`` was given.

:meth:`OutputPlan.claim_all` checks a whole batch and records nothing when it refuses, so a
refused plan writes nothing. The writes themselves stay atomic (:func:`hifigan.io.atomic_path`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from .errors import HiFiGANError
from .io import atomic_path

#: the one option name, in every command, that lets an output replace an existing file
OVERWRITE_FLAG = "--overwrite"

Output = str | Path | tuple[str | Path, str | Path | None]


class OutputError(HiFiGANError):
    """An output that would replace a file or folder the user has."""


def _absolute(path: Path) -> Path:
    """``path`` absolute with its symbolic links resolved (as far as they exist)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a link loop: compare the spelled path
        return Path(os.path.abspath(path))


def _identity(path: Path) -> tuple[int, int] | None:
    """``(st_dev, st_ino)`` of the file ``path`` leads to (links followed), None if none."""
    try:
        st = path.stat()
    except (OSError, ValueError):
        return None
    return (st.st_dev, st.st_ino)


def _exists(path: Path) -> bool:
    """True for anything at ``path``, a dangling symbolic link included."""
    return os.path.lexists(path)


class OutputPlan:
    """The outputs of one run of a command, checked against the rule above.

    Args:
        overwrite: the user passed ``--overwrite``: an existing file that is not an input
            may be replaced.
        inputs: the files the run reads (more with :meth:`add_inputs`).
        flag: the option named in refusals.
    """

    def __init__(
        self,
        *,
        overwrite: bool = False,
        inputs: Iterable[str | Path] = (),
        flag: str = OVERWRITE_FLAG,
    ) -> None:
        self.overwrite = overwrite
        self.flag = flag
        self._inputs: dict[object, Path] = {}
        # absolute output path -> the input it is written for (None: not for one input)
        self._claims: dict[Path, Path | None] = {}
        self._folders: set[Path] = set()
        self.add_inputs(inputs)

    # ------------------------------------------------------------------ inputs
    def add_inputs(self, paths: Iterable[str | Path | None]) -> None:
        """Record files the run reads; they are never replaced. Missing ones are ignored."""
        for item in paths:
            if item is None:
                continue
            path = Path(item)
            if not _exists(path):
                continue
            self._inputs.setdefault(_absolute(path), path)
            ident = _identity(path)
            if ident is not None:
                self._inputs.setdefault(ident, path)

    def input_behind(self, path: str | Path) -> Path | None:
        """The input that ``path`` is (by path, symbolic link or hard link), or None."""
        path = Path(path)
        found = self._inputs.get(_absolute(path))
        if found is None:
            ident = _identity(path)
            found = None if ident is None else self._inputs.get(ident)
        return found

    # ------------------------------------------------------------------ claims
    def claim_folder(self, folder: str | Path) -> Path:
        """Claim ``folder`` as a folder that outputs go into (it may exist, as a folder)."""
        folder = Path(folder)
        problem = self._folder_problem(folder)
        if problem is not None:
            raise OutputError(problem)
        self._folders.add(_absolute(folder))
        return folder

    def claim(self, path: str | Path, source: str | Path | None = None) -> Path:
        """Claim one output file (written for input ``source``, if any); returns ``path``."""
        self.claim_all([(path, source)])
        return Path(path)

    def claim_all(self, outputs: Iterable[Output], *, holds: str | None = None) -> None:
        """Claim output files, each a path or ``(path, source input)``, all or none.

        Refuses (:class:`OutputError`) before recording anything: an input first, then two
        inputs for one output, a folder in a file's place (or a file in a folder's), and last
        existing files (all of them counted in one line). ``holds`` describes what a folder
        of existing outputs holds (``"an earlier demo"``), for that last message.
        """
        pending: dict[Path, tuple[Path, Path | None]] = {}
        collision: str | None = None
        for item in outputs:
            path, source = item if isinstance(item, tuple) else (item, None)
            path = Path(path)
            source = None if source is None else Path(source)
            key = _absolute(path)
            collision = collision or self._collision(key, path, source, pending)
            if key not in pending or pending[key][1] is None:
                pending[key] = (path, source)
        # written (or to be written) by this run already: nothing more to check
        new = [path for key, (path, _) in pending.items() if key not in self._claims]
        for path in new:
            found = self.input_behind(path)
            if found is not None:
                raise OutputError(self._input_message(path, found))
        if collision is not None:
            raise OutputError(collision)
        existing: list[Path] = []
        for path in new:
            problem = self._folder_problem(path.parent)
            if problem is not None:
                raise OutputError(problem)
            if path.is_dir() and not path.is_symlink():
                raise OutputError(
                    f"exists and is a folder, not a file; choose another output "
                    f"({self.flag} never replaces a folder)",
                    path,
                )
            if _exists(path):
                existing.append(path)
        if existing and not self.overwrite:
            raise OutputError(self._existing_message(existing, holds))
        for key, (_, source) in pending.items():
            self._claims.setdefault(key, None if source is None else _absolute(source))

    def _collision(
        self,
        key: Path,
        path: Path,
        source: Path | None,
        pending: dict[Path, tuple[Path, Path | None]],
    ) -> str | None:
        """Why ``path`` cannot be written for ``source``: another input of this run or batch
        writes it too; None when it can."""
        if key in pending:
            other = pending[key][1]
        elif key in self._claims:
            other = self._claims[key]
        else:
            return None
        if source is None or other is None or _absolute(Path(other)) == _absolute(source):
            return None  # no input to compare, or the same input named twice
        return (
            f"{path}: two inputs would both be written here ({other} and {source}); rename "
            "one or write them to separate folders"
        )

    def _folder_problem(self, folder: Path) -> str | None:
        """Why outputs cannot go into ``folder``: it, or a folder above it, is a file."""
        if _absolute(folder) in self._folders:
            return None
        for place in (folder, *folder.parents):
            if _exists(place):
                if place.is_dir():
                    return None
                found = self.input_behind(place)
                also = " and is one of the inputs" if found is not None else ""
                return (
                    f"{place}: exists{also} and is a file, not a folder; choose another output "
                    f"({self.flag} never replaces a file with a folder)"
                )
        return None

    def _input_message(self, path: Path, found: Path) -> str:
        same = _absolute(found) == _absolute(path) and found == path
        which = "" if same else f" ({found}, the same file)"
        return (
            f"{path}: exists and is one of the inputs{which}; choose another output "
            f"({self.flag} never replaces an input)"
        )

    def _existing_message(self, existing: list[Path], holds: str | None) -> str:
        if holds is not None:
            folder = existing[0].parent
            names = ", ".join(p.name for p in existing)
            return (
                f"{folder}: already holds {holds} ({names}); pass {self.flag} to replace it, "
                "or choose another folder"
            )
        first = existing[0]
        if len(existing) == 1:
            return (
                f"{first}: already exists; pass {self.flag} to replace it, or choose another output"
            )
        more = len(existing) - 1
        return (
            f"{first}: already exists, as {'do' if more > 1 else 'does'} {more} more "
            f"output{'s' if more > 1 else ''}; pass {self.flag} to replace them, or choose "
            "another output"
        )

    # ------------------------------------------------------------------ writing
    @contextlib.contextmanager
    def writing(self, path: str | Path, source: str | Path | None = None) -> Iterator[Path]:
        """Claim ``path`` (if not claimed yet), then :func:`~hifigan.io.atomic_path` it."""
        self.claim(path, source)
        with atomic_path(path) as tmp:
            yield tmp

    def write_text(self, path: str | Path, text: str) -> Path:
        """Claim ``path`` and write ``text`` to it atomically; returns ``path``."""
        with self.writing(path) as tmp:
            tmp.write_text(text)
        return Path(path)


__all__ = ["OVERWRITE_FLAG", "OutputError", "OutputPlan"]
