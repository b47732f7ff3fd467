"""Multi-process training through torchrun (DDP), with no code change for the user.

`torchrun --nproc_per_node N -m anytouch_policy.cli.main train ...` sets RANK / WORLD_SIZE / LOCAL_RANK; every
training entry point calls `init_from_env()` and gets a `DistContext` that is a no-op in a plain single process.
Backend: NCCL when each rank has a GPU, gloo otherwise (so the same path is testable on CPU).
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch import nn

from anytouch_policy.errors import ConfigError


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in the job; world_size 1 means no process group was started."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    _wrapped: list[nn.Module] = field(default_factory=list, compare=False, repr=False)

    @property
    def is_main(self) -> bool:
        """Only the main rank writes files, prints progress and saves checkpoints."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    def wrap(self, model: nn.Module, *, find_unused_parameters: bool = False) -> nn.Module:
        """DistributedDataParallel around `model` when distributed, the model itself otherwise.

        `find_unused_parameters` is for objectives whose steps use different parts of the model (an image batch
        does not reach the video head), which plain DDP would wait on forever.
        """
        if not self.enabled:
            return model
        ids = [self.device.index] if self.device.type == "cuda" else None
        ddp = nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=find_unused_parameters)
        self._wrapped.append(ddp)
        return ddp

    def release(self) -> None:
        """Free the DDP reducers while the process group still exists.

        A DDP module that outlives the group makes a gloo rank abort at interpreter exit now and then
        ("terminate called without an active exception"; about 1 run in 10 measured with torch 2.14.1).
        """
        for ddp in self._wrapped:
            ddp.reducer = None  # type: ignore[assignment]  # torch types it as a submodule; None frees it
        self._wrapped.clear()
        gc.collect()

    def all_reduce_mean(self, value: torch.Tensor) -> torch.Tensor:
        """Average a tensor over ranks (metrics, losses); identity in one process."""
        if not self.enabled:
            return value
        out = value.detach().clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out / self.world_size

    def all_reduce_sum(self, value: torch.Tensor) -> torch.Tensor:
        """Sum a tensor over ranks (confusion matrices, counts); identity in one process."""
        if not self.enabled:
            return value
        out = value.detach().clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def shard(self, items: list) -> list:
        """This rank's share of a list (round robin), so every rank sees a disjoint part of an epoch."""
        return items[self.rank :: self.world_size]


def init_from_env(device: str = "auto") -> DistContext:
    """Start the process group when launched by torchrun (WORLD_SIZE > 1), else a single-process context."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    want_cuda = device in ("auto", "cuda") and torch.cuda.is_available()
    if device == "cuda" and not want_cuda:
        raise ConfigError("device 'cuda' requested but torch sees no CUDA device")
    if world <= 1:
        return DistContext(device=torch.device("cuda" if want_cuda else "cpu"))
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if want_cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if want_cuda else "gloo")
    dev = torch.device(f"cuda:{local_rank}") if want_cuda else torch.device("cpu")
    return DistContext(rank=rank, world_size=world, local_rank=local_rank, device=dev)


@contextmanager
def distributed(device: str = "auto") -> Iterator[DistContext]:
    """init_from_env() that also tears the process group down when the block ends."""
    ctx = init_from_env(device)
    try:
        yield ctx
    finally:
        if ctx.enabled and dist.is_initialized():
            ctx.release()
            dist.barrier()
            dist.destroy_process_group()
