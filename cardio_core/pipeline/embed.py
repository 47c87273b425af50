"""Embed the evaluation sets with one set of registered weights and store the vectors."""
from __future__ import annotations

import numpy as np

from ..catalog import get_weights
from ..embeddings import compute_embeddings, store_embeddings
from ..errors import CardioError
from ..store import Store
from .data import load_view
from .evaluate import store_classification

# What gets embedded for every set of weights (method.md §5: Chapman test, PTB-XL display
# subset, ACDC validation folds). The Chapman validation split is embedded too: the
# linear probe on frozen embeddings is fitted on it and scored on test.
ECG_SETS = [("chapman", "r.split = 'test'"), ("chapman", "r.split = 'val'"), ("ptbxl", "r.split = 'display'")]
CMR_SETS = [("acdc", "TRUE")]

DEFAULT_MODEL = {"ecg": "ecg_vit_small", "cmr": "cmr_resnet50"}


def resolve_device(device: str = "auto") -> str:
    import torch
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise CardioError("device 'cuda' requested but no CUDA GPU is available")
    return device


def instantiate(store: Store, weights_id: str):
    """Build the model for registered weights and load them (explicit, reported step).

    Returns (model, weights row, head_trained).
    """
    import torch
    from ..models.registry import create_model
    from ..models.weights import build_model_from_checkpoint, read_checkpoint

    w = get_weights(store, weights_id)
    modality = w["modality"]
    if w["kind"] == "random":
        torch.manual_seed(0)  # the random baseline is the same network every time
        return create_model(DEFAULT_MODEL[modality]), w, False
    if not w.get("path"):
        raise CardioError(f"weights {weights_id} have no file to load")
    model, _report = build_model_from_checkpoint(w["path"], modality=modality)
    head_trained = bool(read_checkpoint(w["path"]).meta.get("head_trained", False))
    return model, w, head_trained


def embed_sets(store: Store, model, weights_id: str, modality: str, *, device: str = "cpu",
               batch_size: int = 128, head_trained: bool = False, sets=None) -> dict[str, int]:
    counts = {}
    for dataset_id, where in sets or (ECG_SETS if modality == "ecg" else CMR_SETS):
        try:
            view = load_view(store, dataset_id, where=where)
        except CardioError:
            continue  # dataset not ingested: nothing to embed
        if len(view.records) == 0:
            continue
        want_head = head_trained and dataset_id in ("chapman", "acdc")
        X, probs = compute_embeddings(model, view.arrays, modality=modality, batch_size=batch_size,
                                      device=device, with_head=want_head)
        ids = view.records["record_id"].tolist()
        store_embeddings(store, weights_id, dataset_id, ids, X)
        counts[f"{dataset_id}:{where}"] = len(ids)
        if want_head and dataset_id == "chapman" and "'test'" in where:
            store_classification(store, weights_id, view.Y, probs, view.classes)
    return counts


def embed_weights(store: Store, weights_id: str, *, device: str = "auto", batch_size: int = 128) -> dict[str, int]:
    model, w, head_trained = instantiate(store, weights_id)
    return embed_sets(store, model, weights_id, w["modality"], device=resolve_device(device),
                      batch_size=batch_size, head_trained=head_trained)
