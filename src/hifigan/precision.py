"""The numeric precisions offered for inference and training, by name."""

from __future__ import annotations

import torch

# Names users pass on the command line and in the API -> the dtype computations run in.
PRECISIONS: dict[str, torch.dtype] = {
    "fp32": torch.float32,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
}
