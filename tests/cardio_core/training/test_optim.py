import math

import numpy as np
import pytest
import torch

from cardio_core.models import EcgViT
from cardio_core.training.optim import (WarmupCosineLR, build_optimizer, param_groups_layer_decay, schedule_steps,
                                        vit_layer_id, warmup_cosine_factor)

TINY = dict(signal_length=500, embed_dim=48, depth=3, num_heads=4, num_classes=4)


def test_beit_layer_ids_and_scales():
    assert vit_layer_id("patch_embed.proj.weight", 4) == 0
    assert vit_layer_id("cls_token", 4) == 0 and vit_layer_id("pos_embed", 4) == 0
    assert vit_layer_id("blocks.0.attn.qkv.weight", 4) == 1
    assert vit_layer_id("blocks.2.mlp.fc2.bias", 4) == 3
    assert vit_layer_id("attention_pool.in_proj_weight", 4) == 4
    assert vit_layer_id("head.weight", 4) == 4
    groups = param_groups_layer_decay(EcgViT(**TINY), weight_decay=0.05, layer_decay=0.75,
                                      no_weight_decay_list={"pos_embed", "cls_token"})
    scale_of = {n: g["lr_scale"] for g in groups for n in g["param_names"]}
    wd_of = {n: g["weight_decay"] for g in groups for n in g["param_names"]}
    assert scale_of["patch_embed.proj.weight"] == pytest.approx(0.75 ** 4)
    assert scale_of["blocks.0.attn.qkv.weight"] == pytest.approx(0.75 ** 3)
    assert scale_of["blocks.2.attn.qkv.weight"] == pytest.approx(0.75)
    assert scale_of["head.weight"] == 1.0 and scale_of["fc_norm.weight"] == 1.0
    assert wd_of["pos_embed"] == 0.0 and wd_of["blocks.1.norm1.weight"] == 0.0 and wd_of["head.bias"] == 0.0
    assert wd_of["blocks.1.mlp.fc1.weight"] == 0.05


def test_frozen_parameters_are_left_out():
    model = EcgViT(**TINY)
    for name, p in model.named_parameters():
        p.requires_grad = name.startswith("head.")
    groups = param_groups_layer_decay(model, 0.05, 0.75)
    assert sorted(n for g in groups for n in g["param_names"]) == ["head.bias", "head.weight"]


def _run(model, lr, layer_decay, warmup_epochs, max_epochs, steps_per_epoch):
    opt = build_optimizer(model, lr=lr, weight_decay=0.05, layer_decay=layer_decay)
    warm, total = schedule_steps(warmup_epochs, max_epochs, steps_per_epoch)
    sched = WarmupCosineLR(opt, peak_lr=lr, warmup_steps=warm, total_steps=total)
    lrs = []                                   # lr used at each optimiser step, per group
    for _ in range(total):
        lrs.append([g["lr"] for g in opt.param_groups])
        opt.step()
        sched.step()
    return opt, np.array(lrs), warm, total


def test_scheduler_applies_layer_decay_per_group():
    """method.md §7.1: after warm-up every group's lr is base * decay^(num_layers - layer_id)."""
    model = EcgViT(**TINY)
    opt, lrs, warm, _ = _run(model, lr=1e-3, layer_decay=0.5, warmup_epochs=2, max_epochs=10, steps_per_epoch=5)
    at_peak = lrs[warm]
    for group, lr in zip(opt.param_groups, at_peak):
        assert lr == pytest.approx(1e-3 * 0.5 ** (4 - group["layer_id"]))
    assert len({round(v, 12) for v in at_peak}) == 5       # 5 distinct layers -> 5 distinct lrs


def test_lr_curve_over_a_whole_run():
    """method.md §7.2: warm-up lasts warmup_epochs * steps_per_epoch steps, then one monotone half-cosine to 0."""
    model = EcgViT(**TINY)
    steps_per_epoch, warmup_epochs, max_epochs = 7, 3, 12
    opt, lrs, warm, total = _run(model, lr=1e-3, layer_decay=0.75, warmup_epochs=warmup_epochs,
                                 max_epochs=max_epochs, steps_per_epoch=steps_per_epoch)
    head = [i for i, g in enumerate(opt.param_groups) if "head.weight" in g["param_names"]][0]
    curve = lrs[:, head]
    assert warm == 21 and total == 84 and len(curve) == 84
    assert curve[0] == 0.0
    assert np.all(np.diff(curve[: warm + 1]) > 0)                       # rising during warm-up
    assert curve[warm] == pytest.approx(1e-3) and curve.max() == pytest.approx(1e-3)
    assert int(np.argmax(curve)) == warm
    assert np.all(np.diff(curve[warm:]) <= 1e-15)                       # never rises again: no cycling
    assert curve[-1] < 1e-3 * 0.01
    mid = warm + (total - warm) // 2
    assert curve[mid] == pytest.approx(1e-3 * 0.5 * (1 + math.cos(math.pi * (mid - warm) / (total - warm))))
    assert warmup_cosine_factor(total, warm, total) == 0.0 and warmup_cosine_factor(10 * total, warm, total) == 0.0


def test_invalid_schedule_arguments():
    with pytest.raises(ValueError, match="warmup_epochs"):
        schedule_steps(30, 20, 10)
    with pytest.raises(ValueError, match="layer_decay"):
        param_groups_layer_decay(EcgViT(**TINY), 0.05, 1.5)
