"""What demographics alone predict of the labels an embedding is scored on (issue 13; the paper's Table I idea):
scikit-learn's histogram gradient boosting on the demographics a dataset carries (cardio_core.metrics.demographics),
stored under the model id 'demographics' next to the embeddings' own scores.

- Chapman rhythm labels: age and sex (Chapman carries no height or weight). Fitted on the same train records as
  the frozen-embedding linear probe (the same seeded subsample), each label's grid point chosen on val, scored
  on test with the linear probe's own scoring (macro F1 at 0.5, macro AUROC): scope 'chapman_test',
  metric 'linear_probe_macro_f1', so it reads as "the probe, on demographics instead of an embedding".
- ACDC groups: height and weight (ACDC's Info.cfg carries no age or sex). The encoders' 5 cross-validation folds:
  each fold's patients predicted by a model fitted on the other four (grid point by inner 3-fold CV), accuracy
  per fold and its mean +- SE, as the fine-tuned classifiers are scored: scope 'acdc', metric 'accuracy'.

Each is computed once per ingest of its dataset (ingesting the dataset again clears it).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from cardio_core.analysis.embeddings import probe_train_limit, probe_train_subset
from cardio_core.analysis.metric_rows import MetricRows
from cardio_core.data.dataset_view import load_view
from cardio_core.metrics.demographics import demographic_classification, demographic_matrix, demographic_multilabel
from cardio_core.metrics.probes import probability_scores
from cardio_core.metrics.summary import fold_summary
from cardio_core.store import Store
from cardio_core.vocabulary import DEMOGRAPHICS_MODEL, DEMOGRAPHICS_SCOPE

CHAPMAN_FEATURES = ("age", "sex")
ACDC_FEATURES = ("height", "weight")


def _matrix(records, features):
    return demographic_matrix(**{f: (records[f].tolist() if f == "sex" else records[f].to_numpy(float))
                                 for f in features})


def matrices_by_split(record_frames, features) -> tuple[list[np.ndarray], tuple[str, ...]]:
    """One demographics matrix per records frame (train, val, test), built as one so that every split keeps the
    same columns (a column empty in one split alone is not dropped from that split only)."""
    X_all, kept = _matrix(pd.concat(list(record_frames), ignore_index=True), features)
    bounds = np.cumsum([0] + [len(r) for r in record_frames])
    return [X_all[bounds[i]:bounds[i + 1]] for i in range(len(record_frames))], kept


def chapman_demographics_baseline(store: Store, *, seed: int = 0) -> dict:
    rows = MetricRows(DEMOGRAPHICS_MODEL)
    out = {}
    with rows.guard("chapman_test", "linear_probe_macro_f1"):
        views = {s: load_view(store, "chapman", where="r.split = ?", params=[s]) for s in ("train", "val", "test")}
        train = views["train"]
        keep = probe_train_subset(train.records["record_id"].tolist(), limit=probe_train_limit(store), seed=seed)
        n = {s: len(v.records) for s, v in views.items()}
        if min(n.values()) == 0:
            raise ValueError(f"Chapman has {n['train']} train, {n['val']} val and {n['test']} test records; the "
                             "demographics baseline needs all three")
        (X_train, X_val, X_test), features = matrices_by_split(
            [train.records[keep], views["val"].records, views["test"].records], CHAPMAN_FEATURES)
        fit = demographic_multilabel(X_train, train.Y[keep], X_val, views["val"].Y, X_test, classes=train.classes,
                                     seed=seed)
        scores = probability_scores(views["test"].Y, fit["probabilities"], train.classes)
        rows.add("chapman_test", "linear_probe_macro_f1", scores["macro_f1"], macro_auroc=scores["macro_auroc"],
                 model="hist_gradient_boosting", features=list(features), fitted_on="train",
                 n_train=int(keep.sum()), chosen_on="val", scored_on="test", n_test=n["test"])
        out = {"macro_f1": scores["macro_f1"], "macro_auroc": scores["macro_auroc"], "features": features}
    rows.save(store, ["chapman_test"], ["linear_probe_macro_f1"])
    return out


def acdc_demographics_baseline(store: Store, *, seed: int = 0) -> dict:
    rows = MetricRows(DEMOGRAPHICS_MODEL)
    out = {}
    with rows.guard("acdc", "accuracy"):
        view = load_view(store, "acdc")
        if len(view.records) == 0:
            raise ValueError("ACDC has no usable records")
        groups = np.array([view.classes[i] for i in view.Y.argmax(1)])
        folds = view.records["fold"].to_numpy()
        X, features = _matrix(view.records, ACDC_FEATURES)
        per_fold = {}
        for k in sorted(set(int(f) for f in folds)):
            test = folds == k
            try:
                fit = demographic_classification(X[~test], groups[~test], X[test], seed=seed)
            except ValueError as exc:   # a fold whose training side holds one group
                rows.add("acdc", "accuracy", None, fold=k, note=str(exc))
                continue
            per_fold[k] = float(np.mean(fit["predicted"] == groups[test]))
            rows.add("acdc", "accuracy", per_fold[k], fold=k, n=int(test.sum()), params=fit["params"])
        summary = fold_summary(list(per_fold.values()))
        rows.add("acdc", "accuracy", summary.mean, se=summary.se, n_folds=summary.n,
                 ci=(summary.mean - summary.se, summary.mean + summary.se) if summary.n > 1 else (None, None),
                 model="hist_gradient_boosting", features=list(features), fitted_on="the other folds")
        out = {"accuracy": summary.mean, "se": summary.se, "per_fold": per_fold, "features": features}
    rows.save(store, ["acdc"], ["accuracy"])
    return out


BASELINES = {"chapman": chapman_demographics_baseline, "acdc": acdc_demographics_baseline}


def ensure_label_baseline(store: Store, dataset_id: str, *, seed: int = 0) -> bool:
    """Compute the demographics baseline of a dataset's labels once per ingest; True if it ran."""
    if store.scalar("SELECT count(*) FROM metrics WHERE weights_id = ? AND scope = ?",
                    [DEMOGRAPHICS_MODEL, DEMOGRAPHICS_SCOPE[dataset_id]]):
        return False
    BASELINES[dataset_id](store, seed=seed)
    return True
