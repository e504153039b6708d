"""The numeric precisions offered for inference and training, by name."""

from __future__ import annotations

import torch

# Names users pass on the command line and in the API -> the dtype computations run in.
PRECISIONS: dict[str, torch.dtype] = {
    "fp32": torch.float32,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
}


def bf16_supported(device_type: str) -> bool:
    """Whether bf16 has kernels here: oneDNN's bf16 path on the CPU (AVX-512 BW/VL/DQ,
    AVX-NE-CONVERT or AMX; without them oneDNN refuses bf16 operations), bf16 on CUDA."""
    if device_type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False
