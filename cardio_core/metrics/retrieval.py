"""Cross-modal retrieval in the shared ECG-CMR space (issue 12; method.md §8).

Row i of the query matrix and row i of the gallery matrix belong to the same subject. A query
retrieves its subject's pair when that pair ranks among its k most similar gallery items by
cosine similarity. Ties are counted pessimistically (a gallery item with the same similarity as
the true pair ranks ahead of it), so a constant embedding scores chance, never perfection.

Numpy in, numpy or floats out; no store, no torch.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cardio_core.metrics.embedding import bootstrap_ci

DEFAULT_KS = (1, 5, 10)
DIRECTIONS = ("ecg_to_cmr", "cmr_to_ecg")


def _unit_rows(X, name: str) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] < 2:
        raise ValueError(f"{name} must be a 2-D array with at least 2 rows, got shape {X.shape}")
    if not np.isfinite(X).all():
        raise ValueError(f"{name} contains NaN or inf")
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    # a zero vector has no direction: it is similar to nothing (cosine 0 with everything)
    return np.divide(X, norms, out=np.zeros_like(X), where=norms > 0)


def retrieval_ranks(query, gallery) -> np.ndarray:
    """The 1-based rank of each query's true pair (same row) among all gallery rows, by cosine similarity.

    rank = 1 + the number of gallery items at least as similar as the pair, other than the pair itself.
    """
    Q, G = _unit_rows(query, "query"), _unit_rows(gallery, "gallery")
    if Q.shape != G.shape:
        raise ValueError(f"query and gallery must pair row by row with the same width, got {Q.shape} and {G.shape}")
    S = Q @ G.T
    true = np.diag(S)
    # >= counts ties against the query; subtract the pair itself
    return (S >= true[:, None]).sum(axis=1).astype(np.int64)


def top_k_accuracy(ranks, k: int) -> float:
    ranks = np.asarray(ranks)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return float((ranks <= k).mean())


def chance_top_k(n_gallery: int, k: int) -> float:
    """Top-k accuracy of a random ranking of n_gallery items: k / n (1 when k >= n)."""
    if n_gallery < 1:
        raise ValueError(f"n_gallery must be >= 1, got {n_gallery}")
    return min(1.0, k / n_gallery)


def chance_median_rank(n_gallery: int) -> float:
    """Median rank of the true pair under a random ranking of n_gallery items."""
    return float(np.median(np.arange(1, n_gallery + 1)))


def retrieval_summary(query, gallery, *, ks: Sequence[int] = DEFAULT_KS, n_boot: int = 200,
                      seed: int = 0) -> dict[str, dict]:
    """Top-k accuracies and the median rank of one retrieval direction, each with its chance level and a 95%
    percentile bootstrap interval over subjects (the ranks are resampled; the gallery stays whole)."""
    ranks = retrieval_ranks(query, gallery)
    n = len(ranks)
    out: dict[str, dict] = {}
    for k in ks:
        low, high = bootstrap_ci(lambda r, k=k: float((r <= k).mean()), ranks, n_boot=n_boot, seed=seed)
        out[f"top{k}"] = {"value": top_k_accuracy(ranks, k), "ci_low": low, "ci_high": high,
                          "chance": chance_top_k(n, k), "n": n}
    low, high = bootstrap_ci(lambda r: float(np.median(r)), ranks, n_boot=n_boot, seed=seed)
    out["median_rank"] = {"value": float(np.median(ranks)), "ci_low": low, "ci_high": high,
                          "chance": chance_median_rank(n), "n": n}
    return out


def cross_modal_retrieval(z_ecg, z_cmr, *, ks: Sequence[int] = DEFAULT_KS, n_boot: int = 200,
                          seed: int = 0) -> dict[str, dict[str, dict]]:
    """Both directions: ECG queries against the CMR gallery, and CMR queries against the ECG gallery."""
    return {"ecg_to_cmr": retrieval_summary(z_ecg, z_cmr, ks=ks, n_boot=n_boot, seed=seed),
            "cmr_to_ecg": retrieval_summary(z_cmr, z_ecg, ks=ks, n_boot=n_boot, seed=seed)}
