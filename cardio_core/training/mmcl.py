"""Multimodal contrastive pre-training (MMCL, method.md §8): the CLIP loss and the LightningModule.

Both encoders train: the ECG ViT read through its pre-training pooling (the mean over patch tokens, then its
final `norm`: `EcgViT(global_pool="mean_norm")`) and the CMR ResNet-50's 2048-d global-average-pooled features.
Each goes through its own projector (384 -> 512 -> 128, 2048 -> 512 -> 128, l2-normalised) into a shared
space where matching ECG/CMR pairs of one subject are pulled together and the other subjects' images (or ECGs)
of the batch are the negatives.

Loss direction, checked against the published code (utils/clip_loss.py, called as criterion(z_imaging, z_ecg)):
it computes logits = z_img . z_ecg^T / tau and weighs CE(logits) -- the CMR image as anchor, rows -- with
lambda_0, and CE(logits^T) -- the ECG as anchor -- with 1 - lambda_0. Here logits = z_ecg . z_cmr^T / tau,
L_ecg = CE(logits) (ECG anchors), L_cmr = CE(logits^T) (CMR anchors) and L = (1 - lambda) L_ecg + lambda L_cmr:
the same loss, with lambda = 0.75 (the paper's value; the code's default is 0.5).
"""
from __future__ import annotations

import math
from pathlib import Path

import lightning as L
import torch
from torch import nn

from cardio_core.models.cmr_resnet import CmrResNet50
from cardio_core.models.ecg_vit import PRETRAINING_POOL, EcgViT
from cardio_core.models.projector import ProjectionHead, load_projectors, save_projectors
from cardio_core.models.weights import FRESH_PREFIXES, save_checkpoint
from cardio_core.training.distributed import dataset_length, gather_in_order, world_size
from cardio_core.training.optim import WarmupCosineLR, build_optimizer, schedule_steps

__all__ = ["clip_loss", "retrieval_top1", "MmclPretrainModule", "build_mmcl_encoders", "load_projectors",
           "MMCL_TRAIN_LOSS", "MMCL_VAL_LOSS", "MMCL_VAL_TOP1", "MMCL_MONITOR"]

MMCL_TRAIN_LOSS = "train/loss"
MMCL_TRAIN_LOSS_ECG = "train/loss_ecg"
MMCL_TRAIN_LOSS_CMR = "train/loss_cmr"
MMCL_TRAIN_LR = "train/lr"
MMCL_VAL_LOSS = "val/loss"
MMCL_VAL_LOSS_ECG = "val/loss_ecg"
MMCL_VAL_LOSS_CMR = "val/loss_cmr"
MMCL_VAL_TOP1 = "val/top1"            # ECG -> CMR retrieval over the whole validation set
MMCL_VAL_TOP1_CMR = "val/top1_cmr"    # CMR -> ECG
MMCL_MONITOR = MMCL_VAL_TOP1


def clip_loss(z_ecg: torch.Tensor, z_cmr: torch.Tensor, temperature: float = 0.1,
              lambda_: float = 0.75) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """CLIP-style InfoNCE with cross-modal negatives only: (loss, {"loss_ecg", "loss_cmr"}).

    z_ecg, z_cmr: (N, d) projections of N pairs (row i of each = subject i); they are l2-normalised here
    (a no-op for ProjectionHead outputs). logits = z_ecg z_cmr^T / temperature;
    loss_ecg = CE(logits, arange(N)) (each ECG must pick its own image among the N), loss_cmr = CE(logits^T,
    arange(N)) (each image must pick its ECG); loss = (1 - lambda_) loss_ecg + lambda_ loss_cmr.
    The two directional terms are returned unweighted. Computed in float32.
    """
    if z_ecg.ndim != 2 or z_ecg.shape != z_cmr.shape:
        raise ValueError(f"z_ecg and z_cmr must both be (N, d), got {tuple(z_ecg.shape)} and {tuple(z_cmr.shape)}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if not 0.0 <= lambda_ <= 1.0:
        raise ValueError(f"lambda_ must be in [0, 1], got {lambda_}")
    z_ecg = nn.functional.normalize(z_ecg.float(), dim=1)
    z_cmr = nn.functional.normalize(z_cmr.float(), dim=1)
    logits = z_ecg @ z_cmr.T / temperature
    labels = torch.arange(len(logits), device=logits.device)
    loss_ecg = nn.functional.cross_entropy(logits, labels)
    loss_cmr = nn.functional.cross_entropy(logits.T, labels)
    return (1.0 - lambda_) * loss_ecg + lambda_ * loss_cmr, {"loss_ecg": loss_ecg, "loss_cmr": loss_cmr}


def retrieval_top1(z_query: torch.Tensor, z_gallery: torch.Tensor) -> float:
    """Share of queries whose most similar gallery item (dot product) is their own pair (row i <-> row i).
    Chance level is 1/N. Ties go to the lowest index (argmax)."""
    if z_query.ndim != 2 or z_query.shape != z_gallery.shape or len(z_query) == 0:
        raise ValueError(f"need two non-empty (N, d) matrices, got {tuple(z_query.shape)}, {tuple(z_gallery.shape)}")
    best = (z_query.float() @ z_gallery.float().T).argmax(dim=1)
    return float((best == torch.arange(len(best), device=best.device)).float().mean())


def build_mmcl_encoders(ecg_weights=None, cmr_weights=None, *, signal_length: int = 2500, seed: int = 0,
                        cmr_size: int | None = None):
    """(ecg_encoder, cmr_encoder, {"ecg": LoadReport | None, "cmr": ...}) ready for MmclPretrainModule.

    The ECG ViT is built with its pre-training pooling and no classifier (EcgViT(num_classes=0,
    global_pool="mean_norm")), the ResNet-50 without a classifier; each loads its weights (a path or a
    models.weights.WeightsFile: an MDM / released signal encoder, a SimCLR / released image encoder) when given,
    else starts from a random initialisation drawn from `seed` alone. `cmr_size` is the CMR encoder's input size
    (its `input_size`, kept in its checkpoint so it is fine-tuned and embedded at the size it was trained at);
    None keeps the model's default.
    """
    from cardio_core.models.registry import create_model
    from cardio_core.models.weights import WeightsFile, load_weights
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        ecg = create_model("ecg_vit_small", num_classes=0, signal_length=signal_length, global_pool=PRETRAINING_POOL)
        cmr_kwargs = {} if cmr_size is None else {"input_size": int(cmr_size)}
        cmr = create_model("cmr_resnet50", num_classes=0, **cmr_kwargs)
    reports = {"ecg": None, "cmr": None}
    for key, model, source in (("ecg", ecg, ecg_weights), ("cmr", cmr, cmr_weights)):
        if source is not None:
            parsed = source if isinstance(source, WeightsFile) else WeightsFile.read(source)
            reports[key] = load_weights(model, parsed, modality=key, load_head=False)
    return ecg, cmr, reports


class MmclPretrainModule(L.LightningModule):
    """Contrastive ECG <-> CMR pre-training. Batches are (ecg (B, 1, 12, T), cmr (B, 3, H, W)) pairs.

    Optimiser: AdamW (lr, weight_decay; biases, norms, the position embedding and CLS token without decay)
    over both encoders and both projectors, one lr for all; a linear warm-up over `warmup_epochs` (default
    10 % of max_epochs) then a half-cosine to 0 at max_epochs, stepped every optimiser step.

    Under DDP the projections of every rank are gathered (with gradients) before the loss, so the negatives of a
    step are the whole global batch, as on one device. Validation: val/loss as the mean CLIP loss of consecutive
    chunks of `val_batch_size` pairs in dataset order, val/top1 (ECG -> CMR) and val/top1_cmr (CMR -> ECG) over
    all validation pairs, computed from the gathered projections: the same numbers on any number of ranks.
    """

    def __init__(self, ecg_encoder: EcgViT, cmr_encoder: CmrResNet50, *, hidden_dim: int = 512,
                 out_dim: int = 128, temperature: float = 0.1, lambda_: float = 0.75, lr: float = 3e-4,
                 weight_decay: float = 1e-4, warmup_epochs: float | None = None, max_epochs: int = 300,
                 steps_per_epoch: int | None = None, val_batch_size: int | None = None, seed: int = 0):
        super().__init__()
        if not isinstance(ecg_encoder, EcgViT):
            raise ValueError(f"ecg_encoder must be an EcgViT, got {type(ecg_encoder).__name__}")
        if ecg_encoder.global_pool != PRETRAINING_POOL:
            raise ValueError(f"ecg_encoder must pool as in pre-training (global_pool={PRETRAINING_POOL!r}: mean over "
                             f"patch tokens, then the final norm), got {ecg_encoder.global_pool!r}; "
                             "build it with build_mmcl_encoders()")
        if not isinstance(cmr_encoder, CmrResNet50):
            raise ValueError(f"cmr_encoder must be a CmrResNet50, got {type(cmr_encoder).__name__}")
        if not temperature > 0 or not 0.0 <= lambda_ <= 1.0:
            raise ValueError(f"need temperature > 0 and lambda_ in [0, 1], got {temperature}, {lambda_}")
        if not lr > 0 or weight_decay < 0 or max_epochs < 1:
            raise ValueError(f"need lr > 0, weight_decay >= 0, max_epochs >= 1, got {lr}, {weight_decay}, {max_epochs}")
        if warmup_epochs is None:
            warmup_epochs = 0.1 * max_epochs
        if not 0 <= warmup_epochs <= max_epochs:
            raise ValueError(f"warmup_epochs must be in [0, max_epochs={max_epochs}], got {warmup_epochs}")
        self.ecg_encoder, self.cmr_encoder = ecg_encoder, cmr_encoder
        # the heads start from `seed` alone, whatever the global RNG has done
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            self.ecg_projector = ProjectionHead(ecg_encoder.embed_dim, hidden_dim, out_dim)
            self.cmr_projector = ProjectionHead(cmr_encoder.num_features, hidden_dim, out_dim)
        self.temperature, self.lambda_ = float(temperature), float(lambda_)
        self.lr, self.weight_decay = float(lr), float(weight_decay)
        self.warmup_epochs, self.max_epochs, self.steps_per_epoch = float(warmup_epochs), int(max_epochs), steps_per_epoch
        self.val_batch_size = val_batch_size
        self.save_hyperparameters({"hidden_dim": hidden_dim, "out_dim": out_dim, "temperature": self.temperature,
                                   "lambda_": self.lambda_, "lr": self.lr, "weight_decay": self.weight_decay,
                                   "warmup_epochs": self.warmup_epochs, "max_epochs": self.max_epochs,
                                   "seed": seed, "ecg_kwargs": dict(ecg_encoder.model_kwargs),
                                   "cmr_kwargs": dict(cmr_encoder.model_kwargs)})
        self._val: list[tuple[torch.Tensor, torch.Tensor]] = []

    # --- forward -------------------------------------------------------------------------------------------
    def no_weight_decay(self) -> set[str]:
        return {f"ecg_encoder.{name}" for name in self.ecg_encoder.no_weight_decay()}

    def embed_ecg(self, x: torch.Tensor) -> torch.Tensor:
        """The ECG encoder's pre-training embedding (B, 384): mean over patch tokens, then the final norm."""
        return self.ecg_encoder.forward_features(x)

    def embed_cmr(self, x: torch.Tensor) -> torch.Tensor:
        """The CMR encoder's global-average-pooled features (B, 2048)."""
        return self.cmr_encoder.forward_features(x)

    def forward(self, ecg: torch.Tensor, cmr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(z_ecg, z_cmr): unit-norm projections (B, out_dim) of a batch of pairs."""
        return self.ecg_projector(self.embed_ecg(ecg)), self.cmr_projector(self.embed_cmr(cmr))

    def loss(self, z_ecg: torch.Tensor, z_cmr: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return clip_loss(z_ecg, z_cmr, self.temperature, self.lambda_)

    # --- training ------------------------------------------------------------------------------------------
    def _gather_with_grad(self, z: torch.Tensor) -> torch.Tensor:
        if world_size(self._trainer) == 1:
            return z
        return self.all_gather(z, sync_grads=True).flatten(0, 1)   # (W, B, d) -> (W * B, d), rank-major

    def training_step(self, batch, batch_idx):
        ecg, cmr = batch[0], batch[1]
        z_ecg, z_cmr = self(ecg, cmr)
        loss, parts = self.loss(self._gather_with_grad(z_ecg), self._gather_with_grad(z_cmr))
        n = len(ecg)
        self.log(MMCL_TRAIN_LOSS, loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=n, sync_dist=True)
        self.log(MMCL_TRAIN_LOSS_ECG, parts["loss_ecg"], on_step=True, on_epoch=True, batch_size=n, sync_dist=True)
        self.log(MMCL_TRAIN_LOSS_CMR, parts["loss_cmr"], on_step=True, on_epoch=True, batch_size=n, sync_dist=True)
        if self._trainer is not None:
            self.log(MMCL_TRAIN_LR, self.optimizers().optimizer.param_groups[0]["lr"], on_step=True, on_epoch=False)
        return loss

    def _steps_per_epoch(self) -> int:
        if self.steps_per_epoch is not None:
            return int(self.steps_per_epoch)
        trainer = self.trainer
        if not trainer.max_epochs or trainer.max_epochs < 1:
            raise ValueError("set steps_per_epoch or give the Trainer max_epochs")
        return max(1, math.ceil(trainer.estimated_stepping_batches / trainer.max_epochs))

    def configure_optimizers(self):
        optimizer = build_optimizer(self, lr=self.lr, weight_decay=self.weight_decay, layer_decay=1.0)
        warmup, total = schedule_steps(self.warmup_epochs, self.max_epochs, self._steps_per_epoch())
        scheduler = WarmupCosineLR(optimizer, peak_lr=self.lr, warmup_steps=warmup, total_steps=total)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1}}

    # --- validation ----------------------------------------------------------------------------------------
    def validation_step(self, batch, batch_idx):
        z_ecg, z_cmr = self(batch[0], batch[1])
        if self.val_batch_size is None:
            self.val_batch_size = len(batch[0]) * world_size(self._trainer)
        self._val.append((z_ecg.float().detach().cpu(), z_cmr.float().detach().cpu()))

    def on_validation_epoch_end(self):
        outputs, self._val = self._val, []
        if not outputs:
            return
        z_ecg = torch.cat([e for e, _ in outputs])
        z_cmr = torch.cat([c for _, c in outputs])
        trainer = self._trainer
        if world_size(trainer) > 1:   # every rank's share, back in dataset order (see distributed.gather_in_order)
            total = dataset_length(trainer.val_dataloaders)
            z_ecg, z_cmr = gather_in_order(self, z_ecg, total), gather_in_order(self, z_cmr, total)
        metrics = self.validation_metrics(z_ecg, z_cmr)
        # equal on every rank: sync_dist's mean changes nothing, it keeps Lightning's ranks in step
        self.log(MMCL_VAL_LOSS, metrics["loss"], prog_bar=True, sync_dist=True)
        self.log(MMCL_VAL_LOSS_ECG, metrics["loss_ecg"], sync_dist=True)
        self.log(MMCL_VAL_LOSS_CMR, metrics["loss_cmr"], sync_dist=True)
        self.log(MMCL_VAL_TOP1, metrics["top1"], prog_bar=True, sync_dist=True)
        self.log(MMCL_VAL_TOP1_CMR, metrics["top1_cmr"], sync_dist=True)

    def validation_metrics(self, z_ecg: torch.Tensor, z_cmr: torch.Tensor) -> dict[str, float]:
        """Metrics of a whole validation set's projections (N, d), in dataset order.

        loss*: the CLIP loss of consecutive chunks of val_batch_size pairs (the training batch's view of
        negatives), averaged weighted by chunk size; top1 / top1_cmr: retrieval among all N pairs.
        """
        chunk = max(1, int(self.val_batch_size or len(z_ecg)))
        sums = {"loss": 0.0, "loss_ecg": 0.0, "loss_cmr": 0.0}
        for start in range(0, len(z_ecg), chunk):
            e, c = z_ecg[start:start + chunk], z_cmr[start:start + chunk]
            loss, parts = self.loss(e, c)
            sums["loss"] += float(loss) * len(e)
            sums["loss_ecg"] += float(parts["loss_ecg"]) * len(e)
            sums["loss_cmr"] += float(parts["loss_cmr"]) * len(e)
        out = {k: v / len(z_ecg) for k, v in sums.items()}
        out["top1"] = retrieval_top1(z_ecg, z_cmr)
        out["top1_cmr"] = retrieval_top1(z_cmr, z_ecg)
        return out

    # --- results -------------------------------------------------------------------------------------------
    def projector_meta(self) -> dict:
        return {"pretraining": "mmcl", "temperature": self.temperature, "lambda": self.lambda_,
                "ecg_dims": self.ecg_projector.dims, "cmr_dims": self.cmr_projector.dims,
                "ecg_pool": PRETRAINING_POOL, "cmr_pool": "avg"}

    def save_encoders(self, ecg_path: str | Path, cmr_path: str | Path, projectors_path: str | Path, *,
                      meta: dict | None = None) -> dict[str, Path]:
        """Write the three results of a pre-training run (atomically, each loadable with weights_only=True):

        - ecg_path: a CardioScope checkpoint of the ECG encoder, the 42 tensors of the released signal_encoder
          files under the same names (no attention_pool, fc_norm, head), recorded with its mean_norm pooling;
        - cmr_path: a CardioScope checkpoint of the ResNet-50 trunk (no head);
        - projectors_path: both projection heads with their dims, the temperature and lambda (load_projectors).
        Both checkpoints read back with models.weights (read_checkpoint / WeightsFile.build / load_weights) and
        fine-tune like any pre-trained encoder (the fresh modules start from the fine-tune's seed).
        """
        meta = dict(meta or {})
        common = {"head_trained": False, "pretraining": "mmcl", "temperature": self.temperature,
                  "lambda": self.lambda_, **meta}
        ecg = save_checkpoint(ecg_path, self.ecg_encoder, exclude_prefixes=FRESH_PREFIXES["ecg"],
                              meta={**common, "embedding_pool": PRETRAINING_POOL})
        cmr = save_checkpoint(cmr_path, self.cmr_encoder, exclude_prefixes=FRESH_PREFIXES["cmr"],
                              meta={**common, "embedding_pool": "avg"})
        proj = save_projectors(projectors_path, self.ecg_projector, self.cmr_projector,
                               meta={**self.projector_meta(), **meta})
        return {"ecg": Path(ecg), "cmr": Path(cmr), "projectors": Path(proj)}
