"""One analysis pass over one set of weights: embeddings, then metrics (and, for an ECG encoder beside a paired
cohort, the phenotype probe), then projections, then the mark.

Jobs compose it around training (the baseline before, each checkpoint after it is written);
training itself never calls it.

Each step is its own transaction (an embedding pass or a UMAP fit is long), so a pass killed
or cancelled half-way leaves some steps written. Completeness is therefore a mark
(`analysis_complete`) that a pass removes when it starts and writes last; every "is it
done?" check reads the mark (is_analysed), never the presence of some projection.
"""
from __future__ import annotations

from cardio_core import faults
from cardio_core.analysis.attention import cache_attention_sample
from cardio_core.analysis.demographic_baselines import ensure_label_baseline
from cardio_core.analysis.embeddings import embed_weights
from cardio_core.analysis.evaluate import evaluate_cmr, evaluate_ecg
from cardio_core.analysis.phenotypes import (analyse_phenotype_head, analyse_phenotypes, paired_cohort_ingested,
                                             phenotype_head_of)
from cardio_core.analysis.projections import MODALITY_VIEWS, project_weights
from cardio_core.catalog import get_weights
from cardio_core.store import Store


def analyse_weights(store: Store, weights_id: str, *, encoder=None, device: str = "cpu",
                    align_to: str | None = None, seed: int = 0, phenotype_head: dict | None = None) -> None:
    """Embed, score and project one set of weights.

    `encoder` (a LoadedEncoder) is the model in memory, e.g. the one being trained, so the
    file is not read again; `align_to` is the previous weights of a run (its previous checkpoint, or
    the baseline): besides each view's independent layout, an aligned layout chained to it is stored
    for the epoch evolution. `phenotype_head` (analysis.phenotypes.phenotype_head_of) marks an encoder whose head
    regresses the paired cohort's phenotypes.
    """
    modality = get_weights(store, weights_id)["modality"]
    clear_analysed(store, weights_id)
    embed_weights(store, weights_id, device=device, encoder=encoder, modality=modality)
    faults.point("analysis:embed")
    if modality == "ecg":   # where the model looks, cached for the first few evaluation records
        cache_attention_sample(store, weights_id, encoder=encoder, device=device)
    # A workspace may hold only some cohorts (a paired cohort alone, for MMCL pre-training): the scores of a
    # cohort that is not ingested are skipped, not failed; its views below then have nothing to project.
    if _is_ingested(store, EVALUATION_DATASET[modality]):
        if modality == "ecg":
            evaluate_ecg(store, weights_id, seed=seed)
        else:
            evaluate_cmr(store, weights_id, seed=seed)
        # what age, sex and body size alone predict of the same labels, once per ingest, shown beside the scores
        ensure_label_baseline(store, EVALUATION_DATASET[modality], seed=seed)
    faults.point("analysis:metrics")
    # What the ECG embedding knows about the heart (issue 13): a ridge probe of the paired cohort's CMR
    # phenotypes, for every ECG encoder, wherever a paired cohort is ingested.
    if modality == "ecg" and paired_cohort_ingested(store):
        from cardio_core.catalog import open_weights
        encoder = encoder or open_weights(store, weights_id, seed=seed)
        # a checkpoint fine-tuned on phenotypes is scored by its own head instead of a probe (its metadata says
        # so; the model in memory during training has no metadata, so the training job passes it)
        where = str(encoder.source.path) if encoder.source is not None else weights_id
        head = phenotype_head or phenotype_head_of(encoder.meta, where)
        if head is not None:
            analyse_phenotype_head(store, weights_id, encoder=encoder, head=head, device=device, seed=seed)
        else:
            analyse_phenotypes(store, weights_id, encoder=encoder, device=device, seed=seed)
        faults.point("analysis:phenotypes")
    views = []
    for view in MODALITY_VIEWS[modality]:
        if project_weights(store, weights_id, view, modality=modality, chain_after=align_to):
            views.append(view)
        faults.point(f"analysis:project:{view}")
    mark_analysed(store, weights_id, views)


EVALUATION_DATASET = {"ecg": "chapman", "cmr": "acdc"}


def _is_ingested(store: Store, dataset_id: str) -> bool:
    return bool(store.query("SELECT 1 FROM datasets WHERE dataset_id = ?", [dataset_id]))


def clear_analysed(store: Store, weights_id: str) -> None:
    store.execute("DELETE FROM analysis_complete WHERE weights_id = ?", [weights_id])


def mark_analysed(store: Store, weights_id: str, views=()) -> None:
    """The completeness mark, written after the last step of an analysis pass."""
    import json
    with store.write() as con:
        con.execute("DELETE FROM analysis_complete WHERE weights_id = ?", [weights_id])
        con.execute("INSERT INTO analysis_complete (weights_id, views) VALUES (?, ?)",
                    [weights_id, json.dumps(sorted(views))])


def is_analysed(store: Store, weights_id: str) -> bool:
    """Whether an analysis pass of these weights ran to its end (the mark), not merely started."""
    return bool(store.scalar("SELECT count(*) FROM analysis_complete WHERE weights_id = ?", [weights_id]))


def ensure_analysed(store: Store, weights_id: str, *, device: str = "cpu") -> bool:
    """Analyse weights that have not been analysed yet; True if it ran."""
    if is_analysed(store, weights_id):
        return False
    analyse_weights(store, weights_id, device=device)
    return True
