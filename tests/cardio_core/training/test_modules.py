import lightning as L
import numpy as np
import pytest
import torch

from cardio_core.labels import ACDC_GROUPS, CLASSES
from cardio_core.models import CmrResNet50, EcgViT, build_model_from_checkpoint
from cardio_core.training.datamodules import AcdcFoldDataModule, ChapmanDataModule
from cardio_core.training.callbacks import PeriodicCheckpoint
from cardio_core.training.modules import (ECG_MONITOR, TRAIN_LR, CmrFinetuneModule, EcgFinetuneModule,
                                          compute_pos_weight, ecg_metric_names, make_module)
from cardio_core.training.recipes import get_recipe

TINY = dict(signal_length=500, embed_dim=32, depth=2, num_heads=4)


def trainer(max_epochs, **kw):
    return L.Trainer(max_epochs=max_epochs, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                     enable_progress_bar=False, enable_model_summary=False, deterministic=True, **kw)


def ecg_data(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 12, 1000)).astype(np.float32)
    y = (rng.random((n, 20)) < 0.3).astype(np.float32)
    x[y[:, 0] == 1, 0] *= 4.0          # a learnable signal for AFIB
    return x, y


def test_compute_pos_weight():
    y = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 0], [0, 0, 0]])
    np.testing.assert_allclose(compute_pos_weight(y), [np.log(2.0), np.log(4.0), np.log(5.0)], rtol=1e-6)
    with pytest.raises(ValueError, match="only 0 and 1"):
        compute_pos_weight([[2, 0]])


def test_end_to_end_fit_logs_the_monitored_metric_and_steps_lr_per_batch(tmp_path):
    torch.manual_seed(0)
    dm = ChapmanDataModule(ecg_data(64, 0), ecg_data(32, 1), batch_size=16, crop_length=500)
    module = EcgFinetuneModule(EcgViT(**TINY), pos_weight=compute_pos_weight(dm.train_targets), lr=1e-3,
                               layer_decay=0.75, warmup_epochs=1, max_epochs=2)
    before = {k: v.clone() for k, v in module.model.state_dict().items()}
    saved = []
    ckpt = PeriodicCheckpoint(tmp_path, every_n_epochs=1, extra_meta={"recipe": "test"},
                              on_save=lambda p, m: saved.append((p, m)))
    tr = trainer(2, callbacks=[ckpt])
    tr.fit(module, datamodule=dm)
    logged = set(tr.callback_metrics)
    # method.md §7.9: the name used for model selection is one the module logs
    assert ECG_MONITOR in logged and get_recipe("thesis_ecg").monitor in logged
    assert set(ecg_metric_names(CLASSES)) <= logged and "val/f1/AFIB" in logged
    assert 0.0 <= float(tr.callback_metrics[ECG_MONITOR]) <= 1.0
    # schedule in optimiser steps: 4 batches/epoch, warm-up 1 epoch, 2 epochs in total
    sched = tr.lr_scheduler_configs[0].scheduler
    assert tr.lr_scheduler_configs[0].interval == "step"
    assert (sched.warmup_steps, sched.total_steps) == (4, 8) and sched.last_epoch == 8
    assert all(g["lr"] == pytest.approx(0.0, abs=1e-12) for g in tr.optimizers[0].param_groups)
    after = module.model.state_dict()
    assert not torch.equal(before["blocks.0.attn.qkv.weight"], after["blocks.0.attn.qkv.weight"])
    # periodic checkpoints carry the logged metrics and rebuild into the same model
    assert [p.name for p, _ in saved] == ["epoch_0001.pth", "epoch_0002.pth"]
    meta = saved[-1][1]
    assert meta["epoch"] == 2 and meta["recipe"] == "test" and ECG_MONITOR in meta["metrics"]
    rebuilt, report = build_model_from_checkpoint(saved[-1][0])
    assert report.missing_keys == [] and torch.equal(rebuilt.state_dict()["head.weight"], after["head.weight"])


def test_lr_logged_during_warmup_rises():
    torch.manual_seed(0)
    dm = ChapmanDataModule(ecg_data(32, 0), ecg_data(8, 1), batch_size=8, crop_length=500)
    module = EcgFinetuneModule(EcgViT(**TINY), lr=1e-3, warmup_epochs=2, max_epochs=4)
    lrs = []

    class Grab(L.Callback):
        def on_train_batch_start(self, tr, pl_module, batch, batch_idx):
            lrs.append([g["lr"] for g in tr.optimizers[0].param_groups])

    tr = trainer(2, callbacks=[Grab()], limit_val_batches=0)
    tr.fit(module, datamodule=dm)
    lrs = np.array(lrs)
    assert lrs.shape[0] == 8 and np.all(np.diff(lrs[:, -1]) > 0)
    # the deepest layer group stays at decay^(num_layers) of the head group (scale applied in Lightning too)
    scales = [g["lr_scale"] for g in tr.optimizers[0].param_groups]
    np.testing.assert_allclose(lrs[-1], np.array(scales) * lrs[-1][int(np.argmax(scales))])
    assert TRAIN_LR in tr.callback_metrics


def test_linear_probe_trains_only_the_head():
    torch.manual_seed(0)
    model = EcgViT(**TINY, drop_path_rate=0.5)
    dm = ChapmanDataModule(ecg_data(32, 0), ecg_data(8, 1), batch_size=8, crop_length=500)
    module = EcgFinetuneModule(model, lr=1e-2, warmup_epochs=0, max_epochs=1, linear_probe=True)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer(1).fit(module, datamodule=dm)
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"head.weight", "head.bias"}
    module.train()
    assert not model.blocks[1].training and model.head.training   # drop path off in the frozen encoder


def test_random_init_discards_loaded_weights():
    model = EcgViT(**TINY)
    with torch.no_grad():
        model.patch_embed.proj.weight.fill_(1.0)
    EcgFinetuneModule(model, random_init=True)
    assert not torch.all(model.patch_embed.proj.weight == 1.0)


def test_wrong_sizes_are_refused():
    with pytest.raises(ValueError, match="pos_weight"):
        EcgFinetuneModule(EcgViT(**TINY), pos_weight=np.ones(3))
    with pytest.raises(ValueError, match="20 outputs but 5 classes"):
        EcgFinetuneModule(EcgViT(**TINY), classes=ACDC_GROUPS)


@pytest.mark.slow
def test_cmr_fold_fit_logs_accuracy():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    images = rng.random((10, 3, 64, 64), dtype=np.float32)
    labels, folds = np.arange(10) % 5, np.arange(10) % 5
    dm = AcdcFoldDataModule(images, labels, folds, 0, batch_size=4)
    module = make_module(get_recipe("demo_cmr", max_epochs=1, warmup_epochs=0), CmrResNet50())
    assert isinstance(module, CmrFinetuneModule)
    tr = trainer(1)
    tr.fit(module, datamodule=dm)
    assert get_recipe("demo_cmr").monitor in tr.callback_metrics


def test_build_model_follows_the_recipe(tmp_path):
    from cardio_core.models import save_checkpoint
    from cardio_core.training.modules import build_model
    recipe = get_recipe("thesis_ecg", crop_length=500, drop_path=0.2)
    src = EcgViT(signal_length=500)
    path = save_checkpoint(tmp_path / "w.pth", src, meta={})
    model, report = build_model(recipe, path)
    assert model.signal_length == 500 and model.blocks[-1].drop_path1.drop_prob == pytest.approx(0.2)
    assert report.skipped_keys == ["head.weight", "head.bias"]
    assert torch.equal(model.pos_embed, src.pos_embed)
    model, report = build_model(get_recipe("thesis_ecg", crop_length=500, random_init=True), path)
    assert report is None and not torch.equal(model.pos_embed, src.pos_embed)


def test_a_cmr_fine_tune_runs_at_the_size_its_encoder_was_pre_trained_at(tmp_path):
    from cardio_core.models import CmrResNet50, save_checkpoint
    from cardio_core.training.modules import build_model
    from cardio_core.training.recipes import get_recipe
    path = save_checkpoint(tmp_path / "small.pth", CmrResNet50(num_classes=0, input_size=64),
                           meta={"head_trained": False})
    assert build_model(get_recipe("demo_cmr"), path)[0].input_size == 64          # the encoder's own size
    assert build_model(get_recipe("demo_cmr", input_size=96), path)[0].input_size == 96   # the recipe's
    assert build_model(get_recipe("demo_cmr"), None)[0].input_size == 210         # random weights: the method's
