"""Renaming other toolkits' generator state dicts to the authors' key names.

Every reader ends with the authors' layout (``conv_pre``, ``ups.i``, ``resblocks.k`` with
``k = stage * num_kernels + j``, ``conv_post``) and plain ``weight`` tensors: weight norm, in
the old (``weight_g``/``weight_v``) or the parametrized form, is folded as the toolkits do at
inference.
"""

from __future__ import annotations

import re

import torch
from torch import Tensor

_PARAM_G = ".parametrizations.weight.original0"
_PARAM_V = ".parametrizations.weight.original1"


def fold_weight_norm(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """``name.weight_g`` + ``name.weight_v`` (or their parametrized names) -> ``name.weight``
    ``= g * v / ||v||`` (norm over all dimensions but the first, as ``weight_norm(dim=0)``)."""
    renamed: dict[str, Tensor] = {}
    for key, value in state.items():
        if key.endswith(_PARAM_G):
            key = key[: -len(_PARAM_G)] + ".weight_g"
        elif key.endswith(_PARAM_V):
            key = key[: -len(_PARAM_V)] + ".weight_v"
        renamed[key] = value
    out: dict[str, Tensor] = {}
    for key, value in renamed.items():
        if key.endswith(".weight_g") and key[:-1] + "v" in renamed:
            v = renamed[key[:-1] + "v"].float()
            out[key[: -len("_g")]] = torch._weight_norm(v, value.float(), 0)
        elif key.endswith(".weight_v") and key[:-1] + "g" in renamed:
            continue
        else:
            out[key] = value
    return out


def strip_prefix(state: dict[str, Tensor], prefix: str) -> dict[str, Tensor]:
    """The entries under ``prefix`` (e.g. ``generator.``), without it."""
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def flatten_nested_blocks(state: dict[str, Tensor], num_kernels: int) -> dict[str, Tensor]:
    """``resblocks.i.j.*`` (one list per stage: NeMo, DLE) -> ``resblocks.{i*K+j}.*``; keys
    already flat are kept."""
    pattern = re.compile(r"^resblocks\.(\d+)\.(\d+)\.(convs\d?\..*)$")
    out = {}
    for key, value in state.items():
        m = pattern.match(key)
        if m:
            key = f"resblocks.{int(m.group(1)) * num_kernels + int(m.group(2))}.{m.group(3)}"
        out[key] = value
    return out


def from_parallel_wavegan(state: dict[str, Tensor], additional_convs: bool) -> dict[str, Tensor]:
    """ParallelWaveGAN / ESPnet2 names (``input_conv``, ``upsamples.i.1``,
    ``blocks.k.convs1.j.1``, ``output_conv.1``) -> the authors'."""
    rules = [
        (r"^input_conv\.", "conv_pre."),
        (r"^upsamples\.(\d+)\.1\.", r"ups.\1."),
        (r"^blocks\.(\d+)\.convs1\.(\d+)\.1\.", r"resblocks.\1.convs1.\2."),
        (r"^blocks\.(\d+)\.convs2\.(\d+)\.1\.", r"resblocks.\1.convs2.\2."),
        (r"^output_conv\.1\.", "conv_post."),
    ]
    if not additional_convs:  # one convolution per dilation: the authors' residual block 2
        rules[2] = (r"^blocks\.(\d+)\.convs1\.(\d+)\.1\.", r"resblocks.\1.convs.\2.")
    return _renamed(state, rules)


def _renamed(state: dict[str, Tensor], rules: list[tuple[str, str]]) -> dict[str, Tensor]:
    """``state`` with each key renamed by the first of ``rules`` (regex, replacement) that
    matches it; keys no rule matches are kept."""
    out = {}
    for key, value in state.items():
        for pattern, repl in rules:
            new = re.sub(pattern, repl, key)
            if new != key:
                key = new
                break
        out[key] = value
    return out


def to_parallel_wavegan(state: dict[str, Tensor], additional_convs: bool) -> dict[str, Tensor]:
    """The authors' names -> ParallelWaveGAN's (inverse of :func:`from_parallel_wavegan`)."""
    rules = [
        (r"^conv_pre\.", "input_conv."),
        (r"^ups\.(\d+)\.", r"upsamples.\1.1."),
        (r"^resblocks\.(\d+)\.convs1\.(\d+)\.", r"blocks.\1.convs1.\2.1."),
        (r"^resblocks\.(\d+)\.convs2\.(\d+)\.", r"blocks.\1.convs2.\2.1."),
        (r"^resblocks\.(\d+)\.convs\.(\d+)\.", r"blocks.\1.convs1.\2.1."),
        (r"^conv_post\.", "output_conv.1."),
    ]
    return _renamed(state, rules)


def from_speechbrain(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """SpeechBrain wraps each convolution in a module whose ``conv`` holds it: drop that."""
    return {
        re.sub(r"\.conv\.(weight|bias|weight_g|weight_v)$", r".\1", k): v for k, v in state.items()
    }
