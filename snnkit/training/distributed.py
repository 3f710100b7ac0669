"""Data-parallel plumbing on PyTorch's own engine (torch.distributed + DistributedDataParallel).

A run started by ``torchrun --nproc-per-node N -m snnkit train ...`` (or any launcher that sets ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``) trains with one process per device: NCCL on CUDA,
gloo on CPU. Without those variables everything here degrades to single-process no-ops, so the loop has one code
path.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

__all__ = [
    "DistInfo",
    "setup",
    "teardown",
    "resolve_device",
    "wrap_ddp",
    "all_reduce_sum",
    "average_buffers",
    "broadcast_object",
    "gather_objects",
]


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job: ``rank`` of ``world_size``, ``local_rank`` on its node."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    #: True when this module created the process group (and so must destroy it).
    owns_group: bool = False

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 logs, plots and writes checkpoints."""
        return self.rank == 0


def resolve_device(device: str, info: DistInfo) -> torch.device:
    """``"auto"`` -> this rank's CUDA device if CUDA is available, else CPU. Under DDP, ``"cuda"`` means
    ``cuda:<local_rank>`` so each process drives its own GPU."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except RuntimeError as e:
        raise ValueError(f"invalid device {device!r} (use auto, cpu, cuda or cuda:N): {e}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} requested but CUDA is not available (use cpu or auto)")
        if dev.index is None:
            dev = torch.device("cuda", info.local_rank if info.enabled else torch.cuda.current_device())
        torch.cuda.set_device(dev)
    return dev


def setup(device: str = "auto") -> DistInfo:
    """Join the process group described by the launcher's environment variables, if any."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", str(rank)))
    owns = False
    if not dist.is_initialized():
        use_cuda = device != "cpu" and torch.cuda.is_available() and not str(device).startswith("cpu")
        backend = "nccl" if use_cuda else "gloo"
        if use_cuda:
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend, rank=rank, world_size=world)
        owns = True
    return DistInfo(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local_rank, owns_group=owns)


def teardown(info: DistInfo) -> None:
    """Destroy the process group if :func:`setup` created it."""
    if info.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def wrap_ddp(model: nn.Module, device_ids: list[int] | None) -> nn.parallel.DistributedDataParallel:
    """DistributedDataParallel without the per-forward buffer broadcast (see :func:`average_buffers` for how the
    BatchNorm statistics are kept in sync instead)."""
    params = inspect.signature(nn.parallel.DistributedDataParallel).parameters
    # torch >= 2.13 renames the switch (and deprecates the old name); the init-time sync it keeps is harmless here,
    # every rank builds identical buffers from the same seed.
    no_sync = {"forward_sync_buffers": False} if "forward_sync_buffers" in params else {"broadcast_buffers": False}
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids, **no_sync)


def all_reduce_sum(t: torch.Tensor, info: DistInfo, device: torch.device) -> torch.Tensor:
    """Sum ``t`` over ranks (identity without DDP). Moves to ``device`` for NCCL, which cannot reduce CPU tensors."""
    if not info.enabled:
        return t
    work = t.to(device)
    dist.all_reduce(work, op=dist.ReduceOp.SUM)
    return work.to(t.device)


@torch.no_grad()
def average_buffers(model: nn.Module, info: DistInfo) -> None:
    """Average floating-point buffers (BatchNorm running statistics) over ranks.

    DDP is built without the per-forward buffer broadcast (:func:`wrap_ddp`), so each rank's BatchNorm statistics
    follow its own data shard (a rank-0 broadcast every forward would throw the other ranks' statistics away). The
    running statistics are exponential moving averages, linear in the batch statistics, so averaging them across
    ranks equals the moving average of the rank-averaged batch statistics. The loop calls this before every
    checkpoint and evaluation, so all ranks (and a resumed run) hold identical buffers at those points.
    """
    if not info.enabled:
        return
    for b in model.buffers():
        if b.is_floating_point():
            dist.all_reduce(b, op=dist.ReduceOp.SUM)
            b.div_(info.world_size)


def broadcast_object(obj: Any, info: DistInfo) -> Any:
    """Rank 0's ``obj`` on every rank (e.g. the run directory name chosen by rank 0)."""
    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_objects(obj: Any, info: DistInfo) -> list[Any]:
    """``[obj of rank 0, obj of rank 1, ...]`` on every rank."""
    if not info.enabled:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out
