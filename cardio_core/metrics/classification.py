"""Classification metrics (method.md §5): per-class F1/precision/recall, macro averages,
prevalence-F1 correlation, CMR accuracy over folds.

Every ratio with a zero denominator is defined as 0 (method.md §7, mistake 8: a
class with no predicted positives must give precision 0, not 1e29 or NaN). This
matches ``sklearn.metrics.precision_recall_fscore_support(zero_division=0)``.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import pearsonr

from cardio_core.metrics.summary import fold_summary

DEFAULT_THRESHOLD = 0.5


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator with 0/0 (and x/0) := 0."""
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    out = np.zeros(np.broadcast(numerator, denominator).shape)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def _check_multilabel(y_true, y_score, classes) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    y_true = np.asarray(y_true)
    y_score = np.asarray(y_score, dtype=np.float64)
    if y_true.ndim != 2:
        raise ValueError(f"y_true must be a 2-D 0/1 matrix (n_records, n_classes), got shape {y_true.shape}")
    if y_score.shape != y_true.shape:
        raise ValueError(f"y_score has shape {y_score.shape} but y_true has shape {y_true.shape}")
    if len(y_true) == 0:
        raise ValueError("y_true has no records")
    if not np.isin(y_true, (0, 1)).all():
        raise ValueError("y_true must contain only 0 and 1")
    if not np.isfinite(y_score).all():
        raise ValueError("y_score contains NaN or infinite values")
    classes = tuple(str(c) for c in classes)
    if len(classes) != y_true.shape[1]:
        raise ValueError(f"classes names {len(classes)} labels but y_true has {y_true.shape[1]} columns")
    if len(set(classes)) != len(classes):
        raise ValueError("classes contains duplicate names")
    return y_true.astype(bool), y_score, classes


def binarize(y_score, threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
    """Probabilities (or 0/1 predictions) -> bool predictions, positive when score > threshold.

    Strictly greater, as torchmetrics does; 0/1 predictions pass through unchanged
    for any threshold in [0, 1).
    """
    if not 0 <= threshold < 1:
        raise ValueError(f"threshold must be in [0, 1), got {threshold}")
    return np.asarray(y_score, dtype=np.float64) > threshold


def per_class_scores(y_true, y_score, classes: Sequence[str], threshold: float = DEFAULT_THRESHOLD) -> pd.DataFrame:
    """One row per class: precision, recall, f1, support, predicted, prevalence.

    ``y_score`` holds probabilities or 0/1 predictions, shape like ``y_true``.
    ``support`` = true positives + false negatives; ``predicted`` = predicted
    positives; ``prevalence`` = support / n_records. 0/0 := 0 throughout.
    """
    y_true, y_score, classes = _check_multilabel(y_true, y_score, classes)
    y_pred = binarize(y_score, threshold)
    tp = (y_true & y_pred).sum(0)
    support = y_true.sum(0)
    predicted = y_pred.sum(0)
    precision = _safe_divide(tp, predicted)
    recall = _safe_divide(tp, support)
    # F1 from counts (2TP / (2TP + FP + FN)) equals the harmonic mean of P and R
    # whenever that is defined, and is 0 instead of NaN when TP = FP = FN = 0.
    f1 = _safe_divide(2 * tp, support + predicted)
    return pd.DataFrame({
        "precision": precision, "recall": recall, "f1": f1,
        "support": support.astype(int), "predicted": predicted.astype(int),
        "prevalence": support / len(y_true),
    }, index=pd.Index(classes, name="class"))


def f1_bootstrap_ci(y_true, y_score, classes: Sequence[str], *, threshold: float = DEFAULT_THRESHOLD,
                    n_boot: int = 200, seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """Percentile bootstrap intervals of each class's F1 and of the macro F1, resampling records.

    Each resample draws n records with replacement (one multinomial count vector), recounts
    TP, FP and FN per class and recomputes F1 with the same 0/0 := 0 rule as per_class_scores.
    Returns a DataFrame indexed by class plus 'macro', with columns ci_low and ci_high.
    """
    y_true, y_score, classes = _check_multilabel(y_true, y_score, classes)
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    y_pred = binarize(y_score, threshold)
    n = len(y_true)
    weights = np.random.default_rng(seed).multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(np.float64)
    tp = weights @ (y_true & y_pred).astype(np.float64)
    f1 = _safe_divide(2 * tp, weights @ y_true.astype(np.float64) + weights @ y_pred.astype(np.float64))
    f1 = np.column_stack([f1, f1.mean(1)])       # (n_boot, n_classes + 1): the macro F1 of each resample
    alpha = (1 - level) / 2
    low, high = np.quantile(f1, [alpha, 1 - alpha], axis=0)
    return pd.DataFrame({"ci_low": low, "ci_high": high}, index=pd.Index([*classes, "macro"], name="class"))


def macro_average(scores: pd.DataFrame) -> dict[str, float]:
    """Unweighted mean over classes of precision, recall and F1 (every class counts,
    including classes absent from the test split, as sklearn's ``average='macro'``)."""
    missing = {"precision", "recall", "f1"} - set(scores.columns)
    if missing:
        raise ValueError(f"scores lacks the columns {sorted(missing)}; pass per_class_scores() output")
    if len(scores) == 0:
        raise ValueError("scores has no classes")
    return {name: float(scores[name].mean()) for name in ("precision", "recall", "f1")}


def prevalence_f1_pearson(prevalence, f1) -> tuple[float, float]:
    """Pearson r (and two-sided p) between label prevalence and F1 across classes.

    Returns (nan, nan) when either input is constant, where r is undefined.
    """
    prevalence = np.asarray(prevalence, dtype=np.float64)
    f1 = np.asarray(f1, dtype=np.float64)
    if prevalence.ndim != 1 or f1.ndim != 1 or len(prevalence) != len(f1):
        raise ValueError(f"prevalence and f1 must be 1-D of equal length, got shapes {prevalence.shape} and {f1.shape}")
    if len(f1) < 3:
        raise ValueError(f"Pearson r needs at least 3 classes, got {len(f1)}")
    if not (np.isfinite(prevalence).all() and np.isfinite(f1).all()):
        raise ValueError("prevalence and f1 must be finite")
    if np.ptp(prevalence) == 0 or np.ptp(f1) == 0:
        return float("nan"), float("nan")
    result = pearsonr(prevalence, f1)
    return float(result.statistic), float(result.pvalue)


def prevalence_f1_fit(prevalence, f1) -> dict[str, float]:
    """Least-squares line of F1 on prevalence with prevalence_f1_pearson's r and p (for the chart).

    NaN pairs are left out; with fewer than 3 classes or a constant input every value is NaN.
    """
    prevalence = np.asarray(prevalence, dtype=np.float64)
    f1 = np.asarray(f1, dtype=np.float64)
    keep = np.isfinite(prevalence) & np.isfinite(f1)
    prevalence, f1 = prevalence[keep], f1[keep]
    nan = float("nan")
    if len(f1) < 3 or np.ptp(prevalence) == 0:
        return {"slope": nan, "intercept": nan, "r": nan, "p": nan, "n": int(len(f1))}
    slope, intercept = np.polyfit(prevalence, f1, 1)
    r, p = prevalence_f1_pearson(prevalence, f1)
    return {"slope": float(slope), "intercept": float(intercept), "r": r, "p": p, "n": int(len(f1))}


def accuracy_mean_se(per_fold_accuracies) -> tuple[float, float]:
    """Mean accuracy over folds and its standard error, sd(ddof=1) / sqrt(n_folds)."""
    acc = np.asarray(per_fold_accuracies, dtype=np.float64)
    if acc.ndim != 1 or len(acc) < 2:
        raise ValueError(f"need a 1-D sequence of at least 2 fold accuracies, got shape {acc.shape}")
    if not np.isfinite(acc).all() or (acc < 0).any() or (acc > 1).any():
        raise ValueError(f"accuracies must lie in [0, 1], got {acc.tolist()}")
    summary = fold_summary(acc)
    return summary.mean, summary.se


def accuracy(y_true, y_pred) -> float:
    """Share of records whose single-label prediction is right (CMR: 5 groups)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.ndim != 1 or y_true.shape != y_pred.shape or len(y_true) == 0:
        raise ValueError(f"y_true and y_pred must be 1-D of equal non-zero length, got {y_true.shape} and {y_pred.shape}")
    return float((y_true == y_pred).mean())
