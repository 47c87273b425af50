"""CMR phenotypes predicted from an ECG encoder's frozen embeddings, on a paired cohort (issue 13; the paper's
Table IV), and the demographics-only baseline they are shown beside.

For one set of ECG weights:
1. the embeddings of every usable paired subject (train, val, test), stored for the dataset `paired_ecg`;
2. a ridge probe per phenotype: fitted on train, its penalty chosen on val, scored on test
   (cardio_core.metrics.phenotypes);
3. Pearson r per phenotype and the LV / RV group means, with bootstrap intervals, stored as metrics of the
   weights in scope 'paired_phenotypes'; the test predictions go to `phenotype_predictions` for the scatters.

The demographics baseline (age, sex, height, weight through gradient boosting, cardio_core.metrics.demographics)
is stored the same way under the model id 'demographics', once per ingested cohort.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from cardio_core.analysis.embeddings import compute_embeddings, pooling_of, store_embeddings
from cardio_core.analysis.metric_rows import MetricRows
from cardio_core.errors import CardioError
from cardio_core.analysis.demographic_baselines import matrices_by_split
from cardio_core.metrics.demographics import DEMOGRAPHIC_FEATURES, demographic_regression
from cardio_core.metrics.phenotypes import PHENOTYPES, PUBLISHED_GROUP_R, phenotype_scores, ridge_probe
from cardio_core.store import Store
from cardio_core.vocabulary import DEMOGRAPHICS_MODEL, PAIRED_COHORT, PAIRED_DATASETS, PHENOTYPE_SCOPE

PHENOTYPE_METRICS = ("phenotype_r", "phenotype_group_r")
SPLITS = ("train", "val", "test")
MIN_SUBJECTS = {"train": 10, "val": 3, "test": 3}


def paired_cohort_ingested(store: Store) -> bool:
    have = {r[0] for r in store.query("SELECT dataset_id FROM datasets WHERE list_contains(?, dataset_id)",
                                      [list(PAIRED_DATASETS.values())])}
    return have == set(PAIRED_DATASETS.values())


def phenotype_matrix(store: Store, subject_ids) -> np.ndarray:
    """(n, 10) phenotypes of these subjects in PHENOTYPES order; NaN where the manifest leaves one empty."""
    ids = [str(s) for s in subject_ids]
    long = store.query_df("SELECT subject_id, name, value FROM subject_values WHERE cohort = ? AND kind = 'phenotype' "
                          "AND list_contains(?, subject_id)", [PAIRED_COHORT, ids])
    wide = long.pivot_table(index="subject_id", columns="name", values="value", aggfunc="first") if len(long) \
        else pd.DataFrame()
    return wide.reindex(index=ids, columns=list(PHENOTYPES)).to_numpy(dtype=np.float64)


def _paired_splits(store: Store) -> dict:
    from cardio_core.data.paired_view import load_paired_view
    views = {split: load_paired_view(store, split) for split in SPLITS}
    for split, least in MIN_SUBJECTS.items():
        if len(views[split]) < least:
            raise CardioError(f"the paired cohort has {len(views[split])} usable {split} subjects; the phenotype "
                              f"probe needs at least {least}")
    return views


def save_phenotype_results(store: Store, model_id: str, subject_ids, observed: np.ndarray, predicted: np.ndarray,
                           scores: dict, **extra) -> None:
    """The metrics rows and the test predictions of one model, each replaced in its own transaction."""
    rows = MetricRows(model_id)
    for name, s in scores["per_phenotype"].items():
        rows.add(PHENOTYPE_SCOPE, "phenotype_r", s["r"], label=name, ci=(s["ci_low"], s["ci_high"]), n=s["n"],
                 **{k: (v.get(name) if isinstance(v, dict) else v) for k, v in extra.items()})
    for group, s in scores["groups"].items():
        rows.add(PHENOTYPE_SCOPE, "phenotype_group_r", s["r"], label=group, ci=(s["ci_low"], s["ci_high"]),
                 members=s["members"], published={k: v.get(group) for k, v in PUBLISHED_GROUP_R.items()})
    rows.save(store, [PHENOTYPE_SCOPE], PHENOTYPE_METRICS)
    ids = [str(s) for s in subject_ids]
    df = pd.DataFrame({"model_id": model_id, "subject_id": np.repeat(ids, len(PHENOTYPES)),
                       "name": np.tile(PHENOTYPES, len(ids)), "predicted": predicted.ravel(),
                       "observed": observed.ravel()})
    with store.write() as con:
        con.execute("DELETE FROM phenotype_predictions WHERE model_id = ?", [model_id])
        con.register("_pp", df)
        con.execute("INSERT INTO phenotype_predictions SELECT model_id, subject_id, name, predicted, observed "
                    "FROM _pp")
        con.unregister("_pp")


def _note(store: Store, model_id: str, reason: str) -> None:
    rows = MetricRows(model_id)
    rows.add(PHENOTYPE_SCOPE, "phenotype_group_r", None, label="LV", note=reason)
    rows.save(store, [PHENOTYPE_SCOPE], PHENOTYPE_METRICS)


def analyse_phenotypes(store: Store, weights_id: str, *, encoder=None, device: str = "cpu", seed: int = 0) -> dict:
    """The ridge probe of one ECG encoder (see the module docstring). A cohort too small to probe is stored as a
    missing score with the reason, not raised: the rest of the analysis goes on."""
    from cardio_core.catalog import open_weights
    try:
        views = _paired_splits(store)
    except CardioError as exc:
        _note(store, weights_id, str(exc))
        return {"weights_id": weights_id, "skipped": str(exc)}
    from cardio_core.models.device import resolve_device
    enc = encoder or open_weights(store, weights_id, seed=seed)
    device = resolve_device(device)
    X, Y = {}, {}
    for split, view in views.items():
        X[split], _ = compute_embeddings(enc.model, view.ecg.arrays, modality="ecg", device=device)
        store_embeddings(store, weights_id, PAIRED_DATASETS["ecg"], view.subject_ids, X[split],
                         pooling=pooling_of(enc.model))
        Y[split] = phenotype_matrix(store, view.subject_ids)
    probe = ridge_probe(X["train"], Y["train"], X["val"], Y["val"], X["test"], names=PHENOTYPES)
    scores = phenotype_scores(Y["test"], probe["predictions"], PHENOTYPES, seed=seed)
    save_phenotype_results(store, weights_id, views["test"].subject_ids, Y["test"], probe["predictions"], scores,
                           model="ridge", alpha=probe["alpha"], val_r=probe["val_r"], n_train=probe["n_train"],
                           n_val=len(views["val"]), fitted_on="train", chosen_on="val", scored_on="test")
    ensure_demographics_baseline(store, seed=seed)
    return {"weights_id": weights_id, "scores": scores}


def phenotype_head_of(meta: dict | None, where: str = "the checkpoint") -> dict | None:
    """The phenotype regressor a checkpoint's head is (pipeline/phenotype_finetune.phenotype_head_meta), or None
    for any other head. A head that names phenotypes this version does not know is refused, not misread."""
    meta = meta or {}
    if meta.get("task") != "phenotypes":
        return None
    names = list(meta.get("targets") or [])
    mean, sd = list(meta.get("target_mean") or []), list(meta.get("target_sd") or [])
    if sorted(names) != sorted(PHENOTYPES) or len(mean) != len(names) or len(sd) != len(names):
        raise CardioError(f"{where}: its phenotype head names {names} with {len(mean)} means and {len(sd)} SDs; "
                          f"expected one of each for {', '.join(PHENOTYPES)}")
    return {"targets": names, "target_mean": mean, "target_sd": sd}


def analyse_phenotype_head(store: Store, weights_id: str, *, encoder, head: dict, device: str = "cpu",
                           seed: int = 0) -> dict:
    """A phenotype-fine-tuned ECG encoder scored by its own head (no probe on top): its outputs on the paired
    val and test subjects, un-standardised with the training mean and SD the checkpoint carries, scored on test
    as the probes are (phenotype_scores), the val r beside them (val chose the checkpoint)."""
    try:
        views = _paired_splits(store)
    except CardioError as exc:
        _note(store, weights_id, str(exc))
        return {"weights_id": weights_id, "skipped": str(exc)}
    from cardio_core.metrics.phenotypes import pearson_r
    from cardio_core.models.device import resolve_device
    device = resolve_device(device)
    order = [head["targets"].index(name) for name in PHENOTYPES]      # the head's outputs in PHENOTYPES order
    mean, sd = np.asarray(head["target_mean"])[order], np.asarray(head["target_sd"])[order]
    pred, Y = {}, {}
    for split in ("val", "test"):
        view = views[split]
        X, out = compute_embeddings(encoder.model, view.ecg.arrays, modality="ecg", device=device, with_head=True,
                                    raw_head=True)
        store_embeddings(store, weights_id, PAIRED_DATASETS["ecg"], view.subject_ids, X,
                         pooling=pooling_of(encoder.model))
        pred[split] = out[:, order].astype(np.float64) * sd + mean
        Y[split] = phenotype_matrix(store, view.subject_ids)
    scores = phenotype_scores(Y["test"], pred["test"], PHENOTYPES, seed=seed)
    val_r = {name: pearson_r(Y["val"][:, j], pred["val"][:, j]) for j, name in enumerate(PHENOTYPES)}
    save_phenotype_results(store, weights_id, views["test"].subject_ids, Y["test"], pred["test"], scores,
                           model="finetuned_regression", val_r=val_r, n_val=len(views["val"]), fitted_on="train",
                           chosen_on="val", scored_on="test")
    ensure_demographics_baseline(store, seed=seed)
    return {"weights_id": weights_id, "scores": scores}


def analyse_demographics_baseline(store: Store, *, seed: int = 0) -> dict:
    """Age, sex, height and weight alone, through gradient boosting: the same phenotypes, splits and scores."""
    try:
        views = _paired_splits(store)
    except CardioError as exc:
        _note(store, DEMOGRAPHICS_MODEL, str(exc))
        return {"skipped": str(exc)}
    Xs, features = matrices_by_split([views[s].ecg.records for s in SPLITS], DEMOGRAPHIC_FEATURES)
    X = dict(zip(SPLITS, Xs))
    Y = {s: phenotype_matrix(store, views[s].subject_ids) for s in SPLITS}
    fit = demographic_regression(X["train"], Y["train"], X["val"], Y["val"], X["test"], names=PHENOTYPES, seed=seed)
    scores = phenotype_scores(Y["test"], fit["predictions"], PHENOTYPES, seed=seed)
    save_phenotype_results(store, DEMOGRAPHICS_MODEL, views["test"].subject_ids, Y["test"], fit["predictions"],
                           scores, model="hist_gradient_boosting", features=list(features), params=fit["params"],
                           val_r=fit["val_r"], fitted_on="train", chosen_on="val", scored_on="test")
    return {"scores": scores, "features": features}


def ensure_demographics_baseline(store: Store, *, seed: int = 0) -> bool:
    """Compute the demographics baseline once per ingested cohort (re-ingesting the cohort clears it)."""
    if store.scalar("SELECT count(*) FROM metrics WHERE weights_id = ? AND scope = ?",
                    [DEMOGRAPHICS_MODEL, PHENOTYPE_SCOPE]):
        return False
    analyse_demographics_baseline(store, seed=seed)
    return True
