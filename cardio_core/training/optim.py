"""Layer-wise lr decay parameter groups and the per-step warm-up + half-cosine schedule.

Two mistakes of earlier implementations are designed out here (method.md §7):
1. The scheduler computes every group's lr as peak_lr * group["lr_scale"] * factor(step), so
   layer-wise decay cannot be silently dropped by the scheduler.
2. The schedule is expressed in optimiser steps (warm-up = warmup_epochs * steps_per_epoch,
   end = max_epochs * steps_per_epoch) and stepped once per optimiser step, so it never cycles.
"""
from __future__ import annotations

import math
from typing import Iterable

import torch
from torch import nn
from torch.optim.lr_scheduler import LRScheduler


def _num_blocks(model: nn.Module) -> int:
    blocks = getattr(model, "blocks", None)
    return len(blocks) if blocks is not None else 0


def vit_layer_id(name: str, num_layers: int) -> int:
    """BEiT layer id: patch_embed / cls_token / pos_embed = 0, blocks.k = k + 1, everything after = num_layers."""
    if name in ("cls_token", "pos_embed", "mask_token") or name.startswith("patch_embed."):
        return 0
    if name.startswith("blocks."):
        return int(name.split(".")[1]) + 1
    return num_layers


def param_groups_layer_decay(model: nn.Module, weight_decay: float = 0.05, layer_decay: float = 0.75,
                             no_weight_decay_list: Iterable[str] = ()) -> list[dict]:
    """AdamW parameter groups with per-layer "lr_scale" = layer_decay ** (num_layers - layer_id).

    num_layers = number of blocks + 1. Biases, norm weights (any 1-D parameter) and names in
    `no_weight_decay_list` get no weight decay. Frozen parameters are left out. A model
    without `blocks` (e.g. the ResNet) gets lr_scale 1 everywhere.
    """
    if not 0.0 < layer_decay <= 1.0:
        raise ValueError(f"layer_decay must be in (0, 1], got {layer_decay}")
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    skip = set(no_weight_decay_list)
    num_layers = _num_blocks(model) + 1
    groups: dict[str, dict] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        no_decay = param.ndim == 1 or name in skip
        layer_id = vit_layer_id(name, num_layers) if num_layers > 1 else num_layers
        key = f"layer_{layer_id}_{'no_decay' if no_decay else 'decay'}"
        if key not in groups:
            groups[key] = {"params": [], "param_names": [], "weight_decay": 0.0 if no_decay else weight_decay,
                           "layer_id": layer_id, "lr_scale": layer_decay ** (num_layers - layer_id)}
        groups[key]["params"].append(param)
        groups[key]["param_names"].append(name)
    if not groups:
        raise ValueError("the model has no trainable parameters")
    return list(groups.values())


def warmup_cosine_factor(step: int, warmup_steps: int, total_steps: int) -> float:
    """lr multiplier: linear 0 -> 1 over warmup_steps, then half-cosine 1 -> 0 at total_steps, 0 after."""
    if step < warmup_steps:
        return step / warmup_steps
    if total_steps <= warmup_steps:
        return 0.0 if step >= total_steps else 1.0
    progress = min(1.0, (step - warmup_steps) / (total_steps - warmup_steps))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def schedule_steps(warmup_epochs: float, max_epochs: int, steps_per_epoch: int) -> tuple[int, int]:
    """(warmup_steps, total_steps) in optimiser steps."""
    if steps_per_epoch < 1:
        raise ValueError(f"steps_per_epoch must be >= 1, got {steps_per_epoch}")
    if max_epochs < 1:
        raise ValueError(f"max_epochs must be >= 1, got {max_epochs}")
    if not 0 <= warmup_epochs <= max_epochs:
        raise ValueError(f"warmup_epochs must be in [0, max_epochs={max_epochs}], got {warmup_epochs}")
    return round(warmup_epochs * steps_per_epoch), max_epochs * steps_per_epoch


class WarmupCosineLR(LRScheduler):
    """Per-step schedule: group lr = peak_lr * group["lr_scale"] * warmup_cosine_factor(step).

    Call .step() after every optimiser step (Lightning: interval="step").
    """

    def __init__(self, optimizer: torch.optim.Optimizer, *, peak_lr: float, warmup_steps: int, total_steps: int,
                 last_epoch: int = -1):
        if peak_lr <= 0:
            raise ValueError(f"peak_lr must be > 0, got {peak_lr}")
        if warmup_steps < 0 or total_steps < 1 or warmup_steps > total_steps:
            raise ValueError(f"need 0 <= warmup_steps ({warmup_steps}) <= total_steps ({total_steps}), total >= 1")
        self.peak_lr = peak_lr
        self.warmup_steps = warmup_steps
        self.total_steps = total_steps
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        factor = warmup_cosine_factor(self.last_epoch, self.warmup_steps, self.total_steps)
        return [self.peak_lr * group.get("lr_scale", 1.0) * factor for group in self.optimizer.param_groups]


def build_optimizer(model: nn.Module, *, lr: float, weight_decay: float, layer_decay: float = 1.0,
                    betas: tuple[float, float] = (0.9, 0.999)) -> torch.optim.AdamW:
    """AdamW over layer-decayed groups; each group starts at lr * lr_scale."""
    no_wd = getattr(model, "no_weight_decay", lambda: set())()
    groups = param_groups_layer_decay(model, weight_decay, layer_decay, no_wd)
    for group in groups:
        group["lr"] = lr * group["lr_scale"]
    return torch.optim.AdamW(groups, lr=lr, betas=betas)
