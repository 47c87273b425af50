"""CMR phenotypes read out of frozen ECG embeddings (issue 13; method.md §8, the paper's Table IV).

- :func:`pearson_r`: Pearson's r, NaN (never an error) where one side is constant.
- :func:`ridge_probe`: a standardised ridge regression per phenotype, fitted on train, its penalty chosen
  on val by Pearson r, scored on test.
- :func:`phenotype_scores`: Pearson r per phenotype and the group means (LV, RV) of any predictions, with
  95 % percentile bootstrap intervals over test subjects (one resample shared by every phenotype, so a
  group mean's interval is the interval of the mean, not a mean of intervals).

Numpy in, numpy / dicts out; no store, no torch.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.linear_model import Ridge
from sklearn.preprocessing import StandardScaler

from cardio_core.metrics.embedding import _check_embeddings

PHENOTYPES = ("LVEDV", "LVESV", "LVSV", "LVEF", "LVCO", "LVM", "RVEDV", "RVESV", "RVSV", "RVEF")
# The paper's groups (method.md §8). Wall thickness, Ecc and Err are not in a paired manifest.
PHENOTYPE_GROUPS = {"LV": ("LVEDV", "LVESV", "LVSV", "LVEF", "LVCO", "LVM"),
                    "RV": ("RVEDV", "RVESV", "RVSV", "RVEF")}
# Mean Pearson r per group as published (method.md §8), shown beside ours; UK Biobank, 6,007 test subjects.
PUBLISHED_GROUP_R = {
    "supervised ViT": {"LV": 0.56, "RV": 0.58},
    "MDM": {"LV": 0.62, "RV": 0.64},
    "MMCL without MDM": {"LV": 0.58, "RV": 0.60},
    "MMCL": {"LV": 0.63, "RV": 0.65},
    "CMR reference (supervised ResNet on the CMR)": {"LV": 0.84, "RV": 0.85},
}
# Ridge penalties tried per phenotype (on standardised embeddings); the one with the best val r is kept.
RIDGE_ALPHAS = tuple(float(a) for a in np.logspace(-2, 4, 13))


def _finite_pairs(a, b, name_a: str, name_b: str) -> tuple[np.ndarray, np.ndarray]:
    """Two 1-D float arrays of equal length, kept where both are finite (a missing value drops its pair)."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"{name_a} and {name_b} have different lengths: {a.shape[0]} and {b.shape[0]}")
    ok = np.isfinite(a) & np.isfinite(b)
    return a[ok], b[ok]


def pearson_r(y_true, y_pred) -> float:
    """Pearson's correlation of two 1-D arrays over their finite pairs; NaN with fewer than 3 pairs or where
    either side is constant (a constant prediction carries no ranking, it is not 'r = 0')."""
    a, b = _finite_pairs(y_true, y_pred, "y_true", "y_pred")
    if len(a) < 3:
        return float("nan")
    a, b = a - a.mean(), b - b.mean()
    den = np.sqrt((a * a).sum() * (b * b).sum())
    if den <= 1e-12 * max(1.0, np.abs(a).max() * np.abs(b).max() * len(a)):
        return float("nan")
    return float(np.clip((a * b).sum() / den, -1.0, 1.0))


def best_by_score(candidates):
    """The candidate tuple (score, ...) with the highest finite score; the first one when none is finite.
    Shared by every "fit on train, choose on val" loop, so ties and NaN scores are settled one way."""
    best = None
    for cand in candidates:
        if best is None or (np.isfinite(cand[0]) and (not np.isfinite(best[0]) or cand[0] > best[0])):
            best = cand
    return best


def _check_targets(Y, n: int, name: str) -> np.ndarray:
    Y = np.asarray(Y, dtype=np.float64)
    if Y.ndim == 1:
        Y = Y[:, None]
    if Y.ndim != 2 or len(Y) != n:
        raise ValueError(f"{name} must be (n_subjects, n_phenotypes) with {n} subjects, got shape {Y.shape}")
    if np.isinf(Y).any():
        raise ValueError(f"{name} contains infinite values")
    return Y


def _names(names: Sequence[str] | None, k: int) -> tuple[str, ...]:
    names = tuple(names) if names is not None else tuple(f"target_{j}" for j in range(k))
    if len(names) != k:
        raise ValueError(f"names gives {len(names)} phenotypes but Y has {k} columns")
    return names


def ridge_probe(X_train, Y_train, X_val, Y_val, X_test, *, names: Sequence[str] | None = None,
                alphas: Sequence[float] = RIDGE_ALPHAS) -> dict:
    """One ridge regression per phenotype on standardised embeddings and standardised targets: fitted on train
    (subjects missing that phenotype are left out), its penalty chosen by Pearson r on val; the model fitted on
    train with that penalty predicts test, so val chooses but never trains and test does neither.

    Returns ``{"names", "predictions": (n_test, k), "alpha": {name: a}, "val_r": {name: r}, "n_train": {...}}``.
    """
    X_train = _check_embeddings(X_train, "X_train")
    X_val = _check_embeddings(X_val, "X_val")
    X_test = _check_embeddings(X_test, "X_test")
    if not X_train.shape[1] == X_val.shape[1] == X_test.shape[1]:
        raise ValueError(f"embedding widths differ: train {X_train.shape[1]}, val {X_val.shape[1]}, "
                         f"test {X_test.shape[1]}")
    Y_train = _check_targets(Y_train, len(X_train), "Y_train")
    Y_val = _check_targets(Y_val, len(X_val), "Y_val")
    if Y_train.shape[1] != Y_val.shape[1]:
        raise ValueError(f"Y_train has {Y_train.shape[1]} phenotypes but Y_val has {Y_val.shape[1]}")
    alphas = tuple(float(a) for a in alphas)
    if not alphas or min(alphas) <= 0:
        raise ValueError(f"alphas must be positive, got {alphas}")
    names = _names(names, Y_train.shape[1])
    scaler = StandardScaler().fit(X_train)
    Z_train, Z_val, Z_test = (scaler.transform(X) for X in (X_train, X_val, X_test))
    pred = np.full((len(X_test), len(names)), np.nan)
    alpha_of, val_r, n_train = {}, {}, {}
    for j, name in enumerate(names):
        ok = np.isfinite(Y_train[:, j])
        n_train[name] = int(ok.sum())
        if ok.sum() < 3:
            alpha_of[name], val_r[name] = None, float("nan")
            continue
        # Standardised targets: the penalty means the same for a volume in ml and a fraction in %.
        mu, sd = Y_train[ok, j].mean(), Y_train[ok, j].std() or 1.0
        fits = (Ridge(alpha=a).fit(Z_train[ok], (Y_train[ok, j] - mu) / sd) for a in alphas)
        best = best_by_score((pearson_r(Y_val[:, j], m.predict(Z_val)), m.alpha, m) for m in fits)
        val_r[name], alpha_of[name] = best[0], best[1]
        pred[:, j] = best[2].predict(Z_test) * sd + mu
    return {"names": names, "predictions": pred, "alpha": alpha_of, "val_r": val_r, "n_train": n_train}


def _group_means(r: dict[str, float], groups: dict[str, Sequence[str]]) -> dict[str, float]:
    out = {}
    for group, members in groups.items():
        vals = [r[m] for m in members if m in r and np.isfinite(r[m])]
        out[group] = float(np.mean(vals)) if len(vals) == len(members) else float("nan")
    return out


def phenotype_scores(Y_true, Y_pred, names: Sequence[str] | None = None, *,
                     groups: dict[str, Sequence[str]] | None = None, n_boot: int = 200, seed: int = 0,
                     confidence: float = 0.95) -> dict:
    """Pearson r per phenotype and per group (the mean of its members' r, as the paper's Table IV), each with
    a percentile bootstrap interval over subjects.

    Returns ``{"per_phenotype": {name: {"r", "ci_low", "ci_high", "n"}}, "groups": {group: {...}}}``. A group
    whose members are not all present, or any of whose r is NaN, has r NaN (a mean over fewer phenotypes would
    not be the paper's number).
    """
    Y_true = np.asarray(Y_true, dtype=np.float64)
    Y_true = Y_true[:, None] if Y_true.ndim == 1 else Y_true
    Y_pred = _check_targets(Y_pred, len(Y_true), "Y_pred")
    if Y_true.shape != Y_pred.shape:
        raise ValueError(f"Y_true {Y_true.shape} and Y_pred {Y_pred.shape} differ in shape")
    if int(n_boot) < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    names = _names(names, Y_true.shape[1])
    groups = {g: tuple(m for m in members) for g, members in (groups or PHENOTYPE_GROUPS).items()
              if any(m in names for m in members)}

    def all_r(idx):
        per = {name: pearson_r(Y_true[idx, j], Y_pred[idx, j]) for j, name in enumerate(names)}
        return per, _group_means(per, groups)

    n = len(Y_true)
    point_per, point_groups = all_r(np.arange(n))
    rng = np.random.default_rng(seed)
    boot_per = np.full((int(n_boot), len(names)), np.nan)
    boot_groups = np.full((int(n_boot), len(groups)), np.nan)
    for b in range(int(n_boot)):
        per, grp = all_r(rng.integers(0, n, size=n))
        boot_per[b] = [per[name] for name in names]
        boot_groups[b] = [grp[g] for g in groups]
    alpha = (1 - confidence) / 2

    def interval(samples, point):
        samples = samples[np.isfinite(samples)]
        if not np.isfinite(point) or len(samples) < 2:
            return float("nan"), float("nan")
        low, high = np.quantile(samples, [alpha, 1 - alpha])
        return float(low), float(high)

    counts = {name: int((np.isfinite(Y_true[:, j]) & np.isfinite(Y_pred[:, j])).sum()) for j, name in enumerate(names)}
    out_per = {}
    for j, name in enumerate(names):
        low, high = interval(boot_per[:, j], point_per[name])
        out_per[name] = {"r": point_per[name], "ci_low": low, "ci_high": high, "n": counts[name]}
    out_groups = {}
    for k, g in enumerate(groups):
        low, high = interval(boot_groups[:, k], point_groups[g])
        out_groups[g] = {"r": point_groups[g], "ci_low": low, "ci_high": high, "members": list(groups[g])}
    return {"per_phenotype": out_per, "groups": out_groups}


def regression_line(observed, predicted) -> dict[str, float]:
    """The least-squares line of predicted on observed over the finite pairs (the line of a predicted-vs-true
    scatter) and pearson_r of the same pairs; NaN slope and intercept with fewer than 3 pairs or a constant
    observed side."""
    x, y = _finite_pairs(observed, predicted, "observed", "predicted")
    nan = float("nan")
    if len(x) < 3 or np.ptp(x) == 0:
        return {"slope": nan, "intercept": nan, "r": pearson_r(x, y), "n": int(len(x))}
    slope, intercept = np.polyfit(x, y, 1)
    return {"slope": float(slope), "intercept": float(intercept), "r": pearson_r(x, y), "n": int(len(x))}
