"""Files that ship inside the package (``hifigan/data``, package data): the demo recording.

>>> with demo_clip_file() as path:   # a real file, also from a zipped install
...     audio, rate = soundfile.read(path)
"""

from __future__ import annotations

import contextlib
import importlib.resources
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

DEMO_CLIP = "sonnet1_librivox.flac"
"""The demo recording's file name: 6.5 s of real speech, public domain."""
DEMO_CLIP_LABEL = (
    "a LibriVox reading of Shakespeare's Sonnet 1, public domain "
    "(bundled; provenance in hifigan/data/SOURCE.md)"
)


def demo_clip() -> Traversable:
    """The bundled demo recording (FLAC), as a package resource."""
    return importlib.resources.files("hifigan") / "data" / DEMO_CLIP


@contextlib.contextmanager
def demo_clip_file() -> Iterator[Path]:
    """The bundled demo recording as a file path for as long as the context lasts."""
    with importlib.resources.as_file(demo_clip()) as path:
        yield path


__all__ = ["DEMO_CLIP", "DEMO_CLIP_LABEL", "demo_clip", "demo_clip_file"]
