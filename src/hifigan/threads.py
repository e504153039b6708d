"""How many CPU threads torch should use: the cores that are idle now, not all of them.

torch's default is every core the process may run on. When other programs keep some of those
cores busy, its threads wait for each other at every operation and a pass gets several times
slower than with fewer threads (on a 2-core machine with one core busy: the ``fast`` V3 at 19x
real time with 2 threads, 45x with 1; ``docs/inference.md``). The rule here: use the
cores that were idle over a short sample, rounded, at least one.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from .errors import HiFiGANError

SAMPLE_S = 0.2
_PROC_STAT = Path("/proc/stat")


def usable_cpus() -> int:
    """Cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def _cpu_times(text: str) -> tuple[int, int]:
    """``(idle, total)`` jiffies of all cores from the text of ``/proc/stat``."""
    fields = [int(v) for v in text.splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return idle, sum(fields[:8])  # guest time is already counted in user time


def idle_cores(before: str, after: str, cores: int) -> float:
    """Cores idle between two ``/proc/stat`` snapshots of a machine with ``cores`` cores."""
    idle0, total0 = _cpu_times(before)
    idle1, total1 = _cpu_times(after)
    if total1 <= total0:
        return float(cores)
    return cores * (idle1 - idle0) / (total1 - total0)


def auto_threads(sample_s: float = SAMPLE_S) -> int:
    """The thread count for torch now, given the load of the moment (see the module's text).

    Samples ``/proc/stat`` for ``sample_s`` seconds (Linux); elsewhere, uses the one-minute load
    average; without either, all usable cores.
    """
    usable = usable_cpus()
    machine = os.cpu_count() or usable
    try:
        before = _PROC_STAT.read_text()
        time.sleep(sample_s)
        idle = idle_cores(before, _PROC_STAT.read_text(), machine)
    except (OSError, ValueError, IndexError):
        try:
            idle = machine - os.getloadavg()[0]
        except (OSError, AttributeError):
            return usable
    return max(1, min(usable, round(idle)))


def apply_threads(threads: int | None) -> int:
    """Set torch's CPU threads to ``threads``, or to :func:`auto_threads` when None; returns
    the count."""
    import torch  # here: the rest of this module is read before torch is needed

    if threads is None:
        threads = auto_threads()
    elif threads < 1:
        raise HiFiGANError(f"--threads must be at least 1, got {threads}")
    torch.set_num_threads(threads)
    return threads


__all__ = ["apply_threads", "auto_threads", "idle_cores", "usable_cpus"]
