"""Metric rows as the store keeps them: collected per weights id and written in one transaction.

The embedding step stores the classification scores of a trained head (store_classification),
the CMR fine-tune its per-fold accuracy (store_cmr_accuracy), and evaluate.py the metrics of
the embedding spaces. Each replaces only the metric names it owns.
"""
from __future__ import annotations

import contextlib
import json

import numpy as np
import pandas as pd

from cardio_core import metrics as M
from cardio_core.errors import CardioError
from cardio_core.store import Store

# What store_classification owns (and so replaces on a re-run).
CLASSIFICATION_METRICS = ("f1", "precision", "recall", "support", "prevalence", "prevalence_f1_r")


class MetricRows:
    """Collects metric rows for one weights id and writes them in one transaction."""

    def __init__(self, weights_id: str):
        self.weights_id = weights_id
        self.rows: list[dict] = []

    def add(self, scope, name, value, *, label="", fold=-1, ci=(None, None), **extra):
        value = None if value is None or (isinstance(value, float) and np.isnan(value)) else float(value)
        self.rows.append(dict(weights_id=self.weights_id, scope=scope, name=name, label=label, fold=int(fold),
                              value=value, ci_low=ci[0], ci_high=ci[1],
                              extra=json.dumps(extra, default=float) if extra else None))

    @contextlib.contextmanager
    def guard(self, scope: str, name: str):
        """A metric that cannot be computed on this set (too few records of a kind, a dataset
        not ingested) is stored as missing with the reason, and the others go on."""
        try:
            yield
        except (ValueError, KeyError, CardioError) as exc:
            self.add(scope, name, None, note=str(exc))

    def save(self, store: Store, scopes, names) -> None:
        """Replace this weights' metrics of these names in these scopes (and only those:
        the classification metrics of the embedding step live in the same scopes)."""
        df = pd.DataFrame(self.rows, columns=["weights_id", "scope", "name", "label", "fold", "value",
                                              "ci_low", "ci_high", "extra"])
        df = df.drop_duplicates(subset=["scope", "name", "label", "fold"], keep="last")
        with store.write() as con:
            con.execute("DELETE FROM metrics WHERE weights_id = ? AND list_contains(?, scope) "
                        "AND list_contains(?, name)", [self.weights_id, list(scopes), list(names)])
            if len(df):
                con.register("_m", df)
                con.execute("INSERT INTO metrics (weights_id, scope, name, label, fold, value, ci_low, ci_high, extra) "
                            "SELECT weights_id, scope, name, label, fold, value, ci_low, ci_high, extra::JSON FROM _m")
                con.unregister("_m")


def store_classification(store: Store, weights_id: str, y_true: np.ndarray, y_prob: np.ndarray,
                         classes, *, scope: str = "chapman_test", n_boot: int = 200, seed: int = 0) -> None:
    """Per-class F1 / precision / recall at 0.5 and macro averages, from a head's probabilities; F1 with a
    bootstrap 95% interval over records (metrics.f1_bootstrap_ci)."""
    rows = MetricRows(weights_id)
    scores = M.per_class_scores(y_true, y_prob, classes)
    ci = M.f1_bootstrap_ci(y_true, y_prob, classes, n_boot=n_boot, seed=seed)
    for cls, r in scores.iterrows():
        for name in ("f1", "precision", "recall", "support", "prevalence"):
            interval = (ci.loc[cls, "ci_low"], ci.loc[cls, "ci_high"]) if name == "f1" else (None, None)
            rows.add(scope, name, r[name], label=cls, ci=interval)
    for name, v in M.macro_average(scores).items():
        interval = (ci.loc["macro", "ci_low"], ci.loc["macro", "ci_high"]) if name == "f1" else (None, None)
        rows.add(scope, name, v, ci=interval)
    r, p = M.prevalence_f1_pearson(scores["prevalence"].values, scores["f1"].values)
    rows.add(scope, "prevalence_f1_r", r, p=p)
    rows.save(store, [scope], CLASSIFICATION_METRICS)


def store_cmr_accuracy(store: Store, weights_id: str, per_fold: dict[int, float]) -> None:
    rows = MetricRows(weights_id)
    for k, acc in sorted(per_fold.items()):
        rows.add("acdc", "accuracy", acc, fold=k)
    if per_fold:
        summary = M.fold_summary(list(per_fold.values()))
        mean, se = summary.mean, summary.se
        rows.add("acdc", "accuracy", mean, se=se, ci=(mean - se, mean + se) if se == se else (None, None))
    rows.save(store, ["acdc"], ["accuracy"])
