"""Learning on real speech (slow): the debug preset on 40 Kathleen clips for 300 steps.

The wall-time half of the target (under 6 minutes on 2 cores) is measured by
``scripts/learn_debug.py``, not asserted here.
"""

import importlib.util

import pytest
import torch

from hifigan.train import TrainOptions, read_metrics, train
from hifigan.train.adapt import scratch_defaults

from conftest import REPO, SHARED, need


def learn_debug_module():
    spec = importlib.util.spec_from_file_location(
        "learn_debug", REPO / "scripts" / "learn_debug.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_debug_preset_learns_on_40_kathleen_clips(tmp_path):
    kathleen = need(SHARED / "data" / "kathleen")
    train_list, val_list = learn_debug_module().write_lists(tmp_path, 40, 5)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # robust on a busy machine; the speed is the script's business
    try:
        result = train(
            TrainOptions(
                out=tmp_path / "run",
                data=kathleen,
                train_list=train_list,
                val_list=val_list,
                config="debug",
                **scratch_defaults("cpu"),  # what `hifigan train` runs on this CPU
                progress=False,
                tensorboard=False,
                device="cpu",
            )
        )
    finally:
        torch.set_num_threads(threads)
    assert result.state.step == 300 and result.state.skipped_steps == 0
    records = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert [r["step"] for r in records] == list(range(0, 301, 50))
    assert all(r["val_clips"] == 5 for r in records)
    first, last = records[0]["val_mel_l1"], records[-1]["val_mel_l1"]
    assert last <= 0.7 * first, [round(r["val_mel_l1"], 4) for r in records]
