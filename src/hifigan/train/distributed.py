"""Processes started by ``torchrun``: rank, world size, device, and the few collectives the
loop needs. A plain ``hifigan train`` is the one-process case of the same code."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..errors import HiFiGANError
from ..inference import resolve_device


@dataclass(frozen=True)
class Processes:
    """This process's place among the training processes."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        """True under ``torchrun`` with more than one process."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Only the main process (rank 0) logs, validates and writes files."""
        return self.rank == 0

    def any_process(self, flag: bool) -> bool:
        """Whether ``flag`` is True on any process (so that every process takes the same
        branch)."""
        return bool(self.largest(int(flag)))

    def largest(self, value: int) -> int:
        """The largest of the processes' ``value`` (a small non-negative integer), the same on
        every process: e.g. the number of a stop signal that reached any of them, so that all
        stop at the same step."""
        if not self.enabled:
            return value
        t = torch.tensor([float(value)])
        if dist.get_backend() == "nccl":
            t = t.cuda()
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return int(t.item())

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


def start_processes(device: str) -> tuple[Processes, torch.device]:
    """Join the process group when started by ``torchrun`` (NCCL on GPU, gloo on CPU) and pick
    the device: ``auto`` is CUDA when available; each process uses GPU ``LOCAL_RANK``."""
    from ..settings import launcher_ranks  # the launcher's variables, checked as options

    dev = resolve_device(device)
    rank, world_size, local_rank = launcher_ranks()
    if world_size <= 1:
        return Processes(), dev
    if dev.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise HiFiGANError(
                f"process {rank} needs GPU {local_rank}, but only "
                f"{torch.cuda.device_count()} are visible"
            )
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return Processes(rank, world_size, local_rank), dev


def stop_processes(procs: Processes) -> None:
    if procs.enabled and dist.is_initialized():
        dist.destroy_process_group()
