"""HiFi-GAN: generative adversarial networks for efficient, high-fidelity speech synthesis.

An implementation of Kong, Kim & Bae (NeurIPS 2020) that matches the authors' code to float
precision, loads their released checkpoints, and adds training, evaluation and fast inference.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .config import (
    DiscriminatorConfig,
    GeneratorConfig,
    HiFiGANConfig,
    MelConfig,
    TrainConfig,
    preset_names,
)
from .discriminators import MultiPeriodDiscriminator, MultiScaleDiscriminator
from .errors import CheckpointError, ConfigError, HiFiGANError, InputError
from .generator import Generator
from .inference import Vocoder
from .mel import MelSpectrogram
from .threads import auto_threads

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DiscriminatorConfig",
    "Generator",
    "GeneratorConfig",
    "HiFiGANConfig",
    "HiFiGANError",
    "InputError",
    "MelConfig",
    "MelSpectrogram",
    "MultiPeriodDiscriminator",
    "MultiScaleDiscriminator",
    "TrainConfig",
    "Vocoder",
    "__version__",
    "auto_threads",
    "preset_names",
]
