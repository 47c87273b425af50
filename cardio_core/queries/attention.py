"""Read models of "where the model looks": a record's ECG attention maps per source and head, and a CMR
record's Grad-CAM map."""
from __future__ import annotations

import numpy as np

from cardio_core.analysis.attention import POOL_SOURCE

SOURCE_NAMES = {POOL_SOURCE: "attention pool weights"}


def source_label(source: str) -> str:
    """'block3' -> 'block 3 self-attention received'; 'pool' -> 'attention pool weights'."""
    if source in SOURCE_NAMES:
        return SOURCE_NAMES[source]
    return f"block {source.removeprefix('block')} self-attention received"


def record_attention(store, weights_id: str, dataset_id: str, record_id: str) -> dict[str, np.ndarray]:
    """{source: (heads, n_leads, n_time)} stored for this record under these weights; {} when none is cached.

    Sources in display order: the blocks from the last one down, then the pool."""
    rows = store.query("SELECT source, n_heads, n_leads, n_time, \"values\" FROM attention_maps "
                       "WHERE weights_id = ? AND dataset_id = ? AND record_id = ?",
                       [weights_id, dataset_id, str(record_id)])
    maps = {src: np.asarray(vals, dtype=np.float32).reshape(h, n_l, n_t) for src, h, n_l, n_t, vals in rows}
    return _display_order(maps)


def patch_samples(store, weights_id: str, dataset_id: str, record_id: str) -> int | None:
    """Samples per time patch of this record's maps (None when none is cached)."""
    return store.scalar("SELECT max(patch_samples) FROM attention_maps WHERE weights_id = ? AND dataset_id = ? "
                        "AND record_id = ?", [weights_id, dataset_id, str(record_id)])


def _display_order(maps: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    def order(src):
        return (1, 0) if src == POOL_SOURCE else (0, -int(src.removeprefix("block") or 0))
    return {src: maps[src] for src in sorted(maps, key=order)}


def heads_view(maps: np.ndarray, head: int | None = None) -> np.ndarray:
    """(n_leads, n_time) of a (heads, n_leads, n_time) map: the mean over heads (head None) or one head (0-based)."""
    maps = np.asarray(maps)
    if maps.ndim != 3:
        raise ValueError(f"expected (heads, leads, time patches), got shape {maps.shape}")
    if head is None:
        return maps.mean(axis=0)
    if not 0 <= int(head) < maps.shape[0]:
        raise ValueError(f"head must be in 0..{maps.shape[0] - 1}, got {head}")
    return maps[int(head)]


def attention_records(store, weights_id: str, dataset_id: str) -> list[str]:
    """Records of this dataset whose maps are cached under these weights."""
    return [r for (r,) in store.query("SELECT DISTINCT record_id FROM attention_maps WHERE weights_id = ? AND "
                                      "dataset_id = ? ORDER BY record_id", [weights_id, dataset_id])]


def cmr_map(store, weights_id: str, dataset_id: str, record_id: str, kind: str = "gradcam") -> dict | None:
    """{"grid": (h, w), "class", "probability", "fold", "layer"} stored for this record, or None."""
    rows = store.query("SELECT n_rows, n_cols, \"values\", class, probability, fold, layer FROM cmr_maps "
                       "WHERE weights_id = ? AND dataset_id = ? AND record_id = ? AND kind = ?",
                       [weights_id, dataset_id, str(record_id), kind])
    if not rows:
        return None
    n_rows, n_cols, values, cls, probability, fold, layer = rows[0]
    return {"grid": np.asarray(values, dtype=np.float32).reshape(n_rows, n_cols), "class": cls,
            "probability": probability, "fold": fold, "layer": layer}


def cmr_map_records(store, weights_id: str, dataset_id: str, kind: str = "gradcam") -> list[str]:
    """Records of this dataset with a stored CMR map of this kind under these weights (or pair)."""
    return [r for (r,) in store.query("SELECT record_id FROM cmr_maps WHERE weights_id = ? AND dataset_id = ? AND "
                                      "kind = ? ORDER BY record_id", [weights_id, dataset_id, kind])]
