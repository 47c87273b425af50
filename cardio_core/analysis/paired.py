"""The analysis of an ECG-CMR encoder pair on a paired cohort's test subjects (issue 12).

One pass per pair (an MMCL checkpoint, or the released MMCL pair):
1. both encoders' embeddings of the test subjects (ECG through its pre-training pooling, CMR through global
   average pooling), stored under each encoder's weights id for the datasets `paired_ecg` / `paired_cmr`;
2. where the pair has its contrastive projectors: the shared-space vectors (128-d, l2-normalised), stored
   under the pair id with pooling 'projected';
3. ECG->CMR and CMR->ECG retrieval in the shared space (cardio_core.metrics.retrieval), stored as metrics of
   the pair id in scope 'paired_test';
4. the joint UMAP of both modalities' shared-space vectors (view 'paired_joint'), in which a subject's two
   points share its record id, so selecting one finds its pair;
5. the completeness mark of the pair, written last.

The released pair has no projectors (they were not published): it gets step 1 only, and says so.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cardio_core import faults
from cardio_core.analysis.analyse import clear_analysed, mark_analysed
from cardio_core.analysis.embeddings import compute_embeddings, pooling_of, store_embeddings
from cardio_core.analysis.cmr_maps import compute_patch_similarity
from cardio_core.analysis.metric_rows import MetricRows
from cardio_core.analysis.projections import project_weights
from cardio_core.errors import CardioError
from cardio_core.metrics.retrieval import DEFAULT_KS, cross_modal_retrieval
from cardio_core.store import Store
from cardio_core.vocabulary import PAIRED_DATASETS, PAIRED_SCOPE, PAIRED_VIEW

RETRIEVAL_METRICS = tuple(f"retrieval_top{k}" for k in DEFAULT_KS) + ("retrieval_median_rank",)


@dataclass(frozen=True)
class EncoderPair:
    pair_id: str
    ecg_weights_id: str
    cmr_weights_id: str
    projectors_path: str | None
    run_id: str | None = None
    epoch: int | None = None
    family: str | None = None
    stage: str | None = None


def get_pair(store: Store, pair_id: str) -> EncoderPair:
    rows = store.query("SELECT pair_id, ecg_weights_id, cmr_weights_id, projectors_path, run_id, epoch, family, "
                       "stage FROM encoder_pairs WHERE pair_id = ?", [pair_id])
    if not rows:
        raise CardioError(f"unknown encoder pair {pair_id!r}")
    return EncoderPair(*rows[0])


def register_pair(con, pair: EncoderPair) -> None:
    """Insert (or replace) an encoder pair inside the caller's write transaction."""
    con.execute("DELETE FROM encoder_pairs WHERE pair_id = ?", [pair.pair_id])
    con.execute("INSERT INTO encoder_pairs (pair_id, ecg_weights_id, cmr_weights_id, projectors_path, run_id, "
                "epoch, family, stage) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [pair.pair_id, pair.ecg_weights_id, pair.cmr_weights_id, pair.projectors_path, pair.run_id,
                 pair.epoch, pair.family, pair.stage])


def project_to_shared(head, X: np.ndarray, *, device: str = "cpu", batch_size: int = 1024) -> np.ndarray:
    """Encoder embeddings through a contrastive projector into the shared space (eval mode, float32)."""
    import torch
    head = head.to(device).eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(X), batch_size):
            x = torch.from_numpy(np.ascontiguousarray(X[start:start + batch_size], dtype=np.float32)).to(device)
            out.append(head(x).float().cpu().numpy())
    return np.concatenate(out) if out else np.empty((0, 0), np.float32)


def analyse_pair(store: Store, pair_id: str, *, ecg_encoder=None, cmr_encoder=None, projectors=None,
                 device: str = "cpu", seed: int = 0) -> dict:
    """Embed, project, score and lay out one encoder pair on the paired test split (see the module docstring).

    `ecg_encoder` / `cmr_encoder` (LoadedEncoders) and `projectors` ((ecg_head, cmr_head)) are the models in
    memory, e.g. those being trained, so their files are not read again."""
    from cardio_core.catalog import open_weights
    from cardio_core.data.paired_view import load_paired_view

    pair = get_pair(store, pair_id)
    clear_analysed(store, pair_id)
    view = load_paired_view(store, "test")
    ids = list(view.subject_ids)
    if len(ids) < 2:
        raise CardioError(f"the paired cohort has {len(ids)} usable test subjects; retrieval needs at least 2")
    ecg = ecg_encoder or open_weights(store, pair.ecg_weights_id, seed=seed)
    cmr = cmr_encoder or open_weights(store, pair.cmr_weights_id, seed=seed)
    X_ecg, _ = compute_embeddings(ecg.model, view.ecg.arrays, modality="ecg", device=device)
    X_cmr, _ = compute_embeddings(cmr.model, view.cmr.arrays, modality="cmr", device=device)
    store_embeddings(store, pair.ecg_weights_id, PAIRED_DATASETS["ecg"], ids, X_ecg, pooling=pooling_of(ecg.model))
    store_embeddings(store, pair.cmr_weights_id, PAIRED_DATASETS["cmr"], ids, X_cmr, pooling=pooling_of(cmr.model))
    faults.point("paired:embed")
    out = {"pair_id": pair_id, "n_test": len(ids), "retrieval": None, "projected": False}
    rows = MetricRows(pair_id)
    if projectors is None and pair.projectors_path:
        from cardio_core.models.projector import load_projectors
        ecg_head, cmr_head, _ = load_projectors(pair.projectors_path)
        projectors = (ecg_head, cmr_head)
    if projectors is None:
        rows.add(PAIRED_SCOPE, "retrieval_top10", None,
                 note="no contrastive projectors for this pair (the released files do not include them)")
        rows.save(store, [PAIRED_SCOPE], RETRIEVAL_METRICS)
        mark_analysed(store, pair_id, [])
        return out
    z_ecg = project_to_shared(projectors[0], X_ecg, device=device)
    z_cmr = project_to_shared(projectors[1], X_cmr, device=device)
    store_embeddings(store, pair_id, PAIRED_DATASETS["ecg"], ids, z_ecg, pooling="projected")
    store_embeddings(store, pair_id, PAIRED_DATASETS["cmr"], ids, z_cmr, pooling="projected")
    # where each subject's CMR matches its own ECG in the shared space (the paper's Fig. 6 heatmap)
    compute_patch_similarity(store, pair_id, ids, view.cmr.arrays, cmr.model, projectors[1], z_ecg, device=device)
    retrieval = cross_modal_retrieval(z_ecg, z_cmr, seed=seed)
    for direction, summary in retrieval.items():
        for key, m in summary.items():
            rows.add(PAIRED_SCOPE, f"retrieval_{key}", m["value"], label=direction, ci=(m["ci_low"], m["ci_high"]),
                     chance=m["chance"], n=m["n"])
    rows.save(store, [PAIRED_SCOPE], RETRIEVAL_METRICS)
    faults.point("paired:metrics")
    views = [PAIRED_VIEW] if project_weights(store, pair_id, PAIRED_VIEW, modality="paired", seed=42) else []
    mark_analysed(store, pair_id, views)
    out.update(retrieval=retrieval, projected=True)
    return out
