"""ECG Vision Transformer over a (12 leads x T samples) "image" with 1 x patch_size patches.

Attribute names match the released MMCL checkpoints (method.md §3): cls_token, pos_embed,
patch_embed.proj, blocks.{i}.*, norm. The pooling head (attention_pool, fc_norm) and the
classifier (head) are not in those files and start fresh.

Poolings (method.md §5): "attention" (fine-tuning: query = mean of the patch tokens, then fc_norm),
"mean_norm" (the pre-training pooling: the mean over patch tokens, then the encoder's final `norm`; how an
encoder without a trained attention pool is read), "avg" (mean, then a fresh fc_norm) and "token" (CLS).
"""
from __future__ import annotations

from functools import partial

import torch
from timm.layers import PatchEmbed, trunc_normal_
from timm.models.vision_transformer import Block
from torch import nn

GLOBAL_POOLS = ("attention", "mean_norm", "avg", "token")
PRETRAINING_POOL = "mean_norm"


class EcgViT(nn.Module):
    """ViT for 12-lead ECGs. Input (B, 1, n_leads, signal_length); token index = lead * n_time + time patch."""

    modality = "ecg"
    model_name = "ecg_vit_small"

    def __init__(self, num_classes: int = 20, signal_length: int = 2500, n_leads: int = 12,
                 patch_size: int = 100, embed_dim: int = 384, depth: int = 3, num_heads: int = 6,
                 mlp_ratio: float = 4.0, drop_path_rate: float = 0.0, global_pool: str = "attention"):
        super().__init__()
        if signal_length < patch_size or signal_length % patch_size:
            raise ValueError(f"signal_length ({signal_length}) must be a positive multiple of patch_size ({patch_size})")
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim ({embed_dim}) must be divisible by num_heads ({num_heads})")
        if global_pool not in GLOBAL_POOLS:
            raise ValueError(f"global_pool must be one of {GLOBAL_POOLS}, got {global_pool!r}")
        if not 0.0 <= drop_path_rate < 1.0:
            raise ValueError(f"drop_path_rate must be in [0, 1), got {drop_path_rate}")
        if num_classes < 0:
            raise ValueError(f"num_classes must be >= 0, got {num_classes}")
        self.model_kwargs = dict(num_classes=num_classes, signal_length=signal_length, n_leads=n_leads,
                                 patch_size=patch_size, embed_dim=embed_dim, depth=depth, num_heads=num_heads,
                                 mlp_ratio=mlp_ratio, drop_path_rate=drop_path_rate, global_pool=global_pool)
        self.num_classes = num_classes
        self.signal_length = signal_length
        self.n_leads = n_leads
        self.patch_size = patch_size
        self.embed_dim = self.num_features = embed_dim
        self.global_pool = global_pool
        norm_layer = partial(nn.LayerNorm, eps=1e-6)

        self.patch_embed = PatchEmbed(img_size=(n_leads, signal_length), patch_size=(1, patch_size),
                                      in_chans=1, embed_dim=embed_dim)
        self.n_time_patches = signal_length // patch_size
        num_patches = n_leads * self.n_time_patches
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, embed_dim))
        # Stochastic depth: per-block drop-path rates rising linearly to drop_path_rate (not dropout).
        rates = torch.linspace(0, drop_path_rate, depth).tolist()
        self.blocks = nn.ModuleList([
            Block(embed_dim, num_heads, mlp_ratio=mlp_ratio, qkv_bias=True, drop_path=rates[i], norm_layer=norm_layer)
            for i in range(depth)])
        self.norm = norm_layer(embed_dim)   # kept for checkpoint compatibility; pooled modes use fc_norm
        self.attention_pool = (nn.MultiheadAttention(embed_dim, num_heads, batch_first=True)
                               if global_pool == "attention" else None)
        self.fc_norm = norm_layer(embed_dim) if global_pool in ("attention", "avg") else nn.Identity()
        self.head = nn.Linear(embed_dim, num_classes) if num_classes > 0 else nn.Identity()
        self._init_weights()

    def _init_weights(self) -> None:
        trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)
        for m in self.modules():
            _init_module(m)

    def reset_fresh_modules(self, seed: int, only: tuple[str, ...] = ("attention_pool", "fc_norm", "head")) -> None:
        """Re-initialise the modules the released files lack (attention_pool, fc_norm, head) from `seed` alone.

        Deterministic whatever the global RNG has been used for, and leaves the global RNG as it was:
        a fine-tune's pool starts from the same values for the same run seed, in any process.
        """
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            for name in ("attention_pool", "fc_norm", "head"):
                module = getattr(self, name)
                if module is None or name not in only:
                    continue
                for m in module.modules():
                    if isinstance(m, nn.MultiheadAttention):
                        m._reset_parameters()
                    else:
                        _init_module(m)

    def no_weight_decay(self) -> set[str]:
        return {"pos_embed", "cls_token"}

    def _check_input(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim == 3:   # (B, leads, T) -> (B, 1, leads, T)
            x = x.unsqueeze(1)
        if x.ndim != 4 or x.shape[1] != 1 or x.shape[2] != self.n_leads or x.shape[3] != self.signal_length:
            raise ValueError(f"EcgViT expects input (B, 1, {self.n_leads}, {self.signal_length}), got {tuple(x.shape)}")
        return x

    def forward_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """All tokens after the transformer blocks: (B, 1 + n_leads * n_time_patches, embed_dim), CLS first."""
        x = self.patch_embed(self._check_input(x))
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return x

    def pool(self, tokens: torch.Tensor) -> torch.Tensor:
        """Pooled embedding (B, embed_dim) from the block output tokens."""
        if self.global_pool == "token":
            return self.norm(tokens)[:, 0]
        patches = tokens[:, 1:]
        if self.global_pool == "mean_norm":
            return self.norm(patches.mean(dim=1))
        if self.global_pool == "avg":
            return self.fc_norm(patches.mean(dim=1))
        query = patches.mean(dim=1, keepdim=True)   # mean of the patch tokens; CLS excluded
        pooled, _ = self.attention_pool(query, patches, patches, need_weights=False)
        return self.fc_norm(pooled.squeeze(1))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The embedding: (B, embed_dim)."""
        return self.pool(self.forward_tokens(x))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _init_module(m: nn.Module) -> None:
    """timm's ViT initialisation of one module: truncated-normal linear weights, zero biases, unit norms."""
    if isinstance(m, nn.Linear):
        trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)
