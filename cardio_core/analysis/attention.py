"""Where the ECG model looks: the ViT's attention and the attention pool's weights, per lead and time patch.

Every token of the ECG ViT is 100 samples of one lead (token index = lead * n_time + time patch, CLS first),
so a map over the 300 patch tokens reshapes to 12 leads x 25 time patches (method.md §8):
- "block<k>": block k's self-attention (batch, heads, tokens, tokens) without the class token, averaged over
  the queries: how much attention each patch receives.
- "pool": the attention pool's weights over the patch tokens (its single query is the mean patch token);
  only encoders fine-tuned with attention pooling have one.

Maps are computed in jobs (the analysis pass caches a few records per dataset; an `attention` job computes
any others) and stored per (weights, record, source), all heads; pages only read them.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from cardio_core.store import Store

POOL_SOURCE = "pool"
# Records per ECG dataset whose maps every analysis pass caches, so a record opened first has them at once:
# the first few of the evaluation set in record-id order (the same records for every checkpoint).
CACHED_PER_DATASET = 8
CACHED_SETS = (("chapman", "split = 'test'"), ("ptbxl", "split = 'display'"))


def lead_time_grid(values: np.ndarray, n_leads: int, n_time: int) -> np.ndarray:
    """(..., n_leads * n_time) token values -> (..., n_leads, n_time); token i is lead i // n_time, patch i % n_time."""
    values = np.asarray(values)
    if values.shape[-1] != n_leads * n_time:
        raise ValueError(f"expected {n_leads} x {n_time} = {n_leads * n_time} patch tokens on the last axis, "
                         f"got {values.shape[-1]}")
    return values.reshape(*values.shape[:-1], n_leads, n_time)


def block_source(index: int) -> str:
    return f"block{index + 1}"


def attention_maps(model, x) -> dict[str, np.ndarray]:
    """{source: (batch, heads, n_leads, n_time) float32} for ECG input x (batch, 1, n_leads, T), in eval mode.

    timm's fused attention never forms the probabilities, so each block's are recomputed from its own
    input (captured by a forward pre-hook) with its own qkv projection and scale, as the unfused path does.
    """
    import torch

    captured: dict[int, torch.Tensor] = {}
    hooks = [block.attn.register_forward_pre_hook(lambda _m, args, i=i: captured.__setitem__(i, args[0]))
             for i, block in enumerate(model.blocks)]
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            tokens = model.forward_tokens(x)
            maps = {}
            for i, block in enumerate(model.blocks):
                probs = _self_attention(block.attn, captured[i])            # (B, H, N+1, N+1)
                received = probs[:, :, 1:, 1:].mean(dim=2)                    # drop CLS, average over queries
                maps[block_source(i)] = received
            if getattr(model, "global_pool", None) == "attention" and model.attention_pool is not None:
                patches = tokens[:, 1:]
                query = patches.mean(dim=1, keepdim=True)
                _, weights = model.attention_pool(query, patches, patches, need_weights=True,
                                                  average_attn_weights=False)  # (B, H, 1, N)
                maps[POOL_SOURCE] = weights[:, :, 0]
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    n_leads, n_time = model.n_leads, model.n_time_patches
    return {k: lead_time_grid(v.float().cpu().numpy(), n_leads, n_time).astype(np.float32) for k, v in maps.items()}


def _self_attention(attn, x):
    """Attention probabilities (B, H, N, N) of a timm Attention module for its input x (B, N, C)."""
    B, N, _ = x.shape
    qkv = attn.qkv(x).reshape(B, N, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4)
    q, k = attn.q_norm(qkv[0]), attn.k_norm(qkv[1])
    return ((q * attn.scale) @ k.transpose(-2, -1)).softmax(dim=-1)


def compute_attention(store: Store, weights_id: str, dataset_id: str, record_ids: Sequence[str], *,
                      encoder=None, device: str = "cpu", batch_size: int = 16) -> int:
    """Compute and store the maps of these records under these weights; returns how many records were stored.

    The input is what the embedding sees: the preprocessed record, samples 0..L-1 (L = the model's length).
    """
    import torch

    from cardio_core.catalog import get_weights, open_weights
    from cardio_core.data.dataset_view import load_view

    if get_weights(store, weights_id)["modality"] != "ecg":
        raise ValueError(f"{weights_id}: attention maps are for ECG encoders only")
    record_ids = [str(r) for r in record_ids]
    if not record_ids:
        return 0
    view = load_view(store, dataset_id, where="list_contains(?, r.record_id)", params=[record_ids])
    found = view.records["record_id"].astype(str).tolist()
    missing = sorted(set(record_ids) - set(found))
    if missing:
        raise KeyError(f"{dataset_id}: no usable record {', '.join(missing[:5])}")
    model = (encoder or open_weights(store, weights_id)).model
    dev = torch.device(device)
    model = model.to(dev)
    length = int(model.signal_length)
    rows = []
    for start in range(0, len(found), batch_size):
        stop = min(len(found), start + batch_size)
        batch = np.stack([view.arrays[i] for i in range(start, stop)]).astype(np.float32, copy=False)
        if batch.shape[-1] < length:
            raise ValueError(f"{dataset_id}: records have {batch.shape[-1]} samples, the model needs {length}")
        x = torch.from_numpy(np.ascontiguousarray(batch[:, None, :, :length])).to(dev)
        for source, maps in attention_maps(model, x).items():
            for j, record_id in enumerate(found[start:stop]):
                heads, n_leads, n_time = maps[j].shape
                rows.append((weights_id, dataset_id, record_id, source, heads, n_leads, n_time,
                             int(model.patch_size), maps[j].ravel().tolist()))
    store_attention(store, pd.DataFrame(rows, columns=ATTENTION_COLUMNS))
    return len(found)


ATTENTION_COLUMNS = ["weights_id", "dataset_id", "record_id", "source", "n_heads", "n_leads", "n_time",
                     "patch_samples", "values"]


def store_attention(store: Store, maps: pd.DataFrame) -> None:
    """Replace the stored maps of these (weights, dataset, record) triples by `maps` (ATTENTION_COLUMNS; values
    flattened heads x leads x time patches), in one transaction."""
    missing = [c for c in ATTENTION_COLUMNS if c not in maps.columns]
    if missing:
        raise ValueError(f"attention maps lack the columns {missing}")
    store.replace_rows("attention_maps", maps[ATTENTION_COLUMNS], ["weights_id", "dataset_id", "record_id"],
                       casts={"values": "FLOAT[]"})


def cache_attention_sample(store: Store, weights_id: str, *, encoder=None, device: str = "cpu",
                           per_dataset: int = CACHED_PER_DATASET) -> dict[str, int]:
    """The analysis pass's share: maps of the first `per_dataset` evaluation records of each ingested ECG set."""
    from cardio_core.catalog import open_weights

    counts = {}
    for dataset_id, where in CACHED_SETS:
        ids = [r for (r,) in store.query(
            f"SELECT record_id FROM records WHERE dataset_id = ? AND NOT excluded AND {where} "
            "ORDER BY record_id LIMIT ?", [dataset_id, int(per_dataset)])]
        if ids:
            encoder = encoder or open_weights(store, weights_id)
            counts[dataset_id] = compute_attention(store, weights_id, dataset_id, ids, encoder=encoder,
                                                   device=device)
    return counts


def attention_job(ctx, weights_id: str, dataset_id: str, record_ids: list[str]) -> dict:
    """The `attention` job: these records' maps under these ECG weights, stored."""
    from cardio_core.models.device import resolve_device
    ctx.report_progress(step=0, total_steps=1, message=f"attention of {len(record_ids)} records under {weights_id}")
    n = compute_attention(ctx.store, weights_id, dataset_id, record_ids, device=resolve_device(ctx.spec.device))
    return {"weights_id": weights_id, "dataset_id": dataset_id, "records": n}
