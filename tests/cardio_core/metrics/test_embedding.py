import math

import numpy as np
import pytest
from sklearn.metrics import silhouette_samples, silhouette_score

from cardio_core.labels import CLASSES, RHYTHM_LABELS
import pandas as pd

from cardio_core.metrics import (
    paired_silhouette_change,
    bootstrap_ci,
    centroid_table,
    cross_domain_distances,
    fold_mean_sd,
    intra_inter_ratio,
    knn_label_purity,
    label_centroids,
    label_matrix,
    multi_labelled_rhythm_mask,
    rhythm_centroids,
    rhythm_label_of,
    share_closer_to,
    silhouette_overall,
    silhouette_per_label,
    silhouette_report,
    single_labelled_rhythm_mask,
)

# One record per case the definition has to tell apart (method.md §5).
CRAFTED = [
    ["SR"],               # 0 single
    ["SR", "STTA"],       # 1 multi
    ["AFIB", "SR"],       # 2 two rhythm labels: neither
    ["STTA"],             # 3 no rhythm label: neither
    [],                   # 4 nothing: neither
    ["PACE"],             # 5 single (PACE counts as rhythm though its group is Morphology)
    ["CAVB"],             # 6 CAVB is not an evaluated rhythm label: it is an "other" class
    ["SB", "CAVB"],       # 7 multi
    ["GSVT", "1AVB", "LAD"],  # 8 multi
]


def test_single_and_multi_masks_on_crafted_labels():
    Y = label_matrix(CRAFTED, CLASSES)
    single = single_labelled_rhythm_mask(Y, CLASSES)
    multi = multi_labelled_rhythm_mask(Y, CLASSES)
    assert np.flatnonzero(single).tolist() == [0, 5]
    assert np.flatnonzero(multi).tolist() == [1, 7, 8]
    assert not (single & multi).any()


def test_masks_accept_label_lists_and_matrix_alike():
    Y = label_matrix(CRAFTED, CLASSES)
    assert (single_labelled_rhythm_mask(CRAFTED, CLASSES) == single_labelled_rhythm_mask(Y, CLASSES)).all()
    assert (multi_labelled_rhythm_mask(CRAFTED, CLASSES) == multi_labelled_rhythm_mask(Y.tolist(), CLASSES)).all()


def test_rhythm_label_of():
    got = rhythm_label_of(CRAFTED, CLASSES).tolist()
    assert got == ["SR", "SR", "", "", "", "PACE", "", "SB", "GSVT"]


def test_label_validation_errors():
    with pytest.raises(ValueError, match="unknown label 'XYZ'"):
        label_matrix([["SR"], ["XYZ"]], CLASSES)
    with pytest.raises(ValueError, match="only 0 and 1"):
        single_labelled_rhythm_mask(np.full((2, len(CLASSES)), 2), CLASSES)
    with pytest.raises(ValueError, match="columns"):
        single_labelled_rhythm_mask(np.zeros((2, 3)), CLASSES)
    with pytest.raises(ValueError, match="rhythm labels"):
        single_labelled_rhythm_mask(np.zeros((2, 2)), ["SR", "STTA"])
    with pytest.raises(ValueError, match="list of names"):
        label_matrix(["SR"], CLASSES)


# ---------------------------------------------------------------- silhouettes

# Two tight pairs on a line: A = {0, 1}, B = {4, 5}. By hand, for the point at 0:
# a = 1, b = mean(4, 5) = 4.5, s = 1 - 1/4.5; for the point at 1: a = 1, b = 3.5.
LINE_X = np.array([[0.0, 0.0], [1.0, 0.0], [4.0, 0.0], [5.0, 0.0]])
LINE_LABELS = np.array(["A", "A", "B", "B"])
S_OUTER, S_INNER = 1 - 1 / 4.5, 1 - 1 / 3.5


def test_silhouettes_hand_computed():
    assert silhouette_overall(LINE_X, LINE_LABELS) == pytest.approx((S_OUTER + S_INNER) / 2)
    per = silhouette_per_label(LINE_X, LINE_LABELS)
    assert per == pytest.approx({"A": (S_OUTER + S_INNER) / 2, "B": (S_OUTER + S_INNER) / 2})


def test_silhouettes_match_sklearn_on_random_data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 8))
    labels = rng.choice(["AFIB", "SB", "SR"], size=120)
    X[labels == "SB"] += 1.0
    assert silhouette_overall(X, labels) == pytest.approx(silhouette_score(X, labels))
    s = silhouette_samples(X, labels)
    per = silhouette_per_label(X, labels)
    assert sorted(per) == ["AFIB", "SB", "SR"]
    for lab, value in per.items():
        assert value == pytest.approx(s[labels == lab].mean())


def test_silhouette_argument_errors():
    with pytest.raises(ValueError, match="2 to n_records-1"):
        silhouette_overall(LINE_X, ["A"] * 4)
    with pytest.raises(ValueError, match="3 entries but X has 4"):
        silhouette_overall(LINE_X, ["A", "B", "B"])
    with pytest.raises(ValueError, match="NaN"):
        silhouette_overall(np.array([[0.0], [np.nan], [1.0]]), ["A", "B", "B"])
    with pytest.raises(ValueError, match="None"):
        silhouette_overall(LINE_X, ["A", None, "B", "B"])


def _rhythm_cohort(n=300, seed=0):
    """Single-labelled rhythm clusters plus multi-labelled records placed far away."""
    rng = np.random.default_rng(seed)
    rhythm = rng.choice(RHYTHM_LABELS, size=n)
    centres = {lab: 4 * np.eye(6)[i] for i, lab in enumerate(RHYTHM_LABELS)}
    X = np.stack([centres[r] for r in rhythm]) + rng.normal(size=(n, 6))
    lists = [[r] for r in rhythm]
    for i in range(0, n, 5):  # every 5th record also carries STTA and sits elsewhere
        lists[i].append("STTA")
        X[i] += 30.0
    return X, lists, rhythm


def test_silhouette_report_uses_only_single_labelled_records():
    X, lists, rhythm = _rhythm_cohort()
    report = silhouette_report(X, lists, CLASSES, n_boot=50, seed=1)
    single = single_labelled_rhythm_mask(lists, CLASSES)
    assert report.loc["overall", "n"] == single.sum() == 240
    assert report.loc["overall", "silhouette"] == pytest.approx(silhouette_overall(X[single], rhythm[single]))
    per = silhouette_per_label(X[single], rhythm[single])
    assert list(report.index) == [*RHYTHM_LABELS, "overall"]
    for lab in RHYTHM_LABELS:
        assert report.loc[lab, "silhouette"] == pytest.approx(per[lab])
        assert report.loc[lab, "n"] == (rhythm[single] == lab).sum()


def test_silhouette_report_on_rhythm_only_label_space():
    """PTB-XL carries only mapped rhythm labels: classes = RHYTHM_LABELS, two labels = not single."""
    X, lists, rhythm = _rhythm_cohort()
    lists = [[r] for r in rhythm]
    lists[0] = [rhythm[0], "AFIB" if rhythm[0] != "AFIB" else "SR"]
    report = silhouette_report(X, lists, RHYTHM_LABELS, n_boot=20)
    assert report.loc["overall", "n"] == len(X) - 1
    assert report.loc["overall", "silhouette"] == pytest.approx(silhouette_overall(X[1:], rhythm[1:]))


def test_silhouette_report_intervals_contain_estimate_and_are_seeded():
    X, lists, _ = _rhythm_cohort()
    a = silhouette_report(X, lists, CLASSES, n_boot=100, seed=3)
    b = silhouette_report(X, lists, CLASSES, n_boot=100, seed=3)
    c = silhouette_report(X, lists, CLASSES, n_boot=100, seed=4)
    assert (a["ci_low"] <= a["silhouette"]).all() and (a["silhouette"] <= a["ci_high"]).all()
    assert (a["ci_low"] < a["ci_high"]).all()
    assert a.equals(b)
    assert not a[["ci_low", "ci_high"]].equals(c[["ci_low", "ci_high"]])


def test_bootstrap_ci_of_a_mean():
    rng = np.random.default_rng(0)
    x = rng.normal(loc=2.0, scale=1.0, size=400)
    low, high = bootstrap_ci(np.mean, x, n_boot=300, seed=0)
    assert low < x.mean() < high
    # A 95% interval of a mean is about +-1.96 standard errors wide.
    assert high - low == pytest.approx(2 * 1.96 * x.std() / math.sqrt(len(x)), rel=0.25)
    assert bootstrap_ci(np.mean, x, n_boot=300, seed=0) == (low, high)
    with pytest.raises(ValueError, match="different lengths"):
        bootstrap_ci(lambda a, b: 0.0, x, x[:10])
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap_ci(np.mean, x, n_boot=0)


# ---------------------------------------------------------------- centroids


def test_centroid_table_hand_computed():
    X = np.array([
        [0.0, 0.0], [2.0, 0.0],     # SR single: centroid (1, 0), distances 1, 1
        [1.0, 3.0],                 # SR + STTA: distance 3
        [10.0, 1.0], [10.0, -1.0],  # SB single: centroid (10, 0), distances 1, 1
        [10.0, 2.0],                # SB + 1AVB: distance 2
        [50.0, 50.0],               # AFIB + SR: neither single nor multi, ignored
    ])
    lists = [["SR"], ["SR"], ["SR", "STTA"], ["SB"], ["SB"], ["SB", "1AVB"], ["AFIB", "SR"]]
    table = centroid_table(X, lists, CLASSES)
    assert list(table.index) == list(RHYTHM_LABELS)
    sr, sb = table.loc["SR"], table.loc["SB"]
    assert (sr["n_single"], sr["n_multi"]) == (2, 1)
    assert sr["single_distance"] == pytest.approx(1.0)
    assert sr["multi_distance"] == pytest.approx(3.0)
    assert sr["ratio"] == pytest.approx(3.0)
    assert sr["pct_difference"] == pytest.approx(200.0)
    assert sb["ratio"] == pytest.approx(2.0) and sb["pct_difference"] == pytest.approx(100.0)
    assert table.loc["AFIB", "n_single"] == 0 and np.isnan(table.loc["AFIB", "single_distance"])
    centroids = rhythm_centroids(X, lists, CLASSES)
    assert sorted(centroids) == ["SB", "SR"]
    np.testing.assert_allclose(centroids["SR"], [1.0, 0.0])
    np.testing.assert_allclose(centroids["SB"], [10.0, 0.0])


def test_cross_domain_distances_and_share_closer():
    centroids = {"SR": np.array([0.0, 0.0]), "SB": np.array([10.0, 0.0])}
    X = np.array([[3.0, 4.0], [0.0, 1.0], [10.0, 2.0], [99.0, 99.0]])
    got = cross_domain_distances(X, ["SR", "SR", "SB", ""], centroids)
    assert got == pytest.approx({"SR": 3.0, "SB": 2.0})  # SR: (5 + 1) / 2; '' skipped
    with pytest.raises(ValueError, match="no source centroid"):
        cross_domain_distances(X, ["SR", "SR", "SB", "AFIB"], centroids)
    with pytest.raises(ValueError, match="shape"):
        cross_domain_distances(X, ["SR"] * 4, {"SR": np.zeros(3)})

    # SR records at x = 6 (closer to SB), 4, 1 (closer to SR), 5 (a tie: not closer).
    X_sr = np.array([[6.0, 0.0], [4.0, 0.0], [1.0, 0.0], [5.0, 0.0], [9.0, 0.0]])
    labels = ["SR", "SR", "SR", "SR", "SB"]
    assert share_closer_to(X_sr, labels, centroids) == pytest.approx(1 / 4)
    assert share_closer_to(X_sr, labels, centroids, label="SB", other="SR") == 0.0
    with pytest.raises(ValueError, match="no centroid for 'AFIB'"):
        share_closer_to(X_sr, labels, centroids, other="AFIB")


def test_intra_inter_ratio_hand_computed():
    X = np.array([[0.0, 0.0], [2.0, 0.0],      # A, centroid (1, 0)
                  [10.0, 0.0], [10.0, 2.0],    # B, centroid (10, 1)
                  [0.0, 10.0], [2.0, 10.0]])   # C, centroid (1, 10)
    labels = ["A", "A", "B", "B", "C", "C"]
    ratios = intra_inter_ratio(X, labels)
    # A's records lie 1 from their centroid (1, 0); centroid to centroid (method.md §5, the thesis code):
    # to B's (10, 1) sqrt(82), to C's (1, 10) 10.
    assert ratios["A"] == pytest.approx(1.0 / ((math.sqrt(82) + 10.0) / 2))
    # not the record-to-other-centroid mean (sqrt(101) three times, sqrt(65) once) of earlier versions
    assert ratios["A"] != pytest.approx(1.0 / ((3 * math.sqrt(101) + math.sqrt(65)) / 4), rel=1e-3)
    # B: records 1 from (10, 1); centroids (1, 0) sqrt(82) and (1, 10) sqrt(162) away
    assert ratios["B"] == pytest.approx(1.0 / ((math.sqrt(82) + math.sqrt(162)) / 2))
    assert sorted(ratios) == ["A", "B", "C"]
    assert all(0 < r < 1 for r in ratios.values())
    centroids = label_centroids(X, labels)
    np.testing.assert_allclose(centroids["B"], [10.0, 1.0])
    with pytest.raises(ValueError, match="at least 2 labels"):
        intra_inter_ratio(X, ["A"] * 6)


def test_fold_mean_sd():
    assert fold_mean_sd([1.0, 2.0, 3.0]) == pytest.approx((2.0, 1.0))  # sample SD, ddof=1
    with pytest.raises(ValueError, match="at least 2"):
        fold_mean_sd([0.5])


# ---------------------------------------------------------------- kNN purity


def test_knn_purity_hand_computed():
    X = np.array([[0.0], [1.0], [1.6], [3.0]])
    labels = ["A", "A", "B", "B"]
    # k=1: 0 -> 1 (A, same); 1 -> 1.6 (B); 1.6 -> 1 (A); 3 -> 1.6 (B, same)
    overall, per = knn_label_purity(X, labels, k=1)
    assert overall == pytest.approx(0.5)
    assert per == pytest.approx({"A": 0.5, "B": 0.5})


def test_knn_purity_excludes_self_even_for_duplicates():
    X = np.zeros((5, 3))
    labels = ["A", "A", "B", "B", "B"]
    overall, per = knn_label_purity(X, labels, k=4)  # every other record is a neighbour
    assert per == pytest.approx({"A": 1 / 4, "B": 2 / 4})
    assert overall == pytest.approx((2 * 0.25 + 3 * 0.5) / 5)
    with pytest.raises(ValueError, match="k must be"):
        knn_label_purity(X, labels, k=5)


def test_knn_purity_separated_clusters_are_pure():
    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(size=(50, 4)), rng.normal(size=(50, 4)) + 20]
    overall, per = knn_label_purity(X, ["A"] * 50 + ["B"] * 50, k=10)
    assert overall == 1.0 and per == {"A": 1.0, "B": 1.0}


# ---------------------------------------------------------------- paired bootstrap of the change


def _two_embeddings(n_per=40, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(["AFIB", "SB", "SR"], n_per)
    centres = {"AFIB": [0, 0, 0], "SB": [1.5, 0, 0], "SR": [0, 1.5, 0]}
    Xa = np.array([centres[l] for l in labels]) + rng.normal(size=(len(labels), 3))
    Xb = 2.0 * np.array([centres[l] for l in labels]) + rng.normal(size=(len(labels), 3))   # better separated
    return Xa, Xb, labels


def test_weighted_silhouettes_equal_sklearn_with_unit_weights_and_ignore_own_copies():
    from scipy.spatial.distance import cdist
    from cardio_core.metrics.embedding import _weighted_silhouettes
    Xa, _, labels = _two_embeddings(10)
    codes = np.unique(labels, return_inverse=True)[1]
    s = _weighted_silhouettes(cdist(Xa, Xa), codes, np.ones(len(Xa)), 3)
    np.testing.assert_allclose(s, silhouette_samples(Xa, labels), atol=1e-12)
    # a point drawn twice: the same as duplicating every *other* point's contribution, never a zero-distance twin
    w = np.ones(len(Xa)); w[0] = 2.0
    s2 = _weighted_silhouettes(cdist(Xa, Xa), codes, w, 3)
    same = codes == codes[0]
    d = np.linalg.norm(Xa - Xa[0], axis=1)
    a0 = d[same][1:].sum() / (same.sum() - 1)   # its own copy is not its neighbour
    b0 = min(d[codes == j].mean() for j in range(3) if j != codes[0])
    assert s2[0] == pytest.approx((b0 - a0) / max(a0, b0))


def test_paired_change_point_estimates_are_the_full_set_silhouettes():
    Xa, Xb, labels = _two_embeddings()
    table = paired_silhouette_change(Xa, Xb, labels, n_boot=50, seed=1)
    sa, sb = silhouette_samples(Xa, labels), silhouette_samples(Xb, labels)
    assert table.loc["overall", "change"] == pytest.approx(sb.mean() - sa.mean())
    for lab in ("AFIB", "SB", "SR"):
        m = labels == lab
        assert table.loc[lab, "baseline"] == pytest.approx(sa[m].mean())
        assert table.loc[lab, "change"] == pytest.approx(sb[m].mean() - sa[m].mean())
        assert table.loc[lab, "ci_low"] <= table.loc[lab, "change"] <= table.loc[lab, "ci_high"]
        assert table.loc[lab, "n"] == m.sum()
    assert table.loc["overall", "ci_low"] > 0                       # a real improvement: interval above 0
    again = paired_silhouette_change(Xa, Xb, labels, n_boot=50, seed=1)
    pd.testing.assert_frame_equal(table, again)                      # seeded


def test_paired_change_of_identical_embeddings_is_exactly_zero():
    # paired: the same records score both embeddings in each replicate, so no change has a zero-width interval
    # (two separate intervals would each have a width)
    Xa, _, labels = _two_embeddings()
    table = paired_silhouette_change(Xa, Xa.copy(), labels, n_boot=30)
    assert (table[["change", "ci_low", "ci_high"]].abs().to_numpy() < 1e-12).all()


def test_paired_change_recomputes_silhouettes_on_each_resample():
    # Resampling per-record silhouettes computed once cannot see the clusters move; recomputing does, so the
    # interval of a two-record label is wider than the spread of its fixed per-record changes would allow.
    Xa, Xb, labels = _two_embeddings(30, seed=3)
    table = paired_silhouette_change(Xa, Xb, labels, n_boot=200, seed=0)
    fixed = silhouette_samples(Xb, labels) - silhouette_samples(Xa, labels)
    naive_low, naive_high = bootstrap_ci(np.mean, fixed, n_boot=200, seed=0)
    assert table.loc["overall", "ci_high"] - table.loc["overall", "ci_low"] != pytest.approx(naive_high - naive_low,
                                                                                              rel=1e-3)


def test_paired_change_subsamples_large_sets_and_says_so():
    rng = np.random.default_rng(0)
    labels = rng.choice(["AFIB", "SB", "SR", "GSVT", "PACE"], size=3000, p=[.2, .3, .4, .05, .05])
    Xa = rng.normal(size=(3000, 16))
    Xb = Xa + 0.3 * (labels[:, None] == np.array(["AFIB", "SB", "SR", "GSVT", "PACE"])[None, :16 // 4][:, :1])
    table = paired_silhouette_change(Xa, Xb, labels, n_boot=20, max_records=500)
    assert table.loc["overall", "n"] == 3000
    assert 495 <= table.loc["overall", "n_resampled"] <= 505           # stratified subsample of ~max_records
    assert set(table.index) == {"AFIB", "SB", "SR", "GSVT", "PACE", "overall"}
    with pytest.raises(ValueError, match="paired"):
        paired_silhouette_change(Xa, Xb[:10], labels)
