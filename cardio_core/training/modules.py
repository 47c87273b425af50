"""LightningModules for fine-tuning (ECG multi-label, CMR 5-class) and the model builder of a recipe.

Logged metric names are module constants; the recipe's `monitor` and any hyper-parameter
search must use these (method.md §7.9: names that did not match the logged ones made a
search optimise nothing).
"""
from __future__ import annotations

import math
from typing import Sequence

import lightning as L
import numpy as np
import torch
from torch import nn

from cardio_core import labels as cardio_labels
from cardio_core.metrics.classification import accuracy, macro_average, per_class_scores
from cardio_core.models.registry import create_model
from cardio_core.training.distributed import dataset_length, gather_in_order
from cardio_core.training.optim import WarmupCosineLR, build_optimizer, schedule_steps

TRAIN_LOSS = "train/loss"
TRAIN_LR = "train/lr"                   # lr of the head group (scale 1)
VAL_LOSS = "val/loss"
VAL_MACRO_F1 = "val/macro_f1"
VAL_MACRO_PRECISION = "val/macro_precision"
VAL_MACRO_RECALL = "val/macro_recall"
VAL_F1_PREFIX = "val/f1/"               # + class name, e.g. "val/f1/AFIB"
VAL_ACCURACY = "val/accuracy"
VAL_MEAN_R = "val/mean_r"               # phenotype regression: the mean of the per-phenotype Pearson r on val
VAL_R_PREFIX = "val/r/"                 # + phenotype name, e.g. "val/r/LVEDV"
ECG_MONITOR = VAL_MACRO_F1              # model selection, method.md §4
CMR_MONITOR = VAL_ACCURACY
REGRESSION_MONITOR = VAL_MEAN_R         # method.md §8: early stopping on validation Pearson r


def ecg_metric_names(classes: Sequence[str] = cardio_labels.CLASSES, stage: str = "val") -> list[str]:
    """Every metric EcgFinetuneModule logs at the end of a validation (or test) epoch."""
    base = [VAL_LOSS, VAL_MACRO_F1, VAL_MACRO_PRECISION, VAL_MACRO_RECALL] + [VAL_F1_PREFIX + c for c in classes]
    return [name.replace("val/", f"{stage}/", 1) for name in base]


def compute_pos_weight(targets) -> np.ndarray:
    """Per-class BCE pos_weight = log(1 + negatives / positives) from training targets (n, C) of 0/1.

    A class without positives gets log(1 + negatives) (as if it had one positive) instead of inf.
    """
    targets = np.asarray(targets, dtype=np.float64)
    if targets.ndim != 2 or len(targets) == 0:
        raise ValueError(f"targets must be a non-empty (n_records, n_classes) matrix, got shape {targets.shape}")
    if not np.isin(targets, (0, 1)).all():
        raise ValueError("targets must contain only 0 and 1")
    positives = targets.sum(0)
    negatives = len(targets) - positives
    return np.log1p(negatives / np.maximum(positives, 1.0)).astype(np.float32)


class _FinetuneModule(L.LightningModule):
    """Shared optimiser/schedule, linear-probe and random-init logic."""

    def __init__(self, model: nn.Module, *, lr: float, weight_decay: float, layer_decay: float, warmup_epochs: float,
                 max_epochs: int, steps_per_epoch: int | None, linear_probe: bool, random_init: bool):
        super().__init__()
        if random_init:
            # A fresh instance of the same architecture: discards any loaded weights.
            model.load_state_dict(create_model(model.model_name, **model.model_kwargs).state_dict())
        self.model = model
        self.lr, self.weight_decay, self.layer_decay = lr, weight_decay, layer_decay
        self.warmup_epochs, self.max_epochs, self.steps_per_epoch = warmup_epochs, max_epochs, steps_per_epoch
        self.linear_probe = linear_probe
        self._outputs: dict[str, list] = {"val": [], "test": []}
        if linear_probe:
            for name, param in model.named_parameters():
                param.requires_grad = name.startswith("head.")

    def train(self, mode: bool = True):
        super().train(mode)
        if self.linear_probe and mode:
            # A frozen encoder also keeps BatchNorm statistics and drop path off.
            self.model.eval()
            self.model.head.train()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    # Evaluation: each batch's outputs and targets are kept per stage; at the stage's end the subclass's
    # _eval_epoch_end(stage) scores the whole set (under DDP, every rank's share gathered in order).
    def _eval_step(self, batch, stage: str):
        x, y = batch
        self._outputs[stage].append((self(x).float().detach().cpu(), y.detach().cpu()))

    def validation_step(self, batch, batch_idx):
        self._eval_step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._eval_step(batch, "test")

    def on_validation_epoch_end(self):
        self._eval_epoch_end("val")

    def on_test_epoch_end(self):
        self._eval_epoch_end("test")

    def _eval_epoch_end(self, stage: str) -> None:
        raise NotImplementedError

    def _steps_per_epoch(self) -> int:
        if self.steps_per_epoch is not None:
            return self.steps_per_epoch
        trainer = self.trainer
        if not trainer.max_epochs or trainer.max_epochs < 1:
            raise ValueError("set steps_per_epoch or give the Trainer max_epochs")
        return max(1, math.ceil(trainer.estimated_stepping_batches / trainer.max_epochs))

    def configure_optimizers(self):
        optimizer = build_optimizer(self.model, lr=self.lr, weight_decay=self.weight_decay,
                                    layer_decay=self.layer_decay)
        warmup_steps, total_steps = schedule_steps(self.warmup_epochs, self.max_epochs, self._steps_per_epoch())
        scheduler = WarmupCosineLR(optimizer, peak_lr=self.lr, warmup_steps=warmup_steps, total_steps=total_steps)
        # interval="step": the schedule is defined in optimiser steps (method.md §7.2)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1}}

    def _log_lr(self) -> None:
        groups = self.optimizers().optimizer.param_groups if self._trainer is not None else []
        top = [g["lr"] for g in groups if g.get("lr_scale", 1.0) == 1.0]
        if top:
            self.log(TRAIN_LR, top[0], on_step=True, on_epoch=False)


class EcgFinetuneModule(_FinetuneModule):
    """Multi-label fine-tuning with BCEWithLogits(pos_weight); validation macro F1 at threshold 0.5."""

    def __init__(self, model: nn.Module, *, pos_weight=None, lr: float = 3e-6, weight_decay: float = 0.05,
                 layer_decay: float = 0.75, warmup_epochs: float = 20, max_epochs: int = 200,
                 steps_per_epoch: int | None = None, linear_probe: bool = False, random_init: bool = False,
                 classes: Sequence[str] = cardio_labels.CLASSES, threshold: float = 0.5):
        super().__init__(model, lr=lr, weight_decay=weight_decay, layer_decay=layer_decay,
                         warmup_epochs=warmup_epochs, max_epochs=max_epochs, steps_per_epoch=steps_per_epoch,
                         linear_probe=linear_probe, random_init=random_init)
        self.classes = tuple(classes)
        if getattr(model, "num_classes", len(self.classes)) != len(self.classes):
            raise ValueError(f"model has {model.num_classes} outputs but {len(self.classes)} classes were given")
        if pos_weight is not None:
            pos_weight = torch.as_tensor(np.asarray(pos_weight, dtype=np.float32))
            if pos_weight.shape != (len(self.classes),):
                raise ValueError(f"pos_weight must have one value per class ({len(self.classes)}), "
                                 f"got shape {tuple(pos_weight.shape)}")
        self.register_buffer("pos_weight", pos_weight, persistent=False)
        self.threshold = threshold
        self.save_hyperparameters({"lr": lr, "weight_decay": weight_decay, "layer_decay": layer_decay,
                                   "warmup_epochs": warmup_epochs, "max_epochs": max_epochs,
                                   "linear_probe": linear_probe, "random_init": random_init,
                                   "threshold": threshold, "classes": list(self.classes)})

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return nn.functional.binary_cross_entropy_with_logits(logits.float(), targets.float(),
                                                              pos_weight=self.pos_weight)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = self.loss(self(x), y)
        self.log(TRAIN_LOSS, loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=len(y), sync_dist=True)
        self._log_lr()
        return loss

    def _eval_epoch_end(self, stage: str) -> None:
        outputs, self._outputs[stage] = self._outputs[stage], []
        if not outputs:
            return
        # Under DDP each rank saw its share: the metrics are computed over the whole set, the same on every
        # rank (sync_dist's mean of equal values changes nothing; it only tells Lightning they are in step).
        logits, targets = _gathered(self, stage, outputs)
        self.log(f"{stage}/loss", float(self.loss(logits, targets)), prog_bar=stage == "val", sync_dist=True)
        probs = torch.sigmoid(logits).numpy()
        scores = per_class_scores(targets.numpy().astype(int), probs, self.classes, threshold=self.threshold)
        macro = macro_average(scores)
        self.log(f"{stage}/macro_f1", macro["f1"], prog_bar=stage == "val", sync_dist=True)
        self.log(f"{stage}/macro_precision", macro["precision"], sync_dist=True)
        self.log(f"{stage}/macro_recall", macro["recall"], sync_dist=True)
        for name, f1 in scores["f1"].items():
            self.log(f"{stage}/f1/{name}", float(f1), sync_dist=True)


class CmrFinetuneModule(_FinetuneModule):
    """5-class fine-tuning with cross-entropy; validation accuracy."""

    def __init__(self, model: nn.Module, *, lr: float = 3e-3, weight_decay: float = 1e-4, layer_decay: float = 1.0,
                 warmup_epochs: float = 15, max_epochs: int = 150, steps_per_epoch: int | None = None,
                 linear_probe: bool = False, random_init: bool = False,
                 classes: Sequence[str] = cardio_labels.ACDC_GROUPS):
        super().__init__(model, lr=lr, weight_decay=weight_decay, layer_decay=layer_decay,
                         warmup_epochs=warmup_epochs, max_epochs=max_epochs, steps_per_epoch=steps_per_epoch,
                         linear_probe=linear_probe, random_init=random_init)
        self.classes = tuple(classes)
        self.save_hyperparameters({"lr": lr, "weight_decay": weight_decay, "layer_decay": layer_decay,
                                   "warmup_epochs": warmup_epochs, "max_epochs": max_epochs,
                                   "linear_probe": linear_probe, "random_init": random_init,
                                   "classes": list(self.classes)})

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.cross_entropy(self(x).float(), y)
        self.log(TRAIN_LOSS, loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=len(y), sync_dist=True)
        self._log_lr()
        return loss

    def _eval_epoch_end(self, stage: str) -> None:
        outputs, self._outputs[stage] = self._outputs[stage], []
        if not outputs:
            return
        logits, targets = _gathered(self, stage, outputs)
        self.log(f"{stage}/loss", float(nn.functional.cross_entropy(logits, targets)), sync_dist=True)
        self.log(f"{stage}/accuracy", accuracy(targets.numpy(), logits.argmax(1).numpy()), prog_bar=True,
                 sync_dist=True)


def masked_mse(predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the finite targets only: a subject missing one phenotype still trains the others.
    A batch without any finite target gives 0 with a gradient (never NaN)."""
    finite = torch.isfinite(targets)
    diff = torch.where(finite, predictions.float() - torch.nan_to_num(targets.float()), torch.zeros_like(predictions))
    return (diff * diff).sum() / finite.sum().clamp(min=1)


class EcgRegressionModule(_FinetuneModule):
    """CMR phenotypes from the ECG (method.md §8): one output per phenotype, MSE on targets standardised with the
    training split's mean and SD (the pipeline standardises; missing values are NaN and left out of the loss), and
    validation Pearson r per phenotype and their mean (the monitor)."""

    def __init__(self, model: nn.Module, *, names: Sequence[str], lr: float = 3e-6, weight_decay: float = 0.05,
                 layer_decay: float = 0.75, warmup_epochs: float = 20, max_epochs: int = 200,
                 steps_per_epoch: int | None = None, linear_probe: bool = False, random_init: bool = False):
        super().__init__(model, lr=lr, weight_decay=weight_decay, layer_decay=layer_decay,
                         warmup_epochs=warmup_epochs, max_epochs=max_epochs, steps_per_epoch=steps_per_epoch,
                         linear_probe=linear_probe, random_init=random_init)
        self.names = tuple(names)
        if getattr(model, "num_classes", len(self.names)) != len(self.names):
            raise ValueError(f"model has {model.num_classes} outputs but {len(self.names)} phenotypes were given")
        self.save_hyperparameters({"lr": lr, "weight_decay": weight_decay, "layer_decay": layer_decay,
                                   "warmup_epochs": warmup_epochs, "max_epochs": max_epochs,
                                   "linear_probe": linear_probe, "random_init": random_init,
                                   "names": list(self.names)})

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = masked_mse(self(x), y)
        self.log(TRAIN_LOSS, loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=len(y), sync_dist=True)
        self._log_lr()
        return loss

    def _eval_epoch_end(self, stage: str) -> None:
        from cardio_core.metrics.phenotypes import pearson_r
        outputs, self._outputs[stage] = self._outputs[stage], []
        if not outputs:
            return
        pred, targets = _gathered(self, stage, outputs)
        self.log(f"{stage}/loss", float(masked_mse(pred, targets)), sync_dist=True)
        r = {name: pearson_r(targets[:, j].numpy(), pred[:, j].numpy()) for j, name in enumerate(self.names)}
        # An undefined r (a constant prediction) counts as no correlation in the monitor, so it never wins the
        # selection; per phenotype it is left out (checkpoint metadata holds finite numbers only).
        self.log(f"{stage}/mean_r", float(np.mean([v if np.isfinite(v) else 0.0 for v in r.values()])),
                 prog_bar=stage == "val", sync_dist=True)
        for name, v in r.items():
            if np.isfinite(v):
                self.log(f"{stage}/r/{name}", float(v), sync_dist=True)


def _gathered(module: L.LightningModule, stage: str, outputs: list) -> tuple[torch.Tensor, torch.Tensor]:
    """(outputs, targets) of a whole evaluation set: this rank's batches, then every rank's in dataset order."""
    logits = torch.cat([o for o, _ in outputs])
    targets = torch.cat([t for _, t in outputs])
    trainer = module._trainer
    if trainer is None or getattr(trainer, "world_size", 1) == 1:
        return logits, targets
    loaders = trainer.val_dataloaders if stage == "val" else trainer.test_dataloaders
    total = dataset_length(loaders)
    return gather_in_order(module, logits, total), gather_in_order(module, targets, total)


def make_module(recipe, model: nn.Module, *, pos_weight=None, steps_per_epoch: int | None = None,
                classes: Sequence[str] | None = None) -> _FinetuneModule:
    """The fine-tuning module a Recipe describes."""
    common = dict(lr=recipe.lr, weight_decay=recipe.weight_decay, layer_decay=recipe.layer_decay,
                  warmup_epochs=recipe.warmup_epochs, max_epochs=recipe.max_epochs, steps_per_epoch=steps_per_epoch,
                  linear_probe=recipe.linear_probe, random_init=recipe.random_init)
    if recipe.modality == "ecg":
        return EcgFinetuneModule(model, pos_weight=pos_weight, threshold=recipe.threshold,
                                 classes=classes or cardio_labels.CLASSES, **common)
    return CmrFinetuneModule(model, classes=classes or cardio_labels.ACDC_GROUPS, **common)


def build_model(recipe, weights_path=None, *, num_classes: int | None = None, load_head: bool = False):
    """The encoder + head a Recipe trains: (model, LoadReport or None). The one model builder of training.

    ECG models get the recipe's drop path and crop length. Weights (a path or a
    models.weights.WeightsFile already read) are loaded unless `weights_path` is None or the
    recipe asks for a randomly initialised encoder. The file's own classifier is left out by
    default (a new head for the new task).

    ECG pooling (method.md §5): a linear probe reads a frozen encoder without a trained attention
    pool through its pre-training pooling (mean over patch tokens, then the final norm), never through
    a frozen random pool. Whatever starts fresh (attention pool, fc_norm, head) is initialised from the
    recipe's seed alone, so the same run seed gives the same starting pool in any process.
    """
    from cardio_core.models.weights import WeightsFile, load_weights
    source = None
    if weights_path is not None and not recipe.random_init:
        source = weights_path if isinstance(weights_path, WeightsFile) else WeightsFile.read(weights_path)
    if recipe.modality == "ecg":
        pool = "attention"
        if recipe.linear_probe and (source is None or not source.has_trained_pool):
            pool = "mean_norm"
        model = create_model("ecg_vit_small", num_classes=num_classes or len(cardio_labels.CLASSES),
                             signal_length=recipe.crop_length, drop_path_rate=recipe.drop_path, global_pool=pool)
    else:
        # the size the encoder was pre-trained at (an MMCL demo encoder: small), unless the recipe sets one
        size = recipe.input_size or (int(source.model_kwargs.get("input_size", 210)) if source is not None else 210)
        model = create_model("cmr_resnet50", num_classes=num_classes or len(cardio_labels.ACDC_GROUPS),
                             input_size=size)
    if source is None:
        if recipe.modality == "ecg":
            model.reset_fresh_modules(recipe.seed)
        return model, None
    report = load_weights(model, source, modality=recipe.modality, load_head=load_head)
    if recipe.modality == "ecg":
        fresh = tuple(name for name in ("attention_pool", "fc_norm", "head")
                      if any(k.startswith(name + ".") for k in report.missing_keys))
        if fresh:
            model.reset_fresh_modules(recipe.seed, only=fresh)
    return model, report
