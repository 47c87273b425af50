"""PreciseBatchNorm: BatchNorm statistics re-estimated from the training images before validation and saving."""
import lightning as L
import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from cardio_core.training.callbacks import PreciseBatchNorm


class TinyBn(L.LightningModule):
    """A linear layer, BatchNorm, a linear head: what lags is the BatchNorm's running average."""

    def __init__(self):
        super().__init__()
        self.model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Linear(3, 2))
        self.val_means = []

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self.model(x), y)

    def validation_step(self, batch, batch_idx):
        # what validation sees: the statistics in eval mode
        self.val_means.append(self.model[1].running_mean.clone())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.5)


def _data(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g) * 3 + 5     # far from BatchNorm's initial mean 0, var 1
    y = (x[:, 0] > 5).long()
    return x, y


def _population(model, x):
    with torch.no_grad():
        h = model[0](x)
    return h.mean(0), h.var(0, unbiased=True)


def test_recalibrate_gives_the_training_images_statistics_of_the_current_weights():
    torch.manual_seed(0)
    module = TinyBn()
    x, y = _data()
    cb = PreciseBatchNorm(TensorDataset(x, y), batch_size=len(x))   # one batch: exactly the population values
    assert cb.recalibrate(module)
    mean, var = _population(module.model, x)
    bn = module.model[1]
    torch.testing.assert_close(bn.running_mean, mean)
    torch.testing.assert_close(bn.running_var, var)
    assert bn.momentum == 0.1 and module.model.training   # momentum and mode restored


def test_a_model_without_batchnorm_is_left_alone():
    module = L.LightningModule()
    module.model = nn.Sequential(nn.Linear(4, 2), nn.LayerNorm(2))
    before = {k: v.clone() for k, v in module.model.state_dict().items()}
    assert not PreciseBatchNorm(TensorDataset(*_data())).recalibrate(module)
    after = module.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("with_validation", [True, False])
def test_validation_and_checkpoints_see_the_recalibrated_statistics(with_validation):
    """Hooked into a real fit: what validation reads (and what the epoch ends with, where a checkpoint is written)
    equals the statistics of the weights after the epoch's last step, not the lagging running average."""
    torch.manual_seed(0)
    x, y = _data()
    module = TinyBn()
    cb = PreciseBatchNorm(TensorDataset(x, y), batch_size=len(x))
    seen = {}

    class AtEpochEnd(L.Callback):      # listed after PreciseBatchNorm, like the checkpoint savers
        def on_train_epoch_end(self, trainer, pl_module):
            seen["mean"] = pl_module.model[1].running_mean.clone()
            seen["ref"] = _population(pl_module.model, x)[0]

    trainer = L.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                        limit_val_batches=1.0 if with_validation else 0, callbacks=[cb, AtEpochEnd()])
    loader = DataLoader(TensorDataset(x, y), batch_size=8, shuffle=False)
    trainer.fit(module, train_dataloaders=loader, val_dataloaders=loader if with_validation else None)
    torch.testing.assert_close(seen["mean"], seen["ref"])
    if with_validation:
        torch.testing.assert_close(module.val_means[0], seen["ref"])


def test_without_it_the_running_average_lags():
    """The failure it fixes: after 8 steps the default running average is far from the population mean."""
    torch.manual_seed(0)
    x, y = _data()
    module = TinyBn()
    trainer = L.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, train_dataloaders=DataLoader(TensorDataset(x, y), batch_size=8))
    lag = (module.model[1].running_mean - _population(module.model, x)[0]).abs().max()
    assert lag > 0.5


def test_arguments_are_validated():
    with pytest.raises(ValueError, match="batch_size"):
        PreciseBatchNorm(TensorDataset(*_data()), batch_size=0)


@pytest.mark.slow
def test_a_short_cmr_fold_fit_no_longer_predicts_one_class():
    """The demo's symptom (every ACDC fold predicting one class, accuracy 0.20) on separable synthetic images:
    bright vs dark discs. With precise_bn the fold's validation accuracy is well above chance (0.5)."""
    from cardio_core.models.cmr_resnet import CmrResNet50
    from cardio_core.training.datamodules import AcdcFoldDataModule, CmrDataset
    from cardio_core.training.modules import make_module
    from cardio_core.training.recipes import get_recipe
    rng = np.random.default_rng(0)
    n = 40
    labels = np.arange(n) % 2
    yy, xx = np.mgrid[:64, :64]
    disc = ((yy - 32) ** 2 + (xx - 32) ** 2 < (8 + 12 * labels[:, None, None]) ** 2).astype(np.float32)
    images = np.repeat(disc[:, None], 3, axis=1) * 0.8 + rng.random((n, 3, 64, 64), dtype=np.float32) * 0.2
    folds = np.arange(n) % 5
    recipe = get_recipe("demo_cmr", max_epochs=3, warmup_epochs=0)
    results = {}
    for precise in (True, False):
        torch.manual_seed(0)
        dm = AcdcFoldDataModule(images, labels, folds, 0, batch_size=8, augment=False)
        module = make_module(recipe, CmrResNet50(num_classes=5, input_size=64))
        callbacks = [PreciseBatchNorm(CmrDataset(images[dm.train_index], labels[dm.train_index], train=False))] \
            if precise else []
        tr = L.Trainer(max_epochs=3, accelerator="cpu", logger=False, enable_checkpointing=False,
                       enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                       callbacks=callbacks)
        tr.fit(module, datamodule=dm)
        results[precise] = float(tr.callback_metrics["val/accuracy"])
    # without it: every validation image in one class (0.5); with it: the discs told apart
    assert results[True] >= 0.75 and results[True] > results[False], results
