"""2-D projections of embeddings with UMAP (method.md §5), stable across a run's checkpoints.

Stability choice: each checkpoint of a run is projected separately as it is produced
(a job cannot wait for the last epoch), initialised from the previous checkpoint's
layout of the same records and then aligned to it with an orthogonal Procrustes fit
(rotation/reflection, uniform scale, translation). AlignedUMAP would need every
checkpoint up front; Procrustes keeps the layouts comparable without that, and never
distorts a layout beyond a similarity transform, so distances within one checkpoint's
picture stay UMAP's own.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from scipy.linalg import orthogonal_procrustes

UMAP_PARAMS = {
    "ecg": {"n_neighbors": 30, "min_dist": 0.25},
    "cmr": {"n_neighbors": 15, "min_dist": 0.1},
}


def configure_numba_cache(cache_dir: str | Path) -> None:
    """Keep numba's JIT cache in the workspace so a second run pays no compile cost.

    Must run before umap (and so numba) is first imported in the process.
    """
    path = Path(cache_dir) / "numba"
    path.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("NUMBA_CACHE_DIR", str(path))


def fit_umap(X: np.ndarray, *, n_neighbors: int = 30, min_dist: float = 0.25, seed: int = 42,
             init: np.ndarray | None = None) -> np.ndarray:
    """UMAP to 2-D, Euclidean, fixed seed. Returns (n, 2) float32."""
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2:
        raise ValueError(f"X must be (n_records, n_dims), got shape {X.shape}")
    n = len(X)
    if n < 4:
        raise ValueError(f"UMAP needs at least 4 records, got {n}")
    import umap
    n_neighbors = int(min(n_neighbors, n - 1))
    init_arg = "spectral"
    if init is not None:
        init = np.asarray(init, dtype=np.float32)
        if init.shape != (n, 2):
            raise ValueError(f"init must have shape ({n}, 2), got {init.shape}")
        init_arg = _rescale_init(init)
    reducer = umap.UMAP(n_components=2, n_neighbors=n_neighbors, min_dist=min_dist, metric="euclidean",
                        random_state=seed, init=init_arg, n_jobs=1)
    return reducer.fit_transform(X).astype(np.float32)


def _rescale_init(init: np.ndarray) -> np.ndarray:
    # UMAP expects an initial layout roughly in [0, 10]; keep the shape, fix the scale.
    centred = init - init.mean(0)
    span = np.abs(centred).max() or 1.0
    return (centred / span * 10.0).astype(np.float32)


def align_procrustes(layout: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Similarity transform of `layout` that best matches `reference` (same rows)."""
    layout = np.asarray(layout, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    if layout.shape != reference.shape:
        raise ValueError(f"layouts differ in shape: {layout.shape} vs {reference.shape}")
    mu_l, mu_r = layout.mean(0), reference.mean(0)
    A, B = layout - mu_l, reference - mu_r
    R, _ = orthogonal_procrustes(A, B)
    scale = np.trace((A @ R).T @ B) / max(np.trace(A.T @ A), 1e-12)
    return (scale * A @ R + mu_r).astype(np.float32)


def project(X: np.ndarray, *, modality: str = "ecg", seed: int = 42,
            previous: np.ndarray | None = None) -> np.ndarray:
    """The method's UMAP for a modality, optionally initialised from and aligned to `previous`."""
    params = UMAP_PARAMS[modality]
    layout = fit_umap(X, seed=seed, init=previous, **params)
    if previous is not None:
        layout = align_procrustes(layout, previous)
    return layout
