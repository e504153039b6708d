"""Training: data preparation (:mod:`.manifest`), examples and batches (:mod:`.dataset`), the
run folder (:mod:`.run_folder`), opening a run (:mod:`.setup`), one step (:mod:`.step`),
validation (:mod:`.validation`) and the loop (:mod:`.loop`).

>>> from hifigan.train import TrainOptions, train
>>> result = train(TrainOptions(out="runs/debug", data="LJSpeech-1.1", config="debug"))
"""

from __future__ import annotations

from .dataset import EpochBatchSampler, FineTuneMels, SegmentDataset, load_validation
from .loop import TrainingDiverged, TrainResult, train
from .manifest import Clip, DataError, prepare, read_manifest
from .monitor import read_metrics
from .run_folder import export_authors, list_checkpoints
from .setup import TrainOptions, TrainState

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
