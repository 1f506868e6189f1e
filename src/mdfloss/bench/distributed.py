"""Processes and devices: one process, or several launched by ``torchrun`` (DDP).

``torchrun --nproc_per_node N -m mdfloss.cli bench ...`` sets ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK``; each process then joins a process group (``nccl`` on CUDA, ``gloo`` on CPU),
uses ``cuda:LOCAL_RANK`` when it trains on GPUs, and trains on its share of every batch.
Validation, checkpoints, evaluation and the report happen on rank 0; the others wait.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..runtime import resolve_device


@dataclass
class Context:
    """This process's place: rank, world size and device."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def mean(self, value: float) -> float:
        """The mean of ``value`` over processes."""
        if not self.distributed:
            return value
        tensor = torch.tensor([value], dtype=torch.float64, device=self._comm_device)
        dist.all_reduce(tensor)
        return float(tensor) / self.world_size

    def any(self, flag: bool) -> bool:
        """True on every process when ``flag`` is true on any."""
        if not self.distributed:
            return flag
        tensor = torch.tensor([int(flag)], device=self._comm_device)
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return bool(tensor)

    @property
    def _comm_device(self) -> torch.device:
        return self.device if dist.get_backend() == "nccl" else torch.device("cpu")


def setup(device_choice: str) -> Context:
    """Join the process group if ``torchrun`` started this process; pick the device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_choice, "train.device", local_rank)
    if world_size > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=rank, world_size=world_size)
    return Context(rank, world_size, device)


def teardown(context: Context) -> None:
    if context.distributed and dist.is_initialized():
        dist.destroy_process_group()


class StopFlag:
    """Set by SIGINT/SIGTERM (or by ``request()``); training stops cleanly at the next iteration end."""

    def __init__(self) -> None:
        self.requested = False
        self.signal_name: str | None = None

    def request(self, name: str = "request") -> None:
        self.requested = True
        self.signal_name = name


@contextmanager
def stop_on_signals(flag: StopFlag) -> Iterator[StopFlag]:
    """While inside, a first SIGINT/SIGTERM sets ``flag``; a second one acts as usual."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = {}

    def handler(signum: int, frame: object) -> None:
        if flag.requested:
            signal.signal(signum, previous[signum])
            signal.raise_signal(signum)
            return
        flag.request(signal.Signals(signum).name)

    for signum in (signal.SIGINT, signal.SIGTERM):
        previous[signum] = signal.signal(signum, handler)
    try:
        yield flag
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
