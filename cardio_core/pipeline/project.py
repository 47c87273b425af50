"""Compute and store the 2-D projections of one set of weights (runs in jobs, never in the app)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from ..embeddings import load_embeddings
from ..errors import CardioError
from ..projections import UMAP_PARAMS, project
from ..store import Store
from .data import load_view

# view -> [(dataset, SQL condition on the records)]; the cross-domain view is fitted jointly.
VIEWS = {
    "chapman_test": [("chapman", "r.split = 'test'")],
    "cross_domain": [("chapman", "r.split = 'test'"), ("ptbxl", "r.split = 'display'")],
    "acdc": [("acdc", "TRUE")],
}
MODALITY_VIEWS = {"ecg": ("chapman_test", "cross_domain"), "cmr": ("acdc",)}


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


def project_weights(store: Store, weights_id: str, view: str, *, modality: str, seed: int = 42,
                    align_to: str | None = None) -> str | None:
    """UMAP of `view` for these weights; initialised from and aligned to `align_to` when given."""
    keys, X = _view_embeddings(store, weights_id, view)
    if len(keys) < 4:
        return None
    previous = None
    if align_to:
        prev = load_projection(store, align_to)
        if len(prev):
            lookup = {(d, r): (x, y) for d, r, x, y in prev.itertuples(index=False)}
            if all(k in lookup for k in keys):
                previous = np.array([lookup[k] for k in keys], dtype=np.float32)
    layout = project(X, modality=modality, seed=seed, previous=previous)
    pid = projection_id(weights_id, view)
    params = dict(UMAP_PARAMS[modality], seed=seed, n_components=2, metric="euclidean",
                  initialised_from=align_to if previous is not None else None)
    points = pd.DataFrame({"projection_id": pid, "dataset_id": [k[0] for k in keys],
                           "record_id": [k[1] for k in keys], "x": layout[:, 0].astype(float),
                           "y": layout[:, 1].astype(float)})
    with store.write() as con:
        con.execute("DELETE FROM projection_points WHERE projection_id = ?", [pid])
        con.execute("DELETE FROM projections WHERE projection_id = ?", [pid])
        con.execute("INSERT INTO projections (projection_id, weights_id, view, method, params, aligned_to) "
                    "VALUES (?, ?, ?, 'umap', ?, ?)",
                    [pid, weights_id, view, json.dumps(params), align_to if previous is not None else None])
        con.register("_pts", points)
        con.execute("INSERT INTO projection_points SELECT projection_id, dataset_id, record_id, x, y FROM _pts")
        con.unregister("_pts")
    return pid
