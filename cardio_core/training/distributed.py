"""What training needs to know about distributed data parallel (DDP): which rank this is, the global
batch split over the ranks, evaluation outputs gathered from every rank, and waiting for rank zero.

One process per device; every rank runs the same job code. Rank zero alone writes files and the
store (checkpoints, registration, analysis); the others wait at a barrier so that none runs ahead.
"""
from __future__ import annotations

import math
import os
from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported by the caller; the rank helpers work without it (jobs.worker)
    import torch


# Set by the launchers: torchrun / Lightning's subprocess launcher (RANK, LOCAL_RANK, NODE_RANK), srun (SLURM_PROCID).
RANK_VARIABLES = ("RANK", "SLURM_PROCID", "LOCAL_RANK", "NODE_RANK")
# A barrier waits while rank zero analyses a checkpoint (embeddings, metrics, UMAP): long on a big cohort.
BARRIER_TIMEOUT = timedelta(hours=4)


def is_global_zero_process() -> bool:
    """True unless a DDP launcher says this process is another rank."""
    return all(int(os.environ.get(v) or 0) == 0 for v in RANK_VARIABLES)


def is_rank_zero(ctx=None) -> bool:
    """A job context's own answer when it has one (jobs.worker.JobContext), else the launcher's variables."""
    value = getattr(ctx, "is_global_zero", None)
    return bool(value) if value is not None else is_global_zero_process()


def world_size(trainer) -> int:
    return int(getattr(trainer, "world_size", 1) or 1) if trainer is not None else 1


def per_device_batch(global_batch: int, ranks: int) -> int:
    """The batch each rank loads so that one optimiser step sees the recipe's (global) batch size.

    A global batch that does not divide evenly is rounded up per rank (a slightly bigger step)."""
    if global_batch < 1 or ranks < 1:
        raise ValueError(f"batch size and ranks must be >= 1, got {global_batch}, {ranks}")
    return max(1, math.ceil(global_batch / ranks))


def gather_in_order(module, tensor: torch.Tensor, total: int) -> torch.Tensor:
    """One rank's evaluation outputs -> every rank's, in the dataset's order, without the padding.

    Lightning evaluates with DistributedSampler(shuffle=False): rank r gets records r, r + W, r + 2W, ...
    and the list is padded (by repeating the first records) so every rank has ceil(total / W). Gathering
    the equal-length pieces (W, n, ...) and reading them position by position restores records 0..total-1.
    With one process the tensor is returned as it is.
    """
    trainer = getattr(module, "_trainer", None)
    ranks = world_size(trainer)
    if ranks == 1:
        return tensor
    gathered = module.all_gather(tensor.to(module.device))          # (W, n, ...)
    if gathered.shape[0] != ranks:
        raise RuntimeError(f"all_gather returned {gathered.shape[0]} pieces for {ranks} ranks")
    ordered = gathered.transpose(0, 1).reshape(-1, *tensor.shape[1:])
    if len(ordered) < total:
        raise RuntimeError(f"gathered {len(ordered)} evaluation outputs for {total} records")
    return ordered[:total].cpu()


def dataset_length(dataloaders) -> int:
    """Records in a stage's dataset (trainer.val_dataloaders / test_dataloaders: one loader or a list)."""
    if isinstance(dataloaders, (list, tuple)):
        return sum(len(dl.dataset) for dl in dataloaders)
    return len(dataloaders.dataset)


def barrier(trainer, name: str) -> None:
    """Every rank waits here until all have arrived (a no-op with one process)."""
    if world_size(trainer) > 1:
        trainer.strategy.barrier(name)


def any_rank(trainer, flag: bool) -> bool:
    """True on every rank when it is true on any (a stop request must stop all ranks at the same step)."""
    if world_size(trainer) == 1:
        return bool(flag)
    return bool(trainer.strategy.reduce_boolean_decision(bool(flag), all=False))
