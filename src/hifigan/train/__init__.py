"""Training: data preparation, the training loop, checkpoints of a run.

>>> from hifigan.train import TrainOptions, train
>>> result = train(TrainOptions(out="runs/debug", data="../shared/data/ljspeech", config="debug"))
"""

from __future__ import annotations

from .checkpoints import export_authors, list_checkpoints
from .dataset import EpochBatchSampler, FineTuneMels, SegmentDataset, load_validation
from .loop import TrainingDiverged, TrainOptions, TrainResult, TrainState, train
from .manifest import Clip, DataError, prepare, read_manifest
from .monitor import read_metrics

__all__ = [
    "Clip",
    "DataError",
    "EpochBatchSampler",
    "FineTuneMels",
    "SegmentDataset",
    "TrainOptions",
    "TrainResult",
    "TrainState",
    "TrainingDiverged",
    "export_authors",
    "list_checkpoints",
    "load_validation",
    "prepare",
    "read_manifest",
    "read_metrics",
    "train",
]
