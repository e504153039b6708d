"""The thread rule: torch gets the cores that are idle, not all of them."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import torch

from hifigan.threads import apply_threads, auto_threads, idle_cores, usable_cpus


def snapshot(user: int, idle: int, iowait: int = 0) -> str:
    # /proc/stat: cpu user nice system idle iowait irq softirq steal guest guest_nice
    return f"cpu  {user} 0 0 {idle} {iowait} 0 0 0 0 0\ncpu0 0 0 0 0 0 0 0 0 0 0\n"


def test_idle_cores_counts_the_idle_share_of_every_core():
    # 4 cores, 400 jiffies pass: 300 idle = 3 idle cores
    assert idle_cores(snapshot(0, 0), snapshot(100, 300), 4) == pytest.approx(3.0)
    # waiting for I/O is idle for the CPU
    assert idle_cores(snapshot(0, 0), snapshot(200, 100, 100), 4) == pytest.approx(2.0)
    # no time passed (a coarse clock): assume nothing is busy
    assert idle_cores(snapshot(5, 5), snapshot(5, 5), 2) == 2.0


@pytest.mark.skipif(
    sys.platform != "linux" or usable_cpus() > 8, reason="needs /proc/stat and a few cores"
)
def test_busy_cores_are_left_out_and_torch_gets_the_rest():
    cores = usable_cpus()
    if cores < 2:
        pytest.skip("one core: nothing to leave out")
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(cores - 1)]
    saved = torch.get_num_threads()
    try:
        time.sleep(0.3)  # let them start spinning
        assert auto_threads(sample_s=0.5) == 1
        assert apply_threads(None) == 1 and torch.get_num_threads() == 1
        assert apply_threads(cores) == cores and torch.get_num_threads() == cores
    finally:
        for p in busy:
            p.kill()
        torch.set_num_threads(saved)
