"""One analysis pass over one set of weights: embeddings, then metrics, then projections.

Jobs compose it around training (the baseline before, each checkpoint after it is written);
training itself never calls it.
"""
from __future__ import annotations

from cardio_core.analysis.embeddings import embed_weights
from cardio_core.analysis.evaluate import evaluate_cmr, evaluate_ecg
from cardio_core.analysis.projections import MODALITY_VIEWS, project_weights
from cardio_core.catalog import get_weights
from cardio_core.store import Store


def analyse_weights(store: Store, weights_id: str, *, encoder=None, device: str = "cpu",
                    align_to: str | None = None, seed: int = 0) -> None:
    """Embed, score and project one set of weights.

    `encoder` (a LoadedEncoder) is the model in memory, e.g. the one being trained, so the
    file is not read again; `align_to` is the previous weights of a run (its previous checkpoint, or
    the baseline): besides each view's independent layout, an aligned layout chained to it is stored
    for the epoch evolution.
    """
    modality = get_weights(store, weights_id)["modality"]
    embed_weights(store, weights_id, device=device, encoder=encoder, modality=modality)
    if modality == "ecg":
        evaluate_ecg(store, weights_id, seed=seed)
    else:
        evaluate_cmr(store, weights_id, seed=seed)
    for view in MODALITY_VIEWS[modality]:
        project_weights(store, weights_id, view, modality=modality, chain_after=align_to)


def is_analysed(store: Store, weights_id: str) -> bool:
    return bool(store.scalar("SELECT count(*) FROM projections WHERE weights_id = ?", [weights_id]))


def ensure_analysed(store: Store, weights_id: str, *, device: str = "cpu") -> bool:
    """Analyse weights that have not been analysed yet; True if it ran."""
    if is_analysed(store, weights_id):
        return False
    analyse_weights(store, weights_id, device=device)
    return True
