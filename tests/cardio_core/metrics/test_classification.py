import numpy as np
import pytest
from scipy.stats import pearsonr
from sklearn.metrics import precision_recall_fscore_support

from cardio_core.labels import CLASSES
from cardio_core.metrics import (
    accuracy,
    accuracy_mean_se,
    binarize,
    macro_average,
    per_class_scores,
    prevalence_f1_pearson,
)

CLS3 = ["AFIB", "SB", "SR"]


def test_per_class_scores_hand_computed():
    y_true = np.array([[1, 0, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    y_prob = np.array([[0.9, 0.1, 0.2], [0.3, 0.2, 0.1], [0.8, 0.7, 0.6], [0.1, 0.9, 0.7]])
    t = per_class_scores(y_true, y_prob, CLS3)
    # AFIB: TP 1 (row 0), FN 1 (row 1), FP 1 (row 2) -> P 1/2, R 1/2, F1 1/2
    assert t.loc["AFIB", ["precision", "recall", "f1"]].tolist() == pytest.approx([0.5, 0.5, 0.5])
    # SB: TP 1 (row 2), FP 1 (row 3) -> P 1/2, R 1, F1 2/3
    assert t.loc["SB", ["precision", "recall", "f1"]].tolist() == pytest.approx([0.5, 1.0, 2 / 3])
    assert t["support"].tolist() == [2, 1, 2]
    assert t["predicted"].tolist() == [2, 2, 2]
    assert t["prevalence"].tolist() == pytest.approx([0.5, 0.25, 0.5])


def test_no_predicted_positives_gives_zero_not_nan_or_huge():
    """method.md §7 mistake 8: 0/0 precision must be 0, and macro precision must stay in [0, 1]."""
    y_true = np.array([[1, 0], [1, 0], [0, 1], [0, 0]])
    y_prob = np.array([[0.9, 0.0], [0.8, 0.1], [0.2, 0.3], [0.1, 0.2]])  # SB never predicted
    t = per_class_scores(y_true, y_prob, ["AFIB", "SB"])
    assert t.loc["SB", "predicted"] == 0
    assert t.loc["SB", "precision"] == 0.0
    assert t.loc["SB", "recall"] == 0.0
    assert t.loc["SB", "f1"] == 0.0
    macro = macro_average(t)
    assert macro["precision"] == pytest.approx(0.5)
    assert all(0.0 <= v <= 1.0 for v in macro.values())


def test_absent_class_never_predicted_scores_zero():
    y_true = np.array([[1, 0], [0, 0]])
    t = per_class_scores(y_true, np.array([[1, 0], [0, 0]]), ["SR", "PACE"])
    assert t.loc["PACE"].drop(["support", "predicted", "prevalence"]).tolist() == [0.0, 0.0, 0.0]
    assert np.isfinite(t.to_numpy(dtype=float)).all()


def test_matches_sklearn_zero_division_0_on_20_classes():
    rng = np.random.default_rng(0)
    n, C = 300, len(CLASSES)
    prevalence = np.geomspace(0.5, 0.003, C)  # rare classes have few or no positives
    y_true = (rng.random((n, C)) < prevalence).astype(int)
    y_prob = np.clip(0.6 * y_true + rng.normal(0.1, 0.25, size=(n, C)), 0, 1)
    y_prob[:, -3:] = 0.0  # three classes with no predicted positives
    y_true[:, -1] = 0  # and one of them absent from the split: TP = FP = FN = 0
    t = per_class_scores(y_true, y_prob, CLASSES)
    assert (t["predicted"] == 0).sum() >= 3 and t["support"].iloc[-1] == 0
    y_pred = (y_prob > 0.5).astype(int)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, average=None, zero_division=0)
    np.testing.assert_allclose(t["precision"], p)
    np.testing.assert_allclose(t["recall"], r)
    np.testing.assert_allclose(t["f1"], f)
    np.testing.assert_array_equal(t["support"], s)
    mp, mr, mf, _ = precision_recall_fscore_support(y_true, y_pred, average="macro", zero_division=0)
    assert macro_average(t) == pytest.approx({"precision": mp, "recall": mr, "f1": mf})


def test_threshold_is_strict_and_predictions_pass_through():
    assert binarize([0.5, 0.50001, 0.2]).tolist() == [False, True, False]
    assert binarize([1, 0, 1]).tolist() == [True, False, True]
    y_true = np.array([[1], [0]])
    assert per_class_scores(y_true, np.array([[1], [0]]), ["SR"]).loc["SR", "f1"] == 1.0
    with pytest.raises(ValueError, match="threshold"):
        binarize([0.3], threshold=1.0)


def test_per_class_scores_argument_errors():
    with pytest.raises(ValueError, match="shape"):
        per_class_scores(np.zeros((3, 2)), np.zeros((3, 3)), ["A", "B"])
    with pytest.raises(ValueError, match="only 0 and 1"):
        per_class_scores(np.full((3, 2), 2), np.zeros((3, 2)), ["A", "B"])
    with pytest.raises(ValueError, match="names 3 labels"):
        per_class_scores(np.zeros((3, 2)), np.zeros((3, 2)), ["A", "B", "C"])
    with pytest.raises(ValueError, match="NaN"):
        per_class_scores(np.zeros((1, 1)), np.array([[np.nan]]), ["A"])


def test_prevalence_f1_pearson_matches_scipy():
    prevalence = np.array([0.4, 0.2, 0.1, 0.05, 0.01])
    f1 = np.array([0.9, 0.8, 0.5, 0.6, 0.1])
    r, p = prevalence_f1_pearson(prevalence, f1)
    expected = pearsonr(prevalence, f1)
    assert r == pytest.approx(expected.statistic) and p == pytest.approx(expected.pvalue)
    assert r > 0.8
    r_const, p_const = prevalence_f1_pearson(prevalence, np.zeros(5))
    assert np.isnan(r_const) and np.isnan(p_const)
    with pytest.raises(ValueError, match="equal length"):
        prevalence_f1_pearson(prevalence, f1[:4])


def test_accuracy_mean_se():
    mean, se = accuracy_mean_se([0.6, 0.7, 0.5, 0.65, 0.7])
    assert mean == pytest.approx(0.63)
    assert se == pytest.approx(np.std([0.6, 0.7, 0.5, 0.65, 0.7], ddof=1) / np.sqrt(5))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        accuracy_mean_se([0.5, 1.5])
    with pytest.raises(ValueError, match="at least 2"):
        accuracy_mean_se([0.5])
    assert accuracy(np.array(["NOR", "DCM", "HCM"]), np.array(["NOR", "HCM", "HCM"])) == pytest.approx(2 / 3)


def test_f1_bootstrap_ci_matches_resampling_the_records():
    from cardio_core.metrics import f1_bootstrap_ci
    rng = np.random.default_rng(3)
    y_true = (rng.random((120, 4)) < [0.1, 0.3, 0.5, 0.05]).astype(int)
    y_score = np.clip(y_true * 0.4 + rng.random(y_true.shape) * 0.5, 0, 1)
    classes = ["a", "b", "c", "d"]
    ci = f1_bootstrap_ci(y_true, y_score, classes, n_boot=50, seed=7)
    # reference: the same multinomial draws, as explicit resamples scored by per_class_scores
    counts = np.random.default_rng(7).multinomial(120, np.full(120, 1 / 120), size=50)
    per_resample = []
    for c in counts:
        idx = np.repeat(np.arange(120), c)
        scores = per_class_scores(y_true[idx], y_score[idx], classes)
        per_resample.append([*scores["f1"], scores["f1"].mean()])
    low, high = np.quantile(np.array(per_resample), [0.025, 0.975], axis=0)
    np.testing.assert_allclose(ci["ci_low"].to_numpy(), low, atol=1e-12)
    np.testing.assert_allclose(ci["ci_high"].to_numpy(), high, atol=1e-12)
    point = per_class_scores(y_true, y_score, classes)["f1"]
    assert (ci.loc[classes, "ci_low"].to_numpy() <= point.to_numpy() + 1e-12).all()
    assert list(ci.index) == [*classes, "macro"]
