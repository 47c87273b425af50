"""Phenotype probes and Pearson r against scipy and scikit-learn (issue 13)."""
import numpy as np
import pytest
from scipy import stats
from sklearn.linear_model import Ridge
from sklearn.preprocessing import StandardScaler

from cardio_core.metrics.phenotypes import (PHENOTYPE_GROUPS, PHENOTYPES, pearson_r, phenotype_scores,
                                            ridge_probe)


def test_pearson_r_matches_scipy():
    rng = np.random.default_rng(0)
    a = rng.normal(size=200)
    b = 0.6 * a + rng.normal(size=200)
    assert pearson_r(a, b) == pytest.approx(stats.pearsonr(a, b).statistic, abs=1e-12)


def test_pearson_r_leaves_out_missing_pairs_and_is_nan_when_constant():
    a = np.array([1.0, 2.0, np.nan, 4.0, 5.0])
    b = np.array([2.0, 1.0, 3.0, 5.0, 4.0])
    ok = np.isfinite(a)
    assert pearson_r(a, b) == pytest.approx(stats.pearsonr(a[ok], b[ok]).statistic)
    assert np.isnan(pearson_r([1, 2, 3, 4], [7, 7, 7, 7]))
    assert np.isnan(pearson_r([1, 2], [1, 2]))
    with pytest.raises(ValueError, match="different lengths"):
        pearson_r([1, 2, 3], [1, 2])


def _cohort(seed=0, n=300, d=16):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    W = rng.normal(size=(d, 3))
    Y = X @ W * [1.0, 10.0, 0.1] + rng.normal(size=(n, 3)) * [2.0, 20.0, 0.2] + [150.0, 60.0, 0.5]
    return X, Y


def test_ridge_probe_matches_sklearn_with_the_penalty_it_chose_on_val():
    X, Y = _cohort()
    tr, va, te = slice(0, 200), slice(200, 250), slice(250, 300)
    out = ridge_probe(X[tr], Y[tr], X[va], Y[va], X[te], names=["a", "b", "c"], alphas=(0.1, 10.0, 1000.0))
    scaler = StandardScaler().fit(X[tr])
    for j, name in enumerate(["a", "b", "c"]):
        # the chosen penalty is the one with the best val r among those tried
        val_rs = {}
        for a in (0.1, 10.0, 1000.0):
            y = Y[tr, j]
            m = Ridge(alpha=a).fit(scaler.transform(X[tr]), (y - y.mean()) / y.std())
            val_rs[a] = stats.pearsonr(Y[va, j], m.predict(scaler.transform(X[va]))).statistic
        best = max(val_rs, key=val_rs.get)
        assert out["alpha"][name] == best
        assert out["val_r"][name] == pytest.approx(val_rs[best])
        y = Y[tr, j]
        ref = Ridge(alpha=best).fit(scaler.transform(X[tr]), (y - y.mean()) / y.std())
        expected = ref.predict(scaler.transform(X[te])) * y.std() + y.mean()
        np.testing.assert_allclose(out["predictions"][:, j], expected, rtol=1e-10)
        assert stats.pearsonr(Y[te, j], out["predictions"][:, j]).statistic > 0.7  # linear truth is found


def test_ridge_probe_leaves_out_subjects_missing_a_phenotype():
    X, Y = _cohort()
    Y[:50, 0] = np.nan
    out = ridge_probe(X[:200], Y[:200], X[200:250], Y[200:250], X[250:], names=["a", "b", "c"])
    assert out["n_train"] == {"a": 150, "b": 200, "c": 200}
    assert np.isfinite(out["predictions"]).all()


def test_ridge_probe_validates_its_arguments():
    X, Y = _cohort()
    with pytest.raises(ValueError, match="widths differ"):
        ridge_probe(X[:200], Y[:200], X[200:250, :3], Y[200:250], X[250:])
    with pytest.raises(ValueError, match="alphas must be positive"):
        ridge_probe(X[:200], Y[:200], X[200:250], Y[200:250], X[250:], alphas=(0.0,))
    with pytest.raises(ValueError, match="names gives 2"):
        ridge_probe(X[:200], Y[:200], X[200:250], Y[200:250], X[250:], names=["a", "b"])


def test_phenotype_scores_r_per_phenotype_group_means_and_intervals():
    rng = np.random.default_rng(1)
    n = 120
    truth = rng.normal(size=(n, len(PHENOTYPES)))
    pred = truth + rng.normal(size=truth.shape) * np.linspace(0.2, 3.0, len(PHENOTYPES))
    out = phenotype_scores(truth, pred, PHENOTYPES, n_boot=300, seed=3)
    for j, name in enumerate(PHENOTYPES):
        r = out["per_phenotype"][name]
        assert r["r"] == pytest.approx(stats.pearsonr(truth[:, j], pred[:, j]).statistic)
        assert r["ci_low"] < r["r"] < r["ci_high"]
        assert r["n"] == n
    for group, members in PHENOTYPE_GROUPS.items():
        expected = np.mean([stats.pearsonr(truth[:, PHENOTYPES.index(m)], pred[:, PHENOTYPES.index(m)]).statistic
                            for m in members])
        g = out["groups"][group]
        assert g["r"] == pytest.approx(expected)
        assert g["ci_low"] < g["r"] < g["ci_high"]
    # deterministic for a seed
    again = phenotype_scores(truth, pred, PHENOTYPES, n_boot=300, seed=3)
    assert again["groups"]["LV"]["ci_low"] == out["groups"]["LV"]["ci_low"]


def test_a_group_with_a_missing_member_has_no_mean():
    rng = np.random.default_rng(2)
    truth = rng.normal(size=(50, 2))
    out = phenotype_scores(truth, truth + 0.1, ["RVEDV", "RVEF"], n_boot=20)
    assert np.isnan(out["groups"]["RV"]["r"])  # RVESV and RVSV are not there: not the paper's RV mean
    assert "LV" not in out["groups"]


def test_regression_line_matches_scipy_linregress():
    from scipy.stats import linregress
    from cardio_core.metrics.phenotypes import regression_line
    rng = np.random.default_rng(3)
    x = rng.normal(150, 20, 40)
    y = 0.6 * x + rng.normal(0, 10, 40)
    y[5] = np.nan                                     # a missing prediction is left out, not propagated
    ref = linregress(np.delete(x, 5), np.delete(y, 5))
    got = regression_line(x, y)
    assert got["slope"] == pytest.approx(ref.slope) and got["intercept"] == pytest.approx(ref.intercept)
    assert got["r"] == pytest.approx(ref.rvalue) and got["n"] == 39
    flat = regression_line(np.ones(5), np.arange(5.0))
    assert np.isnan(flat["slope"]) and np.isnan(flat["r"])
