"""The narrow stages of ``fast`` on CPU: a C kernel built on first use (``kernels/narrow_stage.c``).

A stage with few channels (32 or fewer: V2's last three, V3's and V1's last) is most of a
small generator's pass, and oneDNN runs it at a fraction of the CPU's peak: it vectorises over
channels, and with 8 or 16 of them most lanes idle (``docs/inference.md``). The kernel here
vectorises over time instead and runs a whole stage (all residual blocks, and ``conv_post``
after the last stage) tile by tile in the cache, one thread per share of the tiles. It
computes the same sums in another order: float32 results differ from the reference by
rounding only.

The kernel is compiled for this CPU (``-O3 -march=native``) by the system C compiler, as
torch.compile does for its CPU code, and kept in ``$HIFIGAN_CACHE`` (default
``~/.cache/hifigan``) under a name that hashes the source, the compiler command and the CPU,
so a change of any of them builds it anew. Without a compiler, or with ``HIFIGAN_NATIVE=0``,
``fast`` runs these stages with oneDNN like the others.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch
from torch import Tensor

SOURCE = "narrow_stage.c"
# stages with at most this many channels. With 64, oneDNN on the whole stage was as fast on long
# inputs (V1, V2, V3) and faster on short ones (streaming chunks of V3)
NARROW_CHANNELS = 32
TILE_ELEMENTS = 2**16  # values per scratch row set: six of them stay in a 2 MB L2 cache
BLOCK = 48  # positions per register block (3 vectors of 16 lanes)
MIN_TILE = 1024  # positions per thread, at least


class _Conv(ctypes.Structure):
    _fields_ = [
        ("w", ctypes.c_void_p),
        ("b", ctypes.c_void_p),
        ("cin", ctypes.c_int),
        ("cout", ctypes.c_int),
        ("k", ctypes.c_int),
        ("d", ctypes.c_int),
        ("p", ctypes.c_int),
    ]


class _Stage(ctypes.Structure):
    _fields_ = [
        ("x", ctypes.c_void_p),
        ("x_cl", ctypes.c_int),
        ("out", ctypes.c_void_p),
        ("out_cl", ctypes.c_int),
        ("n", ctypes.c_long),
        ("convs", ctypes.POINTER(_Conv)),
        ("nblocks", ctypes.c_int),
        ("per_block", ctypes.c_int),
        ("resblock1", ctypes.c_int),
        ("channels", ctypes.c_int),
        ("post", ctypes.POINTER(_Conv)),
        ("tile", ctypes.c_long),
        ("past", ctypes.c_long),
        ("future", ctypes.c_long),
        ("slope", ctypes.c_float),
        ("post_slope", ctypes.c_float),
        ("nthreads", ctypes.c_int),
    ]


def cache_dir() -> Path:
    """Where built kernels are kept: ``$HIFIGAN_CACHE``, else ``$XDG_CACHE_HOME/hifigan``."""
    if os.environ.get("HIFIGAN_CACHE"):
        return Path(os.environ["HIFIGAN_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "hifigan"


def _cpu_identity() -> str:
    """The CPU's model and feature flags (what ``-march=native`` compiles for)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or platform.machine()
    keep = [ln for ln in lines if ln.startswith(("model name", "flags", "Features"))]
    return "\n".join(dict.fromkeys(keep))  # the same line for every core


def compiler_command() -> list[str] | None:
    """The C compiler invocation, or ``None`` when ``$CC`` (default ``cc``) is not found."""
    compiler = shutil.which(os.environ.get("CC", "cc"))
    if compiler is None:
        return None
    return [compiler, "-O3", "-march=native", "-shared", "-fPIC", "-pthread"]


def build(directory: Path | None = None) -> Path | None:
    """Compile the kernel for this CPU unless a build is already cached; its path or ``None``."""
    command = compiler_command()
    if command is None:
        return None
    try:
        source = resources.files(__package__).joinpath("kernels", SOURCE).read_bytes()
    except OSError:  # an install without its package data: oneDNN runs those stages
        return None
    key = hashlib.sha256(
        source + " ".join(command).encode() + _cpu_identity().encode() + platform.machine().encode()
    ).hexdigest()[:16]
    folder = (directory or cache_dir()) / "kernels"
    target = folder / f"narrow_stage-{key}.so"
    if target.exists():
        return target
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder) as tmp:
            src = Path(tmp) / SOURCE
            src.write_bytes(source)
            built = Path(tmp) / target.name
            subprocess.run(
                [*command, str(src), "-o", str(built)], check=True, capture_output=True, timeout=120
            )
            os.replace(built, target)  # atomic: a concurrent build leaves one complete file
    except (OSError, subprocess.SubprocessError):
        return None
    return target


@dataclass
class NarrowKernel:
    """The loaded kernel; :func:`load` builds it."""

    library: ctypes.CDLL
    path: Path

    def __post_init__(self) -> None:
        self.library.hg_narrow_stage.argtypes = [ctypes.POINTER(_Stage)]
        self.library.hg_narrow_stage.restype = ctypes.c_int

    def __reduce__(self):
        # a copy (deepcopy, pickle) loads the kernel for the machine it is made on, or None
        return (load, ())


def _switched_off() -> bool:
    from ..settings import env_value, one_of  # a switch, checked as an option is

    return env_value("HIFIGAN_NATIVE", one_of("0", "1")) == "0"


def load(directory: Path | None = None) -> NarrowKernel | None:
    """The kernel for this CPU, or ``None`` (no compiler, a failed build, ``HIFIGAN_NATIVE=0``)."""
    if _switched_off() or platform.system() == "Windows":
        return None
    path = build(directory)
    if path is None:
        return None
    try:
        return NarrowKernel(ctypes.CDLL(str(path)), path)
    except OSError:
        return None


def describe() -> str:
    """One line on whether ``fast`` runs its narrow stages through the kernel here, and why not."""
    if _switched_off():
        return "narrow-stage kernel: off (HIFIGAN_NATIVE=0); oneDNN runs those stages"
    if compiler_command() is None:
        cc = os.environ.get("CC", "cc")
        return f"narrow-stage kernel: no C compiler ({cc!r} not found); oneDNN runs those stages"
    kernel = load()
    if kernel is None:
        return "narrow-stage kernel: the build failed; oneDNN runs those stages"
    return f"narrow-stage kernel: {kernel.path}"


def pack_weight(weight: Tensor) -> Tensor:
    """``(out, in, k)`` float32 -> ``(ceil(out / 8), in, k, 8)``, zeros past ``out``: the 8
    output channels of a register block side by side for each input channel and tap."""
    cout, cin, k = weight.shape
    padded = weight.new_zeros((cout + 7) // 8 * 8, cin, k)
    padded[:cout] = weight
    return padded.view(-1, 8, cin, k).permute(0, 2, 3, 1).contiguous()


def _conv(packed: Tensor, bias: Tensor, dilation: int, padding: int) -> _Conv:
    """The C descriptor of a convolution whose weight :func:`pack_weight` packed."""
    _, cin, k, _ = packed.shape
    return _Conv(packed.data_ptr(), bias.data_ptr(), cin, bias.shape[0], k, dilation, padding)


class NarrowStageRunner:
    """Runs one stage through the kernel.

    Holds packed copies of the weights; the C descriptors that point into them are built on
    first use and left out of copies, so a copied (or unpickled) runner points at its own.
    ``kernel`` is ``None`` in a copy made where the kernel cannot be built: then
    :attr:`usable` is False and the caller runs the stage another way.

    Args:
        kernel: from :func:`load`.
        convs: the stage's convolutions block by block, each ``(weight (out, in, k) float32,
            bias (out,), dilation, padding)``; residual block 1 lists each pair's dilated
            convolution before its ``d = 1`` one.
        nblocks: residual blocks in the stage.
        resblock1: residual block 1 (pairs with a leaky ReLU between) or 2 (single convs).
        post: ``conv_post`` in the same form, for the last stage, else ``None``.
        past, future: the stage's halo (positions of input each output position depends on).
    """

    def __init__(
        self,
        kernel: NarrowKernel,
        convs: list[tuple[Tensor, Tensor, int, int]],
        *,
        nblocks: int,
        resblock1: bool,
        post: tuple[Tensor, Tensor, int, int] | None,
        past: int,
        future: int,
        slope: float,
        post_slope: float,
    ) -> None:
        self.kernel: NarrowKernel | None = kernel
        self.channels = int(convs[0][0].shape[1])
        self.out_channels = int(post[0].shape[0]) if post is not None else self.channels
        # (packed weight, bias, dilation, padding) per convolution, conv_post last if any
        self.convs = [
            (pack_weight(w.float()), b.float().contiguous(), d, p) for w, b, d, p in convs
        ]
        if post is not None:
            self.convs.append(
                (pack_weight(post[0].float()), post[1].float().contiguous(), *post[2:])
            )
        self.has_post = post is not None
        self.nblocks, self.per_block = nblocks, len(convs) // nblocks
        self.resblock1 = resblock1
        self.past, self.future = past, future
        self.slope, self.post_slope = slope, post_slope
        self._structs: tuple | None = None

    @property
    def usable(self) -> bool:
        return self.kernel is not None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_structs": None}  # they point into this object's tensors

    def _descriptors(self) -> tuple:
        """The C array of the blocks' convolutions and a pointer to ``conv_post`` (or None)."""
        if self._structs is None:
            descs = [_conv(*spec) for spec in self.convs]
            post = ctypes.pointer(descs.pop()) if self.has_post else None
            self._structs = ((_Conv * len(descs))(*descs), post)
        return self._structs

    def __call__(self, x: Tensor, threads: int) -> Tensor:
        """``(B, C, 1, T)`` float32 on CPU -> ``(B, C_out, 1, T)`` float32 in the memory format
        of ``x`` (contiguous or channels-last): the stage's sum over blocks, or after the last
        stage ``conv_post`` before its tanh. The kernel transposes tiles itself, so oneDNN's
        channels-last upsampling needs no separate reordering pass."""
        channels_last = x.is_contiguous(memory_format=torch.channels_last) and x.shape[1] > 1
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        x = x.contiguous(memory_format=fmt)
        batch, _, _, n = x.shape
        out = torch.empty(batch, self.out_channels, 1, n, memory_format=fmt)
        if n == 0 or batch == 0:
            return out
        threads = max(1, min(threads, n // MIN_TILE))  # tiny inputs: no threads to start
        tiles = -(-n // max(BLOCK, TILE_ELEMENTS // self.channels))
        tiles = -(-tiles // threads) * threads  # the same number of tiles for every thread
        tile = -(-n // tiles // BLOCK) * BLOCK
        convs, post = self._descriptors()
        assert self.kernel is not None, "check NarrowStageRunner.usable first"
        for b in range(batch):
            stage = _Stage(
                x[b].data_ptr(), int(channels_last), out[b].data_ptr(), int(channels_last), n,
                convs, self.nblocks, self.per_block, int(self.resblock1), self.channels,
                post, tile, self.past, self.future, self.slope, self.post_slope, threads,
            )  # fmt: skip
            if self.kernel.library.hg_narrow_stage(ctypes.byref(stage)) != 0:
                raise MemoryError("the narrow-stage kernel could not allocate its scratch memory")
        return out


__all__ = ["NARROW_CHANNELS", "NarrowKernel", "NarrowStageRunner", "cache_dir", "describe", "load"]
