"""Masked data modelling (MAE-style) pre-training of the ECG ViT.

80% of the 1 x patch_size patches are hidden; the encoder sees the rest (plus CLS), a small
transformer decoder reconstructs every patch, and the loss is the MSE on the hidden patches
of per-patch normalised targets. The encoder is a plain EcgViT, so its trained weights load
back into EcgViT with only the fine-tuning modules (attention_pool, fc_norm, head) missing.
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

import lightning as L
import torch
from timm.layers import trunc_normal_
from timm.models.vision_transformer import Block
from torch import nn

from cardio_core.models.ecg_vit import EcgViT
from cardio_core.models.weights import FRESH_PREFIXES, save_checkpoint
from cardio_core.training.optim import WarmupCosineLR, build_optimizer, schedule_steps

MDM_TRAIN_LOSS = "train/mdm_loss"
MDM_VAL_LOSS = "val/mdm_loss"


class MdmPretrainModule(L.LightningModule):
    """MAE pre-training around an EcgViT encoder. Batches are (x (B, 1, leads, T), anything)."""

    def __init__(self, encoder: EcgViT, *, mask_ratio: float = 0.8, decoder_embed_dim: int = 128,
                 decoder_depth: int = 2, decoder_num_heads: int = 4, norm_target: bool = True, lr: float = 1e-3,
                 weight_decay: float = 0.05, warmup_epochs: float = 5, max_epochs: int = 50,
                 steps_per_epoch: int | None = None):
        super().__init__()
        if not isinstance(encoder, EcgViT):
            raise ValueError(f"encoder must be an EcgViT, got {type(encoder).__name__}")
        if not 0.0 < mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must be in (0, 1), got {mask_ratio}")
        self.encoder = encoder
        self.mask_ratio, self.norm_target = mask_ratio, norm_target
        self.lr, self.weight_decay = lr, weight_decay
        self.warmup_epochs, self.max_epochs, self.steps_per_epoch = warmup_epochs, max_epochs, steps_per_epoch
        n_patches = encoder.n_leads * encoder.n_time_patches
        norm_layer = partial(nn.LayerNorm, eps=1e-6)
        self.decoder_embed = nn.Linear(encoder.embed_dim, decoder_embed_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_embed_dim))
        self.decoder_pos_embed = nn.Parameter(torch.zeros(1, n_patches + 1, decoder_embed_dim))
        self.decoder_blocks = nn.ModuleList([
            Block(decoder_embed_dim, decoder_num_heads, mlp_ratio=4.0, qkv_bias=True, norm_layer=norm_layer)
            for _ in range(decoder_depth)])
        self.decoder_norm = norm_layer(decoder_embed_dim)
        self.decoder_pred = nn.Linear(decoder_embed_dim, encoder.patch_size)
        trunc_normal_(self.decoder_pos_embed, std=0.02)
        nn.init.normal_(self.mask_token, std=0.02)
        self.save_hyperparameters({"mask_ratio": mask_ratio, "decoder_embed_dim": decoder_embed_dim,
                                   "decoder_depth": decoder_depth, "decoder_num_heads": decoder_num_heads,
                                   "norm_target": norm_target, "lr": lr, "weight_decay": weight_decay,
                                   "warmup_epochs": warmup_epochs, "max_epochs": max_epochs,
                                   "encoder_kwargs": dict(encoder.model_kwargs)})

    def no_weight_decay(self) -> set[str]:
        return {"encoder.pos_embed", "encoder.cls_token", "mask_token", "decoder_pos_embed"}

    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, leads, T) -> (B, leads * n_time, patch_size), in token order lead * n_time + t."""
        b = x.shape[0]
        return x.reshape(b, self.encoder.n_leads * self.encoder.n_time_patches, self.encoder.patch_size)

    def random_masking(self, n_batch: int, n_tokens: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        """(keep_ids (B, n_keep), mask (B, n_tokens) with 1 = hidden), drawn independently per sample."""
        n_keep = max(1, int(round(n_tokens * (1 - self.mask_ratio))))
        order = torch.rand(n_batch, n_tokens, device=device).argsort(dim=1)
        keep = order[:, :n_keep]
        mask = torch.ones(n_batch, n_tokens, device=device)
        mask.scatter_(1, keep, 0.0)
        return keep, mask

    def forward_encoder(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        enc = self.encoder
        tokens = enc.patch_embed(enc._check_input(x)) + enc.pos_embed[:, 1:]
        tokens = torch.gather(tokens, 1, keep.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))
        cls = (enc.cls_token + enc.pos_embed[:, :1]).expand(tokens.shape[0], -1, -1)
        h = torch.cat([cls, tokens], dim=1)
        for block in enc.blocks:
            h = block(h)
        return enc.norm(h)

    def forward_decoder(self, latent: torch.Tensor, keep: torch.Tensor, n_tokens: int) -> torch.Tensor:
        h = self.decoder_embed(latent)
        b, d = h.shape[0], h.shape[-1]
        full = self.mask_token.expand(b, n_tokens, d).to(h.dtype).clone()  # h is bf16 under autocast
        full.scatter_(1, keep.unsqueeze(-1).expand(-1, -1, d), h[:, 1:])   # visible tokens back in place
        h = torch.cat([h[:, :1], full], dim=1) + self.decoder_pos_embed
        for block in self.decoder_blocks:
            h = block(h)
        return self.decoder_pred(self.decoder_norm(h))[:, 1:]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(loss, predicted patches (B, N, P), mask (B, N))."""
        x = self.encoder._check_input(x)
        target = self.patchify(x)
        keep, mask = self.random_masking(x.shape[0], target.shape[1], x.device)
        pred = self.forward_decoder(self.forward_encoder(x, keep), keep, target.shape[1])
        if self.norm_target:
            mean, var = target.mean(-1, keepdim=True), target.var(-1, keepdim=True)
            target = (target - mean) / (var + 1e-6).sqrt()
        per_patch = ((pred.float() - target.float()) ** 2).mean(-1)
        loss = (per_patch * mask).sum() / mask.sum()
        return loss, pred, mask

    def training_step(self, batch, batch_idx):
        loss, _, _ = self(batch[0])
        self.log(MDM_TRAIN_LOSS, loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=len(batch[0]))
        return loss

    def validation_step(self, batch, batch_idx):
        loss, _, _ = self(batch[0])
        self.log(MDM_VAL_LOSS, loss, on_epoch=True, prog_bar=True, batch_size=len(batch[0]))

    def configure_optimizers(self):
        steps = self.steps_per_epoch
        if steps is None:
            steps = max(1, -(-self.trainer.estimated_stepping_batches // max(1, self.trainer.max_epochs)))
        optimizer = build_optimizer(self, lr=self.lr, weight_decay=self.weight_decay, layer_decay=1.0,
                                    betas=(0.9, 0.95))
        warmup, total = schedule_steps(self.warmup_epochs, self.max_epochs, int(steps))
        scheduler = WarmupCosineLR(optimizer, peak_lr=self.lr, warmup_steps=warmup, total_steps=total)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1}}

    def encoder_state_dict(self) -> dict[str, torch.Tensor]:
        """The pre-trained encoder weights: everything but the fine-tuning modules, which MDM never trains."""
        return {k: v.detach().cpu().clone() for k, v in self.encoder.state_dict().items()
                if not k.startswith(FRESH_PREFIXES["ecg"])}

    def save_encoder(self, path: str | Path, *, meta: dict | None = None) -> Path:
        """A CardioScope checkpoint of the encoder without its untrained pooling head and classifier."""
        return save_checkpoint(path, self.encoder, exclude_prefixes=FRESH_PREFIXES["ecg"],
                               meta={"pretraining": "mdm", "mask_ratio": self.mask_ratio, **(meta or {})})
