"""The allocator setting: freed tensor memory stays in the process for reuse."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="glibc's allocator only")

# Allocate and free a 16 MB tensor in a fresh process; print whether the settings were applied
# and how much of that memory the process still holds afterwards.
PROBE = """
import sys, torch
from hifigan.allocator import keep_freed_memory

def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

applied = keep_freed_memory() if sys.argv[1] == "tune" else False
before = rss_mb()
x = torch.ones(4 * 2**20)  # 16 MB, written
del x
print(applied, rss_mb() - before)
"""


def probe(mode: str, **env: str) -> tuple[bool, float]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    environment.pop("HIFIGAN_MALLOC", None)
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode],
        capture_output=True,
        text=True,
        check=True,
        env={**environment, **env},
    ).stdout.split()
    return out[0] == "True", float(out[1])


def test_freed_tensors_stay_in_the_process_only_when_tuned():
    applied, kept = probe("tune")
    if not applied:
        pytest.skip("not glibc: mallopt is unavailable")
    assert kept > 12  # the 16 MB block went back to the heap, not to the system
    _, kept_by_default = probe("default")
    assert kept_by_default < 4  # glibc's default unmaps a block that large when it is freed


def test_the_user_can_keep_the_c_library_settings():
    assert probe("tune", HIFIGAN_MALLOC="system") == (False, pytest.approx(0, abs=4))
    applied, kept = probe("tune", MALLOC_MMAP_THRESHOLD_="131072")
    assert not applied and kept < 4
