"""Distributed training under ``torchrun``: gloo on CPU, nccl on GPU; rank 0 logs and checkpoints.

A trainer calls ``init_distributed`` once; without torchrun (WORLD_SIZE unset) it is a no-op and the
same code runs in one process::

    ctx = init_distributed("auto")
    model = wrap_model(model.to(ctx.device), ctx)
    sampler = EpochBatchSampler(n, batch_size, rank=ctx.rank, world_size=ctx.world_size)
    if ctx.is_main: save(...)
"""

from __future__ import annotations

import dataclasses
import os

import torch
import torch.distributed as dist

from aics.core.errors import UserError
from aics.core.runtime import pick_device


@dataclasses.dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str = "auto") -> DistContext:
    """Join the process group torchrun set up (env:// rendezvous), or run alone when there is none."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = pick_device(device)
    if world <= 1:
        return DistContext(0, 1, 0, dev)
    if dev.type == "cuda":
        if torch.cuda.device_count() <= local_rank:
            raise UserError(f"LOCAL_RANK={local_rank} but only {torch.cuda.device_count()} GPUs are visible")
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    elif dev.type == "mps":
        dev = torch.device("cpu")  # no MPS collective backend
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return DistContext(rank, world, local_rank, dev)


def wrap_model(model: torch.nn.Module, ctx: DistContext) -> torch.nn.Module:
    if not ctx.distributed:
        return model
    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)


def any_rank(flag: bool, ctx: DistContext) -> bool:
    """True on every rank when ``flag`` is true on any rank (so all ranks stop at the same step)."""
    if not ctx.distributed:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=ctx.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def all_gather_cat(t: torch.Tensor, ctx: DistContext, dim: int = 0) -> torch.Tensor:
    """Concatenate a tensor from every rank (in rank order) along ``dim``."""
    if not ctx.distributed:
        return t
    parts = [torch.empty_like(t) for _ in range(ctx.world_size)]
    dist.all_gather(parts, t.contiguous())
    return torch.cat(parts, dim=dim)


def broadcast_object(obj: object, ctx: DistContext) -> object:
    """Rank 0's ``obj`` on every rank."""
    if not ctx.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_objects(obj: object, ctx: DistContext) -> list:
    """Every rank's ``obj`` (small picklable state such as RNG states), in rank order, on every rank."""
    if not ctx.distributed:
        return [obj]
    out: list = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def barrier(ctx: DistContext) -> None:
    if ctx.distributed:
        dist.barrier()


def cleanup(ctx: DistContext, sync: bool = True) -> None:
    """Leave the process group. With ``sync`` all ranks meet at a barrier first: a rank that tears down
    gloo while a peer still talks to it (or whose store server goes away) can abort the peer."""
    if ctx.distributed and dist.is_initialized():
        if sync:
            dist.barrier()
        dist.destroy_process_group()
