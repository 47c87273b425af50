"""cardio_core.metrics.summary: fold summaries and percent change, with their edge cases defined once."""
import math

import numpy as np
import pytest

from cardio_core.metrics import SILHOUETTE_PERCENT_FLOOR, embedding_scale, fold_summary, percent_change


def test_fold_summary_mean_sd_se_and_missing_folds():
    s = fold_summary([0.6, 0.7, 0.5, float("nan")])     # a fold that could not be scored is left out
    assert (s.mean, s.n) == (pytest.approx(0.6), 3)
    assert s.sd == pytest.approx(np.std([0.6, 0.7, 0.5], ddof=1)) and s.se == pytest.approx(s.sd / math.sqrt(3))
    one = fold_summary([0.4])
    assert one.mean == 0.4 and math.isnan(one.sd) and math.isnan(one.se)
    assert fold_summary([]).n == 0 and math.isnan(fold_summary([]).mean)
    with pytest.raises(ValueError, match="infinite"):
        fold_summary([1.0, float("inf")])


def test_percent_change_is_nan_never_inf_where_it_means_nothing():
    assert percent_change(0.3, 0.2) == pytest.approx(50.0)
    for base in (0.0, -0.1, float("nan")):
        assert math.isnan(percent_change(0.3, base))
    assert math.isnan(percent_change(0.3, 0.04, floor=SILHOUETTE_PERCENT_FLOOR))
    assert percent_change(0.3, 0.2, floor=SILHOUETTE_PERCENT_FLOOR) == pytest.approx(50.0)
    out = percent_change(np.array([1.0, 2.0]), np.array([0.0, 1.0]))
    assert math.isnan(out[0]) and out[1] == pytest.approx(100.0)


def test_embedding_scale_is_the_mean_distance_to_the_centroid_and_scales_linearly():
    X = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]])
    assert embedding_scale(X) == pytest.approx(math.sqrt(2))
    assert embedding_scale(3 * X) == pytest.approx(3 * embedding_scale(X))


def test_label_efficiency_curve_is_the_t_interval_of_the_mean_over_seeds():
    from scipy import stats
    from cardio_core.metrics.summary import label_efficiency_curve
    fractions = [1.0, 1.0, 1.0, 0.1, 0.1, 0.1, 0.01, 0.01]
    values = [0.80, 0.82, 0.78, 0.60, 0.65, float("nan"), 0.30, 0.40]
    curve = label_efficiency_curve(fractions, values)
    assert curve["fraction"].tolist() == [0.01, 0.1, 1.0]
    for f in (0.01, 0.1, 1.0):
        v = np.array([x for g, x in zip(fractions, values) if g == f and x == x])
        row = curve[curve["fraction"] == f].iloc[0]
        low, high = stats.t.interval(0.95, len(v) - 1, loc=v.mean(), scale=stats.sem(v))
        assert row["n"] == len(v) and row["mean"] == pytest.approx(v.mean())
        assert row["sd"] == pytest.approx(v.std(ddof=1))
        assert (row["ci_low"], row["ci_high"]) == (pytest.approx(low), pytest.approx(high))
    one = label_efficiency_curve([0.1], [0.5])
    assert one["n"].item() == 1 and np.isnan(one["ci_low"].item()) and np.isnan(one["sd"].item())
    with pytest.raises(ValueError, match="fraction"):
        label_efficiency_curve([0.0], [0.5])
    with pytest.raises(ValueError, match="length"):
        label_efficiency_curve([0.1, 1.0], [0.5])
