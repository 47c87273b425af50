"""What age, sex, height and weight alone predict: the demographics-only baseline (issue 13; the paper's Table I
reports XGBoost on the same four inputs).

scikit-learn's histogram gradient boosting (it takes missing values as they are: Chapman has no height or
weight, ACDC no age or sex) with the small grid below, chosen on the validation split, or by 3-fold
cross-validation inside the training records where a cohort has no validation split (ACDC's folds).

- :func:`demographic_matrix`: the four inputs as a float matrix (sex M = 1, F = 0), all-missing columns dropped.
- :func:`demographic_regression`: one regressor per target (CMR phenotypes), predictions on test.
- :func:`demographic_classification`: one multi-class classifier (ACDC groups), probabilities on test.
- :func:`demographic_multilabel`: one binary classifier per label (Chapman rhythms), probabilities on test.

Numpy in, numpy / dicts out. Seeded: the same inputs and seed give the same predictions.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold

from cardio_core.metrics.phenotypes import best_by_score, pearson_r

DEMOGRAPHIC_FEATURES = ("age", "sex", "height", "weight")
# The grid: shallow trees and two learning rates (four inputs need no more); 100 boosting rounds, no early
# stopping (its internal split would change with the cohort size). Chosen per target.
HGB_GRID = tuple({"learning_rate": lr, "max_depth": depth, "max_iter": 100}
                 for lr in (0.05, 0.1) for depth in (2, 3))
MIN_LEAF = 10


def demographic_matrix(age=None, sex=None, height=None, weight=None) -> tuple[np.ndarray, tuple[str, ...]]:
    """(n, k) float matrix of the given demographics (sex 'M' -> 1, 'F' -> 0, anything else missing) and the
    names of the k columns kept: a column with no value at all is dropped (it cannot split anything)."""
    given = {"age": age, "sex": sex, "height": height, "weight": weight}
    n = next((len(v) for v in given.values() if v is not None), None)
    if n is None:
        raise ValueError("no demographic column given")
    cols, names = [], []
    for name in DEMOGRAPHIC_FEATURES:
        v = given[name]
        if v is None:
            continue
        if len(v) != n:
            raise ValueError(f"{name} has {len(v)} values, the other columns {n}")
        if name == "sex":
            col = np.array([1.0 if s == "M" else 0.0 if s == "F" else np.nan for s in v])
        else:
            col = np.asarray(v, dtype=np.float64)
        if np.isfinite(col).any():
            cols.append(col)
            names.append(name)
    if not cols:
        raise ValueError("every demographic column is empty")
    return np.column_stack(cols), tuple(names)


def _check(X, name: str) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or len(X) == 0:
        raise ValueError(f"{name} must be a non-empty (n, k) matrix, got shape {X.shape}")
    if np.isinf(X).any():
        raise ValueError(f"{name} contains infinite values")
    return X


def _regressor(params: dict, seed: int):
    return HistGradientBoostingRegressor(**params, min_samples_leaf=MIN_LEAF, early_stopping=False, random_state=seed)


def _classifier(params: dict, seed: int):
    return HistGradientBoostingClassifier(**params, min_samples_leaf=MIN_LEAF, early_stopping=False,
                                          random_state=seed)


def demographic_regression(X_train, Y_train, X_val, Y_val, X_test, *, names: Sequence[str] | None = None,
                           seed: int = 0) -> dict:
    """One gradient-boosted regressor per target, fitted on train (subjects missing that target left out), its
    grid point chosen by Pearson r on val. Returns ``{"names", "predictions" (n_test, k), "params", "val_r"}``."""
    X_train, X_val, X_test = _check(X_train, "X_train"), _check(X_val, "X_val"), _check(X_test, "X_test")
    Y_train = np.asarray(Y_train, dtype=np.float64).reshape(len(X_train), -1)
    Y_val = np.asarray(Y_val, dtype=np.float64).reshape(len(X_val), -1)
    k = Y_train.shape[1]
    names = tuple(names) if names is not None else tuple(f"target_{j}" for j in range(k))
    if len(names) != k:
        raise ValueError(f"names gives {len(names)} targets but Y has {k} columns")
    pred = np.full((len(X_test), k), np.nan)
    chosen, val_r = {}, {}
    for j, name in enumerate(names):
        ok = np.isfinite(Y_train[:, j])
        if ok.sum() < 2 * MIN_LEAF:
            chosen[name], val_r[name] = None, float("nan")
            continue
        fits = ((params, _regressor(params, seed).fit(X_train[ok], Y_train[ok, j])) for params in HGB_GRID)
        best = best_by_score((pearson_r(Y_val[:, j], m.predict(X_val)), params, m) for params, m in fits)
        val_r[name], chosen[name] = best[0], dict(best[1])
        pred[:, j] = best[2].predict(X_test)
    return {"names": names, "predictions": pred, "params": chosen, "val_r": val_r}


def _choose_classifier(X_train, y_train, X_val, y_val, seed: int, score) -> tuple[dict, float]:
    """The grid point with the best validation score; without a validation split, the best mean score over a
    seeded 3-fold split of the training records."""
    results = []
    strat = y_train if y_train.ndim == 1 else y_train.argmax(axis=1)
    # inner folds: 3, fewer where the rarest class has fewer members; none possible -> the first grid point
    n_splits = min(3, int(np.unique(strat, return_counts=True)[1].min()))
    if X_val is None and n_splits < 2:
        return dict(HGB_GRID[0]), float("nan")
    for params in HGB_GRID:
        if X_val is not None:
            model = _classifier(params, seed).fit(X_train, y_train)
            results.append(score(y_val, model, X_val))
            continue
        folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        vals = []
        for tr, va in folds.split(X_train, strat):
            if len(np.unique(y_train[tr])) < 2:
                continue
            model = _classifier(params, seed).fit(X_train[tr], y_train[tr])
            vals.append(score(y_train[va], model, X_train[va]))
        results.append(float(np.nanmean(vals)) if vals else float("nan"))
    scores = np.array(results, dtype=float)
    best = int(np.nanargmax(scores)) if np.isfinite(scores).any() else 0
    return dict(HGB_GRID[best]), float(scores[best])


def demographic_classification(X_train, y_train, X_test, *, X_val=None, y_val=None, seed: int = 0) -> dict:
    """One multi-class classifier (e.g. the ACDC groups), grid point chosen by accuracy on val (or by inner
    3-fold CV). Returns ``{"classes", "probabilities" (n_test, C), "predicted", "params", "val_accuracy"}``."""
    X_train, X_test = _check(X_train, "X_train"), _check(X_test, "X_test")
    y_train = np.asarray(y_train)
    if len(y_train) != len(X_train):
        raise ValueError(f"y_train has {len(y_train)} values for {len(X_train)} records")
    if len(np.unique(y_train)) < 2:
        raise ValueError("y_train has a single class: nothing to learn")
    if X_val is not None:
        X_val, y_val = _check(X_val, "X_val"), np.asarray(y_val)
    params, val = _choose_classifier(X_train, y_train, X_val, y_val, seed,
                                     lambda y, m, X: accuracy_score(y, m.predict(X)))
    model = _classifier(params, seed).fit(X_train, y_train)
    return {"classes": list(model.classes_), "probabilities": model.predict_proba(X_test),
            "predicted": model.predict(X_test), "params": params, "val_accuracy": val}


def demographic_multilabel(X_train, Y_train, X_val, Y_val, X_test, *, classes: Sequence[str] | None = None,
                           seed: int = 0) -> dict:
    """One binary classifier per label (e.g. Chapman's), each with its grid point chosen by AUROC on val. A label
    with a single value in train is predicted as that constant. Returns ``{"classes", "probabilities"}``."""
    X_train, X_val, X_test = _check(X_train, "X_train"), _check(X_val, "X_val"), _check(X_test, "X_test")
    Y_train = np.asarray(Y_train).reshape(len(X_train), -1).astype(int)
    Y_val = np.asarray(Y_val).reshape(len(X_val), -1).astype(int)
    k = Y_train.shape[1]
    classes = tuple(classes) if classes is not None else tuple(f"class_{j}" for j in range(k))
    if len(classes) != k:
        raise ValueError(f"classes names {len(classes)} labels but Y has {k} columns")

    def auroc(y, m, X):
        return roc_auc_score(y, m.predict_proba(X)[:, 1]) if 0 < y.sum() < len(y) else float("nan")

    prob = np.empty((len(X_test), k))
    params = {}
    for j, cls in enumerate(classes):
        y = Y_train[:, j]
        if y.min() == y.max():
            prob[:, j], params[cls] = float(y[0]), None
            continue
        params[cls], _ = _choose_classifier(X_train, y, X_val, Y_val[:, j], seed, auroc)
        prob[:, j] = _classifier(params[cls], seed).fit(X_train, y).predict_proba(X_test)[:, 1]
    return {"classes": classes, "probabilities": prob, "params": params}
