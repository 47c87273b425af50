"""The demographics-only baseline (issue 13): scikit-learn's gradient boosting on age, sex, height, weight."""
import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.metrics import accuracy_score

from cardio_core.metrics.demographics import (HGB_GRID, MIN_LEAF, demographic_classification, demographic_matrix,
                                              demographic_multilabel, demographic_regression)
from cardio_core.metrics.phenotypes import pearson_r


def _people(n=400, seed=0):
    rng = np.random.default_rng(seed)
    sex = rng.choice(["M", "F"], size=n)
    height = np.where(sex == "M", 176, 163) + rng.normal(0, 7, n)
    weight = 0.9 * (height - 100) + rng.normal(0, 10, n)
    age = rng.uniform(30, 80, n)
    return age, sex, height, weight


def test_demographic_matrix_codes_sex_and_drops_empty_columns():
    X, names = demographic_matrix(age=[50, 60, np.nan], sex=["M", "F", "?"], height=[np.nan] * 3,
                                  weight=[70, 80, 90])
    assert names == ("age", "sex", "weight")  # height has no value at all
    np.testing.assert_array_equal(X[:, 1][:2], [1.0, 0.0])
    assert np.isnan(X[2, 1]) and np.isnan(X[2, 0])
    with pytest.raises(ValueError, match="weight has 2 values"):
        demographic_matrix(age=[1, 2, 3], weight=[1, 2])
    with pytest.raises(ValueError, match="every demographic column is empty"):
        demographic_matrix(height=[np.nan, np.nan])


def test_regression_finds_what_body_size_carries_and_matches_sklearn():
    age, sex, height, weight = _people()
    X, _ = demographic_matrix(age, sex, height, weight)
    rng = np.random.default_rng(1)
    lvedv = 2.0 * weight + 30 * (sex == "M") + rng.normal(0, 10, len(X))  # body size drives the volume
    noise = rng.normal(size=len(X))                                     # nothing demographic in it
    Y = np.column_stack([lvedv, noise])
    tr, va, te = slice(0, 250), slice(250, 320), slice(320, 400)
    out = demographic_regression(X[tr], Y[tr], X[va], Y[va], X[te], names=["LVEDV", "noise"], seed=0)
    assert pearson_r(Y[te, 0], out["predictions"][:, 0]) > 0.7
    assert abs(pearson_r(Y[te, 1], out["predictions"][:, 1])) < 0.35
    # the prediction is scikit-learn's, with the grid point it reports
    p = out["params"]["LVEDV"]
    assert p in [dict(g) for g in HGB_GRID]
    ref = HistGradientBoostingRegressor(**p, min_samples_leaf=MIN_LEAF, early_stopping=False, random_state=0)
    np.testing.assert_allclose(out["predictions"][:, 0], ref.fit(X[tr], Y[tr, 0]).predict(X[te]))
    again = demographic_regression(X[tr], Y[tr], X[va], Y[va], X[te], names=["LVEDV", "noise"], seed=0)
    np.testing.assert_array_equal(again["predictions"], out["predictions"])


def test_classification_with_and_without_a_validation_split():
    age, sex, height, weight = _people(300, seed=2)
    X, _ = demographic_matrix(height=height, weight=weight)   # ACDC has height and weight only
    bmi = weight / (height / 100) ** 2
    groups = np.where(bmi > 27, "obese-ish", np.where(bmi < 21, "lean", "normal"))
    out = demographic_classification(X[:200], groups[:200], X[200:], seed=0)   # inner 3-fold CV picks
    assert accuracy_score(groups[200:], out["predicted"]) > 0.7
    assert out["probabilities"].shape == (100, 3) and set(out["classes"]) == set(groups)
    ref = HistGradientBoostingClassifier(**out["params"], min_samples_leaf=MIN_LEAF, early_stopping=False,
                                         random_state=0).fit(X[:200], groups[:200])
    np.testing.assert_allclose(out["probabilities"], ref.predict_proba(X[200:]))
    with_val = demographic_classification(X[:150], groups[:150], X[200:], X_val=X[150:200], y_val=groups[150:200])
    assert 0 <= with_val["val_accuracy"] <= 1
    with pytest.raises(ValueError, match="single class"):
        demographic_classification(X[:10], ["a"] * 10, X[10:20])


def test_multilabel_predicts_a_constant_label_as_its_constant():
    age, sex, height, weight = _people(300, seed=3)
    X, _ = demographic_matrix(age=age, sex=sex)   # Chapman has age and sex only
    Y = np.column_stack([(age > 60).astype(int), np.zeros(300, int)])
    out = demographic_multilabel(X[:200], Y[:200], X[200:250], Y[200:250], X[250:], classes=["OLD", "NEVER"])
    assert out["params"]["NEVER"] is None and (out["probabilities"][:, 1] == 0).all()
    from sklearn.metrics import roc_auc_score
    assert roc_auc_score(Y[250:, 0], out["probabilities"][:, 0]) > 0.9


def test_classification_with_a_class_too_rare_for_three_inner_folds_still_fits():
    from cardio_core.metrics.demographics import HGB_GRID, demographic_classification
    rng = np.random.default_rng(0)
    X = rng.normal(size=(11, 2))
    y = np.array(["a"] * 5 + ["b"] * 4 + ["c"] * 2)       # 'c' has 2 members: 2 inner folds
    out = demographic_classification(X, y, X[:3], seed=0)
    assert out["params"] in [dict(g) for g in HGB_GRID] and np.isfinite(out["val_accuracy"])
    y1 = np.array(["a"] * 10 + ["c"])                     # one member: no inner split, the first grid point
    out = demographic_classification(X, y1, X[:3], seed=0)
    assert out["params"] == dict(HGB_GRID[0]) and np.isnan(out["val_accuracy"])
