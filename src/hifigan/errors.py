"""User-facing errors.

Every problem caused by the user's input (a file, a config, a checkpoint) is raised as a
:class:`HiFiGANError` whose message is one line that names the file and the problem. The CLI
prints that line and exits non-zero; library users can catch the class.
"""

from __future__ import annotations

import os
from pathlib import Path


class HiFiGANError(Exception):
    """A problem with the user's input, described in one line."""

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        if path is not None:
            # bytes of a name that are not valid UTF-8 appear as \xNN escapes: the line is text
            path = os.fsencode(str(path)).decode("utf-8", "backslashreplace")
        self.path = path
        super().__init__(f"{path}: {message}" if path is not None else message)


class ConfigError(HiFiGANError):
    """An invalid or unreadable configuration."""


class CheckpointError(HiFiGANError):
    """A missing, corrupt or mismatched checkpoint."""


class InputError(HiFiGANError):
    """An unreadable or invalid audio or mel input file."""
