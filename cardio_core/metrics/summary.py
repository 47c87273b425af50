"""Summaries of metric values, one implementation each, shared by the app, the report and the pipeline:
mean ± SD / SE over folds, change and percent change against a baseline.

Edge cases are defined here once, so a number shown on a page and in a report is the
same number: missing values (NaN) are left out of a fold summary; with one value the
spread is NaN; a percent change against a baseline that is 0, negative, near zero or
missing is NaN, never infinite.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


# A per-label number resting on fewer records than this is flagged wherever it is shown (report and app).
FEW_RECORDS = 10


def few_records(n) -> bool | np.ndarray:
    """True where a per-label number rests on fewer than FEW_RECORDS records (a missing n is not flagged)."""
    arr = np.asarray(n, dtype=np.float64)
    out = np.where(np.isnan(arr), False, arr < FEW_RECORDS)
    return bool(out) if out.ndim == 0 else out


@dataclass(frozen=True)
class FoldSummary:
    mean: float
    sd: float     # sample standard deviation, ddof=1
    se: float     # standard error of the mean, sd / sqrt(n)
    n: int        # values summarised (NaN left out)


def fold_summary(values) -> FoldSummary:
    """Mean, sample SD and SE of per-fold values; NaN entries are left out (a fold that could not be scored)."""
    arr = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=np.float64).ravel()
    if np.isinf(arr).any():
        raise ValueError("fold values contain infinite values")
    arr = arr[~np.isnan(arr)]
    n = len(arr)
    if n == 0:
        return FoldSummary(math.nan, math.nan, math.nan, 0)
    if n == 1:
        return FoldSummary(float(arr[0]), math.nan, math.nan, 1)
    sd = float(arr.std(ddof=1))
    return FoldSummary(float(arr.mean()), sd, sd / math.sqrt(n), n)


def change(value, baseline):
    """value - baseline (element-wise for arrays)."""
    return np.subtract(value, baseline)


# A silhouette lies in [-1, 1]; relative to a baseline this close to 0 a percent change is noise
# (0.01 -> 0.03 is "+200 %"). Below it only the absolute change is shown.
SILHOUETTE_PERCENT_FLOOR = 0.05


def percent_change(value, baseline, *, floor: float = 0.0):
    """100 * (value - baseline) / baseline where the baseline is above `floor`; NaN elsewhere.

    NaN, never inf, for a baseline of 0, a negative baseline (a percentage of a negative number
    reads backwards) or one at or below `floor` (near zero: the ratio is noise), and where
    either value is missing. Works on scalars (returns a float) and arrays / Series (element-wise).
    """
    value = np.asarray(value, dtype=np.float64)
    base = np.asarray(baseline, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(base > max(floor, 0.0), 100.0 * (value - base) / base, np.nan)
    return float(out) if out.ndim == 0 else out


def label_efficiency_curve(fractions, values, *, confidence: float = 0.95):
    """One point per training fraction: the mean over seeds of a metric and its `confidence` interval, the
    Student t interval of the mean over the seeds (mean +- t * SD / sqrt(n), n - 1 degrees of freedom): the
    interval of a label-efficiency curve (method.md §8 reports mean +- SD over 5 seeds; SD is given too).

    `fractions` and `values` are parallel (one entry per finished run); a NaN value (a run that could not be
    scored) is left out. Returns a DataFrame sorted by fraction with columns fraction, mean, sd, n, ci_low,
    ci_high; with one seed the spread and the interval are NaN.
    """
    import pandas as pd
    from scipy import stats
    f = np.asarray(fractions, dtype=np.float64).ravel()
    v = np.asarray(values, dtype=np.float64).ravel()
    if f.shape != v.shape:
        raise ValueError(f"fractions and values differ in length: {f.size} and {v.size}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if np.isinf(v).any():
        raise ValueError("values contain infinite values")
    if np.isnan(f).any() or ((f <= 0) | (f > 1)).any():
        raise ValueError("every fraction must be in (0, 1]")
    rows = []
    for fraction in np.unique(f):
        s = fold_summary(v[f == fraction])
        half = float(stats.t.ppf(0.5 + confidence / 2, s.n - 1) * s.se) if s.n >= 2 else math.nan
        rows.append({"fraction": float(fraction), "mean": s.mean, "sd": s.sd, "n": s.n,
                     "ci_low": s.mean - half, "ci_high": s.mean + half})
    return pd.DataFrame(rows, columns=["fraction", "mean", "sd", "n", "ci_low", "ci_high"])
