"""The processes that share a bulk scoring run: torch.distributed's group where the caller set one up, else one
joined from a launcher's environment (``RANK``, ``WORLD_SIZE``; gloo, on any machine), else this process alone.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

# How long a process waits at a barrier for the others. Under a launcher, a process that fails ends the
# others, so the wait only has to outlast the slowest process's share, however large the file.
BARRIER_TIMEOUT = timedelta(hours=12)


@dataclass(frozen=True)
class Processes:
    """This process's place among those that share the work: ``rank`` from 0 to ``count - 1``."""

    rank: int = 0
    count: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def wait_for_everyone(self) -> None:
        if self.count > 1:
            import torch.distributed as dist  # imported here, as in joined_processes: --help loads no torch

            dist.barrier()


@contextmanager
def joined_processes() -> Iterator[Processes]:
    """The processes of this run: torch.distributed's group where one is set up; else, under a launcher
    (``WORLD_SIZE`` above 1), a gloo group joined from its environment and left at the end; else this one."""
    import torch.distributed as dist  # imported here: --help loads no torch

    if dist.is_available() and dist.is_initialized():
        yield Processes(dist.get_rank(), dist.get_world_size())
        return
    count = int(os.environ.get("WORLD_SIZE", "1"))
    if count <= 1:
        yield Processes()
        return
    # env://: RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT, as accelerate launch and torchrun set them
    dist.init_process_group("gloo", timeout=BARRIER_TIMEOUT)
    try:
        yield Processes(dist.get_rank(), dist.get_world_size())
    finally:
        dist.destroy_process_group()
