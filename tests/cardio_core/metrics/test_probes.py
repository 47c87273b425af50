import numpy as np
import pytest

from cardio_core.metrics import demographic_probe, domain_shift_score, linear_probe


def _embeddings(n=300, d=32, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d))


def test_linear_probe_recovers_planted_labels():
    X = _embeddings(400)
    Y = np.stack([X[:, 0] > 0, X[:, 1] + X[:, 2] > 0.5, X[:, 3] < -1.0], axis=1).astype(int)
    result = linear_probe(X[:300], Y[:300], X[300:], Y[300:], ["SR", "SB", "AFIB"])
    table = result["per_class"]
    assert list(table.index) == ["SR", "SB", "AFIB"]
    assert (table["auroc"] > 0.9).all()
    assert result["macro_auroc"] > 0.95
    assert result["macro_f1"] > 0.8
    assert result["macro_f1"] == pytest.approx(table["f1"].mean())


def test_linear_probe_on_random_labels_is_at_chance():
    X = _embeddings(600, d=8)
    Y = np.random.default_rng(1).integers(0, 2, size=(600, 2))
    result = linear_probe(X[:400], Y[:400], X[400:], Y[400:])
    assert 0.35 < result["macro_auroc"] < 0.65
    assert list(result["per_class"].index) == ["class_0", "class_1"]


def test_linear_probe_handles_constant_classes():
    X = _embeddings(200, d=8)
    Y = np.zeros((200, 2), dtype=int)
    Y[:, 0] = X[:, 0] > 0           # learnable
    Y[150:, 1] = 1                  # absent from training rows, present in test rows
    result = linear_probe(X[:150], Y[:150], X[150:], Y[150:], ["SR", "WPW"])
    table = result["per_class"]
    assert table.loc["WPW", "predicted"] == 0 and table.loc["WPW", "f1"] == 0.0
    assert np.isnan(table.loc["WPW", "auroc"])   # single value in the test rows
    assert result["macro_auroc"] == pytest.approx(table.loc["SR", "auroc"])


def test_linear_probe_argument_errors():
    X = _embeddings(20, d=4)
    Y = (X[:, :1] > 0).astype(int)
    with pytest.raises(ValueError, match="dims"):
        linear_probe(X, Y, X[:, :3], Y)
    with pytest.raises(ValueError, match="only 0 and 1"):
        linear_probe(X, Y * 3, X, Y)
    with pytest.raises(ValueError, match="records"):
        linear_probe(X, Y[:10], X, Y)


def test_demographic_probe_reads_planted_age_and_sex():
    X = _embeddings(300)
    rng = np.random.default_rng(2)
    age = 55 + 12 * (X[:, :4] @ np.array([1.0, -0.5, 0.5, 0.25])) + rng.normal(0, 2, 300)
    sex = np.where(X[:, 5] + 0.3 * rng.normal(size=300) > 0, "M", "F").astype(object)
    sex[:7] = None  # missing values are skipped, not guessed
    out = demographic_probe(X, age=age, sex=sex, cv=5, seed=0)
    assert out["age"]["r2"] > 0.8
    assert out["age"]["mae"] < 5
    assert out["age"]["n"] == 300
    assert out["sex"]["auroc"] > 0.9 and out["sex"]["n"] == 293
    assert out["sex"]["positive"] == "M"
    assert "bmi" not in out


def test_demographic_probe_on_unrelated_targets_is_near_zero():
    X = _embeddings(300)
    rng = np.random.default_rng(3)
    bmi = rng.normal(26, 4, 300)
    bmi[::10] = np.nan
    sex = rng.integers(0, 2, 300)
    out = demographic_probe(X, bmi=bmi, sex=sex, cv=5, seed=0)
    assert out["bmi"]["r2"] < 0.1
    assert out["bmi"]["n"] == 270
    assert 0.35 < out["sex"]["auroc"] < 0.65


def test_demographic_probe_is_seeded():
    X = _embeddings(120, d=8)
    age = X[:, 0] * 10 + 50
    assert demographic_probe(X, age=age, seed=4) == demographic_probe(X, age=age, seed=4)


def test_demographic_probe_argument_errors():
    X = _embeddings(40, d=4)
    with pytest.raises(ValueError, match="at least one"):
        demographic_probe(X)
    with pytest.raises(ValueError, match="exactly 2 values"):
        demographic_probe(X, sex=["M", "F", "X", "M"] * 10)
    with pytest.raises(ValueError, match="one value per record"):
        demographic_probe(X, age=np.arange(10.0))
    with pytest.raises(ValueError, match="numeric"):
        demographic_probe(X, age=["old"] * 40)
    with pytest.raises(ValueError, match="rarer value"):
        demographic_probe(X, sex=["M"] * 38 + ["F"] * 2)


def test_domain_shift_score():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(200, 16))
    shifted = rng.normal(size=(200, 16)) + 1.5
    same = rng.normal(size=(200, 16))
    assert domain_shift_score(a, shifted, seed=0) > 0.99
    assert 0.4 < domain_shift_score(a, same, seed=0) < 0.6
    with pytest.raises(ValueError, match="dims"):
        domain_shift_score(a, same[:, :3])
    with pytest.raises(ValueError, match="at least cv"):
        domain_shift_score(a, same[:3])


def test_metrics_benchmark_runs_end_to_end_on_a_small_set(capsys):
    from bench.metrics import main

    main(["--n=400", "--dim=16", "--n-boot=20"])
    out = capsys.readouterr().out
    assert "total" in out and "domain AUROC" in out


def test_linear_probe_solves_the_penalised_likelihood_to_convergence():
    # The probe's solver (Newton-Cholesky) must land where a tightly converged reference does; lbfgs at its
    # default tolerance stops visibly short on correlated embeddings.
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    rng = np.random.default_rng(4)
    base = rng.normal(size=(300, 8))
    X = base @ rng.normal(size=(8, 64)) + 0.1 * rng.normal(size=(300, 64))  # low-rank, badly conditioned
    y = (base[:, 0] + 0.5 * rng.normal(size=300) > 1.0).astype(int)
    from cardio_core.metrics.probes import _logistic
    p = _logistic(1.0, 1000).fit(X[:200], y[:200]).predict_proba(X[200:])[:, 1]
    scaler = StandardScaler().fit(X[:200])
    ref = LogisticRegression(C=1.0, tol=1e-12, max_iter=100000).fit(scaler.transform(X[:200]), y[:200])
    p_ref = ref.predict_proba(scaler.transform(X[200:]))[:, 1]
    np.testing.assert_allclose(p, p_ref, atol=1e-5)
