import numpy as np
import pytest

from cardio_core.data.splits import acdc_folds, chapman_split, stratified_subset


def _labels(n=600, c=8, seed=0):
    rng = np.random.default_rng(seed)
    Y = (rng.random((n, c)) < np.linspace(0.05, 0.5, c)).astype(int)
    Y[Y.sum(1) == 0, 0] = 1
    return Y


def test_chapman_split_sizes_and_no_leak():
    Y = _labels()
    split = chapman_split(Y, seed=1)
    assert set(split) == {"train", "val", "test"}
    counts = {s: int((split == s).sum()) for s in ("train", "val", "test")}
    assert sum(counts.values()) == len(Y)  # every record in exactly one split
    assert abs(counts["train"] / len(Y) - 0.70) < 0.02
    assert abs(counts["val"] / len(Y) - 0.15) < 0.02


def test_chapman_split_is_stratified_on_every_label():
    Y = _labels(n=2000, c=10)
    split = chapman_split(Y, seed=3)
    overall = Y.mean(0)
    for s in ("train", "val", "test"):
        prevalence = Y[split == s].mean(0)
        assert np.all(np.abs(prevalence - overall) < 0.03), s


def test_chapman_split_deterministic_for_seed():
    Y = _labels()
    assert (chapman_split(Y, seed=5) == chapman_split(Y, seed=5)).all()
    assert (chapman_split(Y, seed=5) != chapman_split(Y, seed=6)).any()


def test_chapman_split_rejects_bad_input():
    with pytest.raises(ValueError, match="matrix"):
        chapman_split(np.zeros(5))
    with pytest.raises(ValueError, match="fractions"):
        chapman_split(_labels(), fractions=(0.5, 0.5, 0.5))


def test_stratified_subset_fraction_and_strata():
    rng = np.random.default_rng(0)
    strata = rng.choice(["SR", "SR", "SR", "AFIB", "SB", "GSVT"], size=1000)
    strata[0] = "PACE"  # a stratum that occurs once
    mask = stratified_subset(strata, fraction=0.1, seed=2)
    assert mask.sum() == 100
    for s in ("SR", "AFIB"):
        assert abs(mask[strata == s].mean() - 0.1) < 0.03
    assert (mask == stratified_subset(strata, fraction=0.1, seed=2)).all()


def test_acdc_folds_stratified_each_patient_validated_once():
    groups = np.repeat(["DCM", "HCM", "MINF", "NOR", "RV"], 30)
    folds = acdc_folds(groups, seed=0)
    assert set(folds) == {0, 1, 2, 3, 4}
    for k in range(5):
        val = groups[folds == k]
        assert len(val) == 30  # 120 train / 30 validation per fold
        assert all((val == g).sum() == 6 for g in np.unique(groups))


def test_acdc_folds_tiny_set_falls_back():
    groups = np.array(["DCM", "HCM", "MINF", "NOR", "RV"] * 2)
    folds = acdc_folds(groups, seed=0)
    assert sorted(np.bincount(folds)) == [2, 2, 2, 2, 2]


def test_display_subset_is_topped_up_to_twenty_per_label_where_the_pool_allows():
    from cardio_core.data.splits import top_up_subset
    labels = np.array(["SR"] * 500 + ["SB"] * 30 + ["PACE"] * 8 + [""] * 100)
    mask = np.zeros(len(labels), dtype=bool)
    mask[:50] = True                     # the 10% draw: 50 SR, no SB, no PACE
    out = top_up_subset(mask, labels, min_per_label=20, seed=0)
    assert (out & mask).sum() == mask.sum()                 # nothing taken away
    assert (out & (labels == "SR")).sum() == 50             # enough already: nothing added
    assert (out & (labels == "SB")).sum() == 20             # topped up to 20
    assert (out & (labels == "PACE")).sum() == 8            # all the pool has
    assert (out & (labels == "")).sum() == 0
    np.testing.assert_array_equal(out, top_up_subset(mask, labels, min_per_label=20, seed=0))   # seeded


def test_nested_subset_is_nested_stratified_and_independent_of_row_order():
    from cardio_core.data.splits import nested_subset
    rng = np.random.default_rng(3)
    ids = np.array([f"r{i:04d}" for i in range(1000)])
    strata = rng.choice(["SR", "SB", "AFIB", "GSVT", "rare"], size=1000, p=[0.4, 0.3, 0.2, 0.098, 0.002])
    masks = {f: nested_subset(ids, strata, f, seed=7) for f in (1.0, 0.5, 0.1, 0.01)}
    assert masks[1.0].all()
    # nested: every smaller subset lies inside every larger one
    assert not (masks[0.01] & ~masks[0.1]).any() and not (masks[0.1] & ~masks[0.5]).any()
    # stratified: each stratum keeps max(1, round(f * n)) of its records
    for f in (0.5, 0.1, 0.01):
        for s in np.unique(strata):
            n = int((strata == s).sum())
            assert int((masks[f] & (strata == s)).sum()) == max(1, int(round(f * n))), (f, s)
    # the same records whatever the row order; another seed draws others
    perm = rng.permutation(1000)
    again = nested_subset(ids[perm], strata[perm], 0.1, seed=7)
    assert set(ids[perm][again]) == set(ids[masks[0.1]])
    assert set(ids[nested_subset(ids, strata, 0.1, seed=8)]) != set(ids[masks[0.1]])


def test_nested_subset_rejects_bad_arguments():
    from cardio_core.data.splits import nested_subset
    with pytest.raises(ValueError, match="fraction"):
        nested_subset(["a", "b"], ["x", "y"], 0.0)
    with pytest.raises(ValueError, match="fraction"):
        nested_subset(["a", "b"], ["x", "y"], 1.5)
    with pytest.raises(ValueError, match="unique"):
        nested_subset(["a", "a"], ["x", "y"], 0.5)
    with pytest.raises(ValueError, match="length"):
        nested_subset(["a", "b"], ["x"], 0.5)
