"""Keep freed CPU memory in the process for reuse, instead of returning it to the system.

A generator pass allocates tensors of a few to tens of megabytes. With glibc's defaults, blocks
that large are mapped fresh from the kernel on each allocation and unmapped when freed, so every
pass pays a page fault per 4 KiB page it writes: on a 2-core machine that made the eager
generator 1.4-1.9x and the ``fast`` one up to 20% slower (``docs/inference.md``). Serving
blocks up to 32 MiB (the most glibc allows) from the heap, and never trimming it, turns those
faults into plain reuse. The price is that the process keeps its peak heap size until it exits.

Only glibc on Linux is tuned; anything else is left as it is. ``HIFIGAN_MALLOC=system`` keeps
the C library's own settings, as do the ``MALLOC_*_`` environment variables a user set.
"""

from __future__ import annotations

import ctypes
import os
import sys

ENV = "HIFIGAN_MALLOC"
# mallopt parameters (malloc.h) and the values used
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_SETTINGS = {
    _M_MMAP_THRESHOLD: 32 * 2**20,  # glibc refuses more on 64-bit systems
    _M_TRIM_THRESHOLD: 2**31 - 1,  # never give the heap's top back
    _M_TOP_PAD: 64 * 2**20,  # grow the heap in large steps
}
_USER_VARIABLES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")


def keep_freed_memory() -> bool:
    """Tune glibc's allocator for large, short-lived tensors (see the module's text).

    Idempotent and cheap; affects the whole process. Returns whether the settings are in
    effect (False off glibc, or when ``HIFIGAN_MALLOC=system`` or a ``MALLOC_*_`` variable is
    set).
    """
    from .settings import env_value, one_of  # a switch, checked as an option is

    mode = env_value(ENV, one_of("system", "default", fold_case=True))
    if sys.platform != "linux" or mode == "system":
        return False
    if any(name in os.environ for name in _USER_VARIABLES):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library the process already runs on
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return all(mallopt(param, value) == 1 for param, value in _SETTINGS.items())


__all__ = ["keep_freed_memory"]
