"""2-D projections of embeddings with UMAP (method.md §5) and their storage.

Computed in jobs, never in the app: `project_weights` fits one view of one weights id and stores it.

Two layouts per checkpoint of a run (method.md §5):
- the default layout of a view (`view`, e.g. 'chapman_test'): an independent fixed-seed UMAP fit of
  these weights' embeddings alone, what Explore and Compare show side by side;
- the aligned layout (`aligned_view(view)`, e.g. 'chapman_test_aligned'), for the epoch-evolution
  animation only: initialised from the previous checkpoint's aligned layout of the same records (the
  chain starts at the baseline's independent layout) and aligned to it with an orthogonal Procrustes fit
  (rotation/reflection, uniform scale, translation), so movement between epochs is comparable.
  AlignedUMAP would need every checkpoint up front; Procrustes never distorts a layout beyond a
  similarity transform.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.linalg import orthogonal_procrustes

from cardio_core.analysis.embeddings import load_embeddings
from cardio_core.data.dataset_view import load_view
from cardio_core.errors import CardioError
from cardio_core.store import Store

UMAP_PARAMS = {
    "ecg": {"n_neighbors": 30, "min_dist": 0.25},
    "cmr": {"n_neighbors": 15, "min_dist": 0.1},
    # both modalities of a paired cohort's test subjects in their shared contrastive space (cosine-trained,
    # l2-normalised vectors; Euclidean on the unit sphere orders neighbours as cosine does)
    "paired": {"n_neighbors": 15, "min_dist": 0.1},
}


def configure_numba_cache(cache_dir: str | Path) -> None:
    """Keep numba's JIT cache in the workspace so a second run pays no compile cost.

    Must run before umap (and so numba) is first imported in the process.
    """
    path = Path(cache_dir) / "numba"
    path.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("NUMBA_CACHE_DIR", str(path))


# Embeddings are reduced to this many principal components before UMAP (when they have more):
# UMAP's nearest-neighbour search and spectral start scale with the dimension, and 50 components of
# a 384-d embedding keep its neighbourhoods. Measured by `bench umap` (time and trustworthiness@15
# side by side with and without it): 50k x 384 points 4-5x faster, trustworthiness no worse.
PCA_COMPONENTS = 50


def pre_reduction(n_records: int, n_dims: int, pca_components: int | None = PCA_COMPONENTS) -> dict | None:
    """What fit_umap does to (n_records, n_dims) data before UMAP: {"method": "pca", ...}, or None."""
    if pca_components is None or n_dims <= pca_components or n_records <= pca_components:
        return None
    return {"method": "pca", "n_components": int(pca_components), "input_dims": int(n_dims)}


def pca_reduce(X: np.ndarray, n_components: int) -> np.ndarray:
    """X centred and projected on its first `n_components` principal axes: deterministic (an eigen-
    decomposition of the covariance in float64, each axis's sign fixed by its largest loading)."""
    X = np.asarray(X, dtype=np.float64)
    centred = X - X.mean(0)
    eigval, eigvec = np.linalg.eigh(centred.T @ centred)
    axes = eigvec[:, np.argsort(eigval)[::-1][:n_components]]
    signs = np.sign(axes[np.abs(axes).argmax(0), np.arange(axes.shape[1])])
    axes = axes * np.where(signs == 0, 1.0, signs)
    return (centred @ axes).astype(np.float32)


def fit_umap(X: np.ndarray, *, n_neighbors: int = 30, min_dist: float = 0.25, seed: int = 42,
             init: np.ndarray | None = None, pca_components: int | None = PCA_COMPONENTS) -> np.ndarray:
    """UMAP to 2-D, Euclidean, fixed seed, after a PCA to `pca_components` dimensions when the data has
    more (see pre_reduction; None: UMAP on X as it is). Returns (n, 2) float32; the same X and seed
    give the same layout."""
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2:
        raise ValueError(f"X must be (n_records, n_dims), got shape {X.shape}")
    n = len(X)
    if n < 4:
        raise ValueError(f"UMAP needs at least 4 records, got {n}")
    import umap
    reduction = pre_reduction(n, X.shape[1], pca_components)
    if reduction is not None:
        X = pca_reduce(X, reduction["n_components"])
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


# -- stored projections ---------------------------------------------------------------------

# view -> [(dataset, SQL condition on the records)]; the cross-domain view is fitted jointly.
VIEWS = {
    "chapman_test": [("chapman", "r.split = 'test'")],
    "cross_domain": [("chapman", "r.split = 'test'"), ("ptbxl", "r.split = 'display'")],
    "acdc": [("acdc", "TRUE")],
    # keys of an encoder pair (not a weights id): its ECG and CMR test subjects, projected into the shared space
    "paired_joint": [("paired_ecg", "r.split = 'test'"), ("paired_cmr", "r.split = 'test'")],
    # a supervised projection, drawn on the test records; fitted on LDA_FIT, never on the records it draws
    "chapman_test_lda": [("chapman", "r.split = 'test'")],
}
LDA_VIEW = "chapman_test_lda"
LDA_FIT = ("chapman", "r.split = 'train'")
MODALITY_VIEWS = {"ecg": ("chapman_test", "cross_domain", LDA_VIEW), "cmr": ("acdc",)}


ALIGNED_SUFFIX = "_aligned"


def aligned_view(view: str) -> str:
    """The name under which the aligned (epoch-evolution) layout of `view` is stored."""
    return view if view.endswith(ALIGNED_SUFFIX) else f"{view}{ALIGNED_SUFFIX}"


def projection_id(weights_id: str, view: str) -> str:
    return f"{weights_id}:{view}"


def _view_embeddings(store: Store, weights_id: str, view: str):
    keys, blocks = [], []
    for dataset_id, where in VIEWS[view]:
        try:
            recs = load_view(store, dataset_id, where=where).records["record_id"].tolist()
        except CardioError:
            return [], np.empty((0, 0))  # a dataset of the view is not ingested: no such view
        have, _ = load_embeddings(store, weights_id, dataset_id)
        ids = sorted(set(recs) & set(have))
        if not ids:
            continue
        _, X = load_embeddings(store, weights_id, dataset_id, record_ids=ids)
        keys += [(dataset_id, r) for r in ids]
        blocks.append(X)
    return keys, (np.concatenate(blocks) if blocks else np.empty((0, 0)))


def load_projection(store: Store, proj_id: str) -> pd.DataFrame:
    return store.query_df("SELECT dataset_id, record_id, x, y FROM projection_points WHERE projection_id = ? "
                          "ORDER BY dataset_id, record_id", [proj_id])


def fit_lda(X_fit: np.ndarray, y_fit, X_draw: np.ndarray) -> tuple[np.ndarray, dict]:
    """Linear discriminant analysis fitted on (X_fit, y_fit), applied to X_draw: ((n_draw, 2) float32, facts).

    scikit-learn's eigen solver with Ledoit-Wolf shrinkage of the within-class covariance: with about as many
    train records as dimensions (the demo: 390 records, 384-d) the unshrunk covariance is nearly singular and
    the axes fit noise in the train records that the test records do not share. Needs at least 3 classes with
    2 or more records each for two discriminant axes; rarer classes are left out of the fit (they are still
    drawn)."""
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    X_fit, X_draw = np.asarray(X_fit, dtype=np.float64), np.asarray(X_draw, dtype=np.float64)
    y_fit = np.asarray(y_fit, dtype=str)
    if X_fit.ndim != 2 or X_draw.ndim != 2 or X_fit.shape[1] != X_draw.shape[1] or len(X_fit) != len(y_fit):
        raise ValueError(f"X_fit {X_fit.shape}, y_fit {y_fit.shape} and X_draw {X_draw.shape} do not match")
    classes, counts = np.unique(y_fit, return_counts=True)
    kept = classes[counts >= 2]
    if len(kept) < 3:
        raise ValueError(f"LDA to 2-D needs 3 classes with at least 2 fitted records each; got "
                         f"{dict(zip(classes.tolist(), counts.tolist()))}")
    keep = np.isin(y_fit, kept)
    lda = LinearDiscriminantAnalysis(n_components=2, solver="eigen", shrinkage="auto").fit(X_fit[keep], y_fit[keep])
    facts = {"classes": kept.tolist(), "n_fit": int(keep.sum()),
             "explained_variance_ratio": [float(v) for v in lda.explained_variance_ratio_[:2]]}
    return lda.transform(X_draw).astype(np.float32), facts


def _project_lda(store: Store, weights_id: str) -> str | None:
    """The LDA view: fitted on the Chapman train records' embeddings (the linear probe's train sample) with
    their rhythm label (records with exactly one), drawn on the test records."""
    from cardio_core.labels import rhythm_of
    keys, X = _view_embeddings(store, weights_id, LDA_VIEW)
    dataset_id, where = LDA_FIT
    try:
        train = load_view(store, dataset_id, where=where)
    except CardioError:
        return None
    have, _ = load_embeddings(store, weights_id, dataset_id)
    fit_ids = sorted(set(train.records["record_id"].astype(str)) & set(have))
    if not keys or not fit_ids:
        return None
    if set(fit_ids) & {r for _, r in keys}:   # LDA separates its own training data by construction
        raise CardioError(f"{weights_id}: the LDA's fitted and drawn records overlap")
    position = {r: i for i, r in enumerate(train.records["record_id"].astype(str))}
    labels = np.array([rhythm_of([c for c, y in zip(train.classes, train.Y[position[r]]) if y]) for r in fit_ids])
    single = ~np.isin(labels, ["other", "mixed"])
    _, X_fit = load_embeddings(store, weights_id, dataset_id, record_ids=[r for r, s in zip(fit_ids, single) if s])
    try:
        layout, facts = fit_lda(X_fit, labels[single], X)
    except ValueError:
        return None   # too few labelled train records for two axes: no LDA view for these weights
    pid = projection_id(weights_id, LDA_VIEW)
    params = {"target": "rhythm label (train records with exactly one)", "fitted_on": f"{dataset_id} train",
              "drawn_on": f"{dataset_id} test", "input_dims": int(X.shape[1]), **facts}
    _write_projection(store, pid, weights_id, LDA_VIEW, keys, layout, "lda", params, None)
    return pid


def project_weights(store: Store, weights_id: str, view: str, *, modality: str, seed: int = 42,
                    chain_after: str | None = None) -> str | None:
    """The independent UMAP of `view` for these weights (the default layout), stored; with `chain_after` (the
    previous weights of a run) also the aligned layout of the evolution view. Returns the default layout's id.
    The LDA view is fitted on other records (_project_lda) and has no aligned layout."""
    if view == LDA_VIEW:
        return _project_lda(store, weights_id)
    keys, X = _view_embeddings(store, weights_id, view)
    if len(keys) < 4:
        return None
    layout = project(X, modality=modality, seed=seed)
    pid = projection_id(weights_id, view)
    _store_layout(store, pid, weights_id, view, keys, layout, modality, seed, None, X.shape)
    if chain_after:
        # the previous weights' aligned layout, else (the baseline starting the chain) its default one
        previous = None
        for candidate in (projection_id(chain_after, aligned_view(view)), projection_id(chain_after, view)):
            prev = load_projection(store, candidate)
            if len(prev):
                lookup = {(d, r): (x, y) for d, r, x, y in prev.itertuples(index=False)}
                if all(k in lookup for k in keys):
                    previous = (candidate, np.array([lookup[k] for k in keys], dtype=np.float32))
                    break
        if previous is not None:
            aligned = project(X, modality=modality, seed=seed, previous=previous[1])
            _store_layout(store, projection_id(weights_id, aligned_view(view)), weights_id, aligned_view(view), keys,
                          aligned, modality, seed, previous[0], X.shape)
    return pid


def _store_layout(store: Store, pid: str, weights_id: str, view: str, keys, layout, modality: str, seed: int,
                  aligned_to: str | None, input_shape: tuple[int, int]) -> None:
    params = dict(UMAP_PARAMS[modality], seed=seed, n_components=2, metric="euclidean",
                  initialised_from=aligned_to, layout="aligned" if aligned_to else "independent",
                  pre_reduction=pre_reduction(*input_shape))
    _write_projection(store, pid, weights_id, view, keys, layout, "umap", params, aligned_to)


def _write_projection(store: Store, pid: str, weights_id: str, view: str, keys, layout, method: str, params: dict,
                      aligned_to: str | None) -> None:
    points = pd.DataFrame({"projection_id": pid, "dataset_id": [k[0] for k in keys],
                           "record_id": [k[1] for k in keys], "x": layout[:, 0].astype(float),
                           "y": layout[:, 1].astype(float)})
    with store.write() as con:
        con.execute("DELETE FROM projection_points WHERE projection_id = ?", [pid])
        con.execute("DELETE FROM projections WHERE projection_id = ?", [pid])
        con.execute("INSERT INTO projections (projection_id, weights_id, view, method, params, aligned_to) "
                    "VALUES (?, ?, ?, ?, ?, ?)", [pid, weights_id, view, method, json.dumps(params), aligned_to])
        con.register("_pts", points)
        con.execute("INSERT INTO projection_points SELECT projection_id, dataset_id, record_id, x, y FROM _pts")
        con.unregister("_pts")
