"""Embeddings: the pooled encoder output of every record, computed without augmentation and stored per weights.

`embed_weights` embeds the evaluation sets of registered weights (method.md §5: the
Chapman test split, the PTB-XL display subset, the ACDC validation folds; the Chapman
validation split too, for the linear probe) and stores the vectors.

ECG records are cropped to samples 0..L-1 (the evaluation crop), L being the input length the
model was built for (the checkpoint's training crop_length; 2,500 for the released files), so the
same checkpoint always gives the same vectors (method.md §7, mistake 6). Each vector is stored with
the pooling that produced it (`pooling_of`). Batched under inference_mode; bf16 autocast on CUDA.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from cardio_core.analysis.metric_rows import store_classification
from cardio_core.data.dataset_view import load_view
from cardio_core.errors import CardioError
from cardio_core.store import Store

# What gets embedded for every set of weights: (dataset, SQL condition on the records).
ECG_SETS = [("chapman", "r.split = 'test'"), ("chapman", "r.split = 'train'"), ("ptbxl", "r.split = 'display'")]
# The linear probe is fitted on the train split; embedding all of a real Chapman train split (31k records) for
# every checkpoint costs too much, so a seeded subsample of at most this many train records is embedded.
PROBE_TRAIN_MAX = 3000
# The demo's Chapman (ingested as a demo dataset) is probed from a smaller subsample: on 2 CPU cores embedding
# 1.4k train records and fitting 20 logistic regressions on them took 60 of an analysis pass's 135 s, and the
# demo chain runs six passes. The size used is stored with the probe (n_train), as for a real dataset.
DEMO_PROBE_TRAIN_MAX = 400


def probe_train_limit(store: Store, dataset_id: str = "chapman") -> int:
    """How many train records the linear probe of this dataset is fitted on at most."""
    is_demo = store.scalar("SELECT is_demo FROM datasets WHERE dataset_id = ?", [dataset_id])
    return DEMO_PROBE_TRAIN_MAX if is_demo else PROBE_TRAIN_MAX


def pooling_of(model) -> str:
    """The pooling a model's embeddings come from: the ECG ViT's global_pool, the ResNet's global average ('avg')."""
    return str(getattr(model, "global_pool", "avg"))


def probe_train_subset(record_ids: Sequence[str], limit: int = PROBE_TRAIN_MAX, seed: int = 0) -> np.ndarray:
    """Mask of the seeded subsample of train records the linear probe is fitted on (all when few enough)."""
    n = len(record_ids)
    keep = np.zeros(n, dtype=bool)
    if n <= limit:
        keep[:] = True
        return keep
    order = np.argsort(np.asarray(record_ids, dtype=str), kind="stable")   # independent of the query's row order
    keep[order[np.random.default_rng(seed).choice(n, size=limit, replace=False)]] = True
    return keep
CMR_SETS = [("acdc", "TRUE")]


def _batches(n: int, size: int):
    for start in range(0, n, size):
        yield start, min(n, start + size)


def default_batch_size(device: str) -> int:
    """Records per forward pass: small on a CPU, where the ViT's 300-token attention of a large batch leaves the
    cache (2 cores: 34 ECGs/s at 16-32 per batch, 28/s at 128); large on an accelerator."""
    return 32 if str(device).split(":")[0] == "cpu" else 256


def compute_embeddings(model, arrays, *, modality: str, batch_size: int | None = None, device: str = "cpu",
                       crop_length: int | None = None, with_head: bool = False,
                       raw_head: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """Embed every record of `arrays` (indexable by position; ECG (12, T), CMR (3, H, W)).

    Returns (vectors (n, d) float32, head probabilities (n, C) or None; with `raw_head` the head's outputs as
    they are, e.g. a phenotype regressor's standardised values). ECG: `crop_length` defaults to
    the model's own input length (signal_length); a record shorter than it is an error.
    """
    import torch

    if modality not in ("ecg", "cmr"):
        raise ValueError(f"modality must be 'ecg' or 'cmr', got {modality!r}")
    batch_size = default_batch_size(device) if batch_size is None else batch_size
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if modality == "ecg" and crop_length is None:
        crop_length = int(getattr(model, "signal_length", 2500))
    dev = torch.device(device)
    model = model.to(dev).eval()
    use_bf16 = dev.type == "cuda"
    vecs, probs = [], []
    n = len(arrays)
    with torch.inference_mode(), torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=use_bf16):
        for start, stop in _batches(n, batch_size):
            batch = np.stack([arrays[i] for i in range(start, stop)]).astype(np.float32, copy=False)
            if modality == "ecg":
                if batch.shape[-1] < crop_length:
                    raise ValueError(f"records have {batch.shape[-1]} samples, the model needs {crop_length}")
                batch = batch[:, None, :, :crop_length]   # evaluation crop: samples 0..crop_length-1
            x = torch.from_numpy(np.ascontiguousarray(batch)).to(dev, non_blocking=True)
            feats = model.forward_features(x)
            vecs.append(feats.float().cpu().numpy())
            if with_head:
                logits = model.forward_head(feats).float()
                p = logits if raw_head else torch.sigmoid(logits) if modality == "ecg" else torch.softmax(logits, dim=1)
                probs.append(p.cpu().numpy())
    if not vecs:
        return np.empty((0, 0), np.float32), None
    return np.concatenate(vecs).astype(np.float32), (np.concatenate(probs) if with_head else None)


def store_embeddings(store, weights_id: str, dataset_id: str, record_ids: Sequence[str], vectors: np.ndarray,
                     fold: int | None = None, pooling: str | None = None) -> None:
    """Replace this (weights, dataset) pair's embeddings for these records, atomically."""
    if len(record_ids) != len(vectors):
        raise ValueError(f"{len(record_ids)} record ids but {len(vectors)} vectors")
    df = pd.DataFrame({"weights_id": weights_id, "dataset_id": dataset_id,
                       "record_id": list(map(str, record_ids)), "fold": fold, "pooling": pooling,
                       "vector": list(np.asarray(vectors, dtype=np.float32))})
    with store.write() as con:
        con.execute("DELETE FROM embeddings WHERE weights_id = ? AND dataset_id = ? AND list_contains(?, record_id)",
                    [weights_id, dataset_id, df["record_id"].tolist()])
        con.register("_emb", df)
        con.execute("INSERT INTO embeddings (weights_id, dataset_id, record_id, fold, vector, pooling) "
                    "SELECT weights_id, dataset_id, record_id, fold, vector::FLOAT[], pooling::TEXT FROM _emb")
        con.unregister("_emb")


def load_embeddings(store, weights_id: str, dataset_id: str, record_ids: Sequence[str] | None = None
                    ) -> tuple[list[str], np.ndarray]:
    """(record ids, vectors (n, d)) in record-id order, or in the given order."""
    with store.read() as con:
        rel = con.execute("SELECT record_id, vector FROM embeddings WHERE weights_id = ? AND dataset_id = ? "
                          "ORDER BY record_id", [weights_id, dataset_id])
        rows = rel.fetchnumpy()
    ids = [str(r) for r in rows["record_id"]]
    if not ids:
        return [], np.empty((0, 0), np.float32)
    X = np.stack(rows["vector"]).astype(np.float32)
    if record_ids is not None:
        pos = {r: i for i, r in enumerate(ids)}
        missing = [r for r in record_ids if r not in pos]
        if missing:
            raise KeyError(f"no embeddings of {weights_id} for {len(missing)} records of {dataset_id}, e.g. {missing[:3]}")
        order = [pos[r] for r in record_ids]
        return list(record_ids), X[order]
    return ids, X


def embed_sets(store: Store, model, weights_id: str, modality: str, *, device: str = "cpu",
               batch_size: int | None = None, head_trained: bool = False, sets=None) -> dict[str, int]:
    counts = {}
    for dataset_id, where in sets or (ECG_SETS if modality == "ecg" else CMR_SETS):
        try:
            view = load_view(store, dataset_id, where=where)
        except CardioError:
            continue  # dataset not ingested: nothing to embed
        if len(view.records) == 0:
            continue
        if dataset_id == "chapman" and "'train'" in where:
            keep = probe_train_subset(view.records["record_id"].tolist(), limit=probe_train_limit(store, dataset_id))
            # Vectors of train records outside today's subsample (an earlier, larger limit) would be fitted on
            # too: they go.
            dropped = view.records["record_id"][~keep].astype(str).tolist()
            if dropped:
                store.execute("DELETE FROM embeddings WHERE weights_id = ? AND dataset_id = ? "
                              "AND list_contains(?, record_id)", [weights_id, dataset_id, dropped])
            view = view.subset(keep)
        want_head = head_trained and dataset_id in ("chapman", "acdc")
        X, probs = compute_embeddings(model, view.arrays, modality=modality, batch_size=batch_size,
                                      device=device, with_head=want_head)
        ids = view.records["record_id"].tolist()
        store_embeddings(store, weights_id, dataset_id, ids, X, pooling=pooling_of(model))
        counts[f"{dataset_id}:{where}"] = len(ids)
        if want_head and dataset_id == "chapman" and "'test'" in where:
            store_classification(store, weights_id, view.Y, probs, view.classes)
    return counts


def embed_weights(store: Store, weights_id: str, *, device: str = "auto", batch_size: int | None = None,
                  encoder=None, modality: str | None = None) -> dict[str, int]:
    """Embed the evaluation sets with registered weights; `encoder` (a LoadedEncoder) skips loading them again."""
    from cardio_core.catalog import get_weights, open_weights
    from cardio_core.models.device import resolve_device
    modality = modality or get_weights(store, weights_id)["modality"]
    encoder = encoder or open_weights(store, weights_id)
    return embed_sets(store, encoder.model, weights_id, modality, device=resolve_device(device),
                      batch_size=batch_size, head_trained=encoder.head_trained)
