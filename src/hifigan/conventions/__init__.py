"""Mel conventions: how other toolkits compute the mel their models read, as data.

A TTS model's mel made with another toolkit's convention (log10 instead of ln, dB with
normalisation, mean-variance statistics, another frequency range, centred frames, 24 kHz with
100 bands...) turns into noise in a vocoder trained on the authors' mel. This package names
those conventions (:func:`load_convention`, JSON files in ``named/``), computes any of them from
audio (:meth:`Convention.mel_spectrogram`), converts between them (:func:`convert_mel`, or piece
by piece as a stream arrives, :class:`MelConverter`), and tells which one a mel follows
(:func:`detect_convention`, :func:`identify_convention`, :func:`check_convention`).
See ``docs/mel-conventions.md``.
"""

from .convert import MelConverter, convert_mel, level_offset, looks_normalized, target_frames
from .detect import (
    Candidate,
    MelStatistics,
    check_convention,
    check_log_mel,
    detect_convention,
    identify_convention,
    mel_statistics,
)
from .spec import (
    CONVENTION_FILE,
    Compression,
    Convention,
    Normalization,
    convention_from_dict,
    convention_from_mel_config,
    convention_names,
    load_convention,
    same_values,
)
from .values import (
    MelStats,
    compress,
    expand,
    floor_linear,
    floor_value,
    load_stats,
    stats_from_mels,
)

__all__ = [
    "CONVENTION_FILE",
    "Candidate",
    "Compression",
    "Convention",
    "MelConverter",
    "MelStatistics",
    "MelStats",
    "Normalization",
    "check_convention",
    "check_log_mel",
    "compress",
    "convention_from_dict",
    "convention_from_mel_config",
    "convention_names",
    "convert_mel",
    "detect_convention",
    "expand",
    "floor_linear",
    "floor_value",
    "identify_convention",
    "level_offset",
    "load_convention",
    "load_stats",
    "looks_normalized",
    "mel_statistics",
    "same_values",
    "stats_from_mels",
    "target_frames",
]
