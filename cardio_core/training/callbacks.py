"""Lightning callbacks of the training jobs: periodic checkpoints, resume points and job progress.

Module-level classes that take the trainer from their hooks; the job's side (progress
file, cancel flag, checkpoint registration) comes in through small callables or a
`reporter` with report_progress(...) and should_stop().

Under DDP every rank runs these hooks: rank zero alone writes the files and calls the job's
side (registration, analysis), and every rank then waits at a barrier until it is done.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Callable

import lightning as L
import torch

from cardio_core import faults
from cardio_core.models.weights import save_checkpoint
from cardio_core.training.distributed import any_rank, barrier


def _is_save_epoch(epoch: int, every: int, max_epochs: int | None) -> bool:
    return epoch % every == 0 or (max_epochs is not None and epoch >= max_epochs)


class PeriodicCheckpoint(L.Callback):
    """Save a CardioScope checkpoint every `every_n_epochs` epochs (and at the last epoch).

    Files are <dirpath>/epoch_<NNNN>.pth; meta holds the epoch, global step, the logged
    metrics and `extra_meta`. `on_save(path, meta)` lets the caller register each file.
    """

    def __init__(self, dirpath: str | Path, every_n_epochs: int = 10, *, extra_meta: dict | None = None,
                 on_save: Callable[[Path, dict], None] | None = None):
        if every_n_epochs < 1:
            raise ValueError(f"every_n_epochs must be >= 1, got {every_n_epochs}")
        self.dirpath, self.every_n_epochs = Path(dirpath), every_n_epochs
        self.extra_meta, self.on_save = dict(extra_meta or {}), on_save
        self.saved: list[Path] = []

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch + 1   # epochs completed
        if not _is_save_epoch(epoch, self.every_n_epochs, trainer.max_epochs):
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()
                   if torch.is_tensor(v) and v.numel() == 1 and math.isfinite(float(v))}
        meta = {**self.extra_meta, "epoch": epoch, "global_step": trainer.global_step, "metrics": metrics}
        if trainer.is_global_zero:
            path = save_checkpoint(self.dirpath / f"epoch_{epoch:04d}.pth", pl_module.model, meta=meta)
            faults.point("checkpoint_written")
            self.saved.append(path)
            if self.on_save is not None:
                self.on_save(path, meta)
        barrier(trainer, f"checkpoint epoch {epoch}")


class PreciseBatchNorm(L.Callback):
    """Re-estimate the BatchNorm running statistics of `pl_module.<attribute>` on the unaugmented training
    images before each validation (and before an epoch's checkpoint when no validation ran), so validation,
    checkpoints and embeddings see population statistics of the weights as they are now.

    Why: BatchNorm's running averages (momentum 0.1) lag the weights. After the few dozen steps of a short
    run (the CPU demo) they still reflect the first steps, and a model with near-zero training loss predicts
    one class for every validation image in eval mode ("PreciseBN", Wu & Johnson 2021, "Rethinking 'Batch'
    in BatchNorm"). Only running_mean / running_var change; no learned parameter does. torch's
    swa_utils.update_bn does the re-estimation (a cumulative average over the batches, in train mode, without
    gradients). `dataset` yields unaugmented items in a fixed order; `input_index` picks the model input of an
    item (0 for (image, label), 1 for an (ecg, cmr) pair). At most `max_samples` items are used (the first
    ones), the same on every rank, so all ranks compute the same statistics without communicating.
    A module without BatchNorm layers (the ECG ViT) is left alone.
    """

    def __init__(self, dataset, *, attribute: str = "model", input_index: int = 0, batch_size: int = 32,
                 max_samples: int = 1024):
        if batch_size < 1 or max_samples < 1:
            raise ValueError(f"batch_size and max_samples must be >= 1, got {batch_size}, {max_samples}")
        self.dataset, self.attribute, self.input_index = dataset, attribute, int(input_index)
        self.batch_size, self.max_samples = int(batch_size), int(max_samples)
        self._done_epoch: int | None = None

    def _batches(self, device):
        n = min(len(self.dataset), self.max_samples)
        for start in range(0, n, self.batch_size):
            items = [self.dataset[i][self.input_index] for i in range(start, min(n, start + self.batch_size))]
            yield torch.stack(items).to(device)

    def recalibrate(self, pl_module: L.LightningModule) -> bool:
        """Re-estimate now; False (nothing done) when the module has no BatchNorm layer or no data."""
        from torch.optim.swa_utils import update_bn
        model = getattr(pl_module, self.attribute)
        has_bn = any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())
        if not has_bn or len(self.dataset) == 0:
            return False
        # validation runs under inference mode: the statistics are ordinary buffers, updated outside it
        with torch.inference_mode(False), torch.no_grad():
            update_bn(self._batches(pl_module.device), model, device=pl_module.device)
        return True

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        from lightning.pytorch.trainer.states import TrainerFn
        if trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING:   # not a trainer.validate() call
            return
        self.recalibrate(pl_module)
        self._done_epoch = trainer.current_epoch

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # no validation this epoch (no validation split): before the checkpoint callbacks listed after this one
        if self._done_epoch != trainer.current_epoch:
            self.recalibrate(pl_module)
            self._done_epoch = trainer.current_epoch


class PeriodicEncoderPair(L.Callback):
    """PeriodicCheckpoint for contrastive pre-training: every `every_n_epochs` epochs (and at the last one) the
    module's two encoders and projectors go to <dirpath>/epoch_<NNNN>/{ecg,cmr,projectors}.pth through its
    save_encoders; `on_save(paths, meta)` registers them. Rank zero writes; the other ranks wait."""

    def __init__(self, dirpath: str | Path, every_n_epochs: int = 10, *, extra_meta: dict | None = None,
                 on_save: Callable[[dict, dict], None] | None = None):
        if every_n_epochs < 1:
            raise ValueError(f"every_n_epochs must be >= 1, got {every_n_epochs}")
        self.dirpath, self.every_n_epochs = Path(dirpath), every_n_epochs
        self.extra_meta, self.on_save = dict(extra_meta or {}), on_save
        self.saved: list[Path] = []

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch + 1
        if not _is_save_epoch(epoch, self.every_n_epochs, trainer.max_epochs):
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()
                   if torch.is_tensor(v) and v.numel() == 1 and math.isfinite(float(v))}
        meta = {**self.extra_meta, "epoch": epoch, "global_step": trainer.global_step, "metrics": metrics}
        if trainer.is_global_zero:
            folder = self.dirpath / f"epoch_{epoch:04d}"
            folder.mkdir(parents=True, exist_ok=True)
            paths = pl_module.save_encoders(folder / "ecg.pth", folder / "cmr.pth", folder / "projectors.pth",
                                            meta=meta)
            faults.point("checkpoint_written")
            self.saved.append(folder)
            if self.on_save is not None:
                self.on_save(paths, meta)
        barrier(trainer, f"checkpoint epoch {epoch}")


def save_trainer_state(trainer: L.Trainer, path: str | Path) -> Path:
    """The full Lightning state (optimiser, schedule, epoch) written to a temporary name, then renamed."""
    """Every rank calls it (Trainer.save_checkpoint is collective); rank zero writes and renames."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    trainer.save_checkpoint(tmp)
    if trainer.is_global_zero:
        os.replace(tmp, path)
    return path


# Classes a resume state may contain besides tensors and plain containers (none today: the optimiser,
# schedule and loop states are dicts of tensors and numbers). Anything else is refused, not unpickled.
RESUME_SAFE_GLOBALS: list = []


def check_resume_state(path: str | Path) -> Path:
    """Refuse a resume state that needs more than weights-only unpickling (anyone who can write to runs/
    must not get code execution when someone presses Resume); the Trainer then loads it weights-only too."""
    from cardio_core.errors import CardioError
    path = Path(path)
    try:
        with torch.serialization.safe_globals(RESUME_SAFE_GLOBALS):
            state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CardioError(f"{path}: resume state not found") from None
    except Exception as exc:  # UnpicklingError for a disallowed global, anything else for a corrupt file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CardioError(f"{path}: refused as a resume state (it does not load weights-only): {first}") from None
    if not isinstance(state, dict) or "state_dict" not in state:
        raise CardioError(f"{path}: not a Lightning resume state")
    return path


def fit_resuming(trainer: L.Trainer, module, *, datamodule, resume_from) -> None:
    """trainer.fit, continuing from `resume_from` (checked, then loaded weights-only) when given."""
    ckpt = str(check_resume_state(resume_from)) if resume_from else None
    with torch.serialization.safe_globals(RESUME_SAFE_GLOBALS):
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt, weights_only=True)


class ResumeState(L.Callback):
    """Every `every_n_epochs` epochs (and at the last) write the trainer's state to `path`, then call
    `on_written(path, epoch, step)` so the job can make it its resume point.

    Placed after PeriodicCheckpoint in the callback list, it runs once that epoch's checkpoint
    has been written and handled, so a resume never starts past an unhandled checkpoint.
    """

    def __init__(self, path: str | Path, every_n_epochs: int, *,
                 on_written: Callable[[Path, int, int], None] | None = None):
        if every_n_epochs < 1:
            raise ValueError(f"every_n_epochs must be >= 1, got {every_n_epochs}")
        self.path, self.every_n_epochs, self.on_written = Path(path), every_n_epochs, on_written

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch + 1
        if not _is_save_epoch(epoch, self.every_n_epochs, trainer.max_epochs):
            return
        path = save_trainer_state(trainer, self.path)
        if self.on_written is not None and trainer.is_global_zero:
            self.on_written(path, epoch, trainer.global_step)
        barrier(trainer, f"resume state epoch {epoch}")


class JobProgress(L.Callback):
    """Progress to the job's reporter after every batch and validation; a cancel request stops the
    Trainer after the current step."""

    def __init__(self, reporter, total_epochs: int, label: str):
        self.reporter, self.total_epochs, self.label = reporter, total_epochs, label

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        faults.point("train_batch")
        self.reporter.report_progress(epoch=trainer.current_epoch, step=trainer.global_step,
                                      total_epochs=self.total_epochs, total_steps=trainer.estimated_stepping_batches,
                                      message=self.label)
        # every rank stops at the same step (a rank that stopped alone would leave the others waiting)
        if any_rank(trainer, self.reporter.should_stop()):
            trainer.should_stop = True

    def on_validation_epoch_end(self, trainer, pl_module):
        # one level of "stage/name" only: the per-class "val/f1/AFIB" values would swamp the progress file
        metrics = {k: round(float(v), 4) for k, v in trainer.callback_metrics.items()
                   if torch.is_tensor(v) and v.numel() == 1 and k.count("/") == 1 and math.isfinite(float(v))}
        self.reporter.report_progress(epoch=trainer.current_epoch + 1, step=trainer.global_step,
                                      total_epochs=self.total_epochs, metrics=metrics, message=self.label, force=True)


def early_stopping(patience: int, monitor: str) -> list:
    """[EarlyStopping on `monitor` (higher is better)] for a recipe's patience, [] for patience 0: stop after
    `patience` validations in a row without a better value (method.md §8: early stopping on validation AUROC or
    Pearson r). The best checkpoint is chosen on the same monitor (pipeline.runs.mark_best_checkpoint)."""
    if patience < 0:
        raise ValueError(f"patience must be >= 0, got {patience}")
    if not patience:
        return []
    from lightning.pytorch.callbacks import EarlyStopping
    return [EarlyStopping(monitor=monitor, mode="max", patience=patience, check_finite=True)]
