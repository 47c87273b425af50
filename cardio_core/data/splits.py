"""Seeded, stratified splits (method.md §1). Record ids in, split names out."""
from __future__ import annotations

import zlib

import numpy as np
from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit
from sklearn.model_selection import StratifiedKFold, StratifiedShuffleSplit


def chapman_split(Y: np.ndarray, *, seed: int = 0, fractions=(0.70, 0.15, 0.15)) -> np.ndarray:
    """Assign each record to 'train' / 'val' / 'test', stratified on the multi-label matrix.

    Iterative stratification (Sechidis et al.): a plain StratifiedShuffleSplit on
    label-set strings fails on combinations that occur once.
    """
    Y = np.asarray(Y)
    if Y.ndim != 2 or len(Y) == 0:
        raise ValueError(f"Y must be a non-empty (n_records, n_classes) matrix, got shape {Y.shape}")
    train_f, val_f, test_f = fractions
    if min(fractions) <= 0 or abs(sum(fractions) - 1) > 1e-9:
        raise ValueError(f"fractions must be positive and sum to 1, got {fractions}")
    n = len(Y)
    out = np.empty(n, dtype=object)
    if n < 3:
        out[:] = "train"
        return out.astype(str)
    idx = np.arange(n)
    first = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=val_f + test_f, random_state=seed)
    train_idx, rest_idx = next(first.split(idx, Y))
    out[train_idx] = "train"
    second = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=test_f / (val_f + test_f), random_state=seed + 1)
    val_rel, test_rel = next(second.split(rest_idx, Y[rest_idx]))
    out[rest_idx[val_rel]] = "val"
    out[rest_idx[test_rel]] = "test"
    return out.astype(str)


def stratified_subset(strata, *, fraction: float = 0.10, seed: int = 0) -> np.ndarray:
    """Boolean mask of a seeded stratified subset (PTB-XL's 10% display subset).

    Strata that occur once cannot be stratified; they fall back to a seeded draw.
    """
    strata = np.asarray([str(s) for s in strata])
    n = len(strata)
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    mask = np.zeros(n, dtype=bool)
    if n == 0:
        return mask
    n_pick = max(1, int(round(fraction * n)))
    values, counts = np.unique(strata, return_counts=True)
    rare = np.isin(strata, values[counts < 2])
    safe = np.where(~rare)[0]
    rng = np.random.default_rng(seed)
    if len(safe) >= 2 and len(np.unique(strata[safe])) < len(safe):
        k = int(round(n_pick * len(safe) / n))
        if 0 < k < len(safe) and k >= len(np.unique(strata[safe])):
            sss = StratifiedShuffleSplit(n_splits=1, test_size=k, random_state=seed)
            _, pick = next(sss.split(safe, strata[safe]))
            mask[safe[pick]] = True
    # fill up to n_pick (rare strata and rounding) with a seeded draw
    remaining = np.where(~mask)[0]
    short = n_pick - int(mask.sum())
    if short > 0:
        mask[rng.choice(remaining, size=short, replace=False)] = True
    return mask


DISPLAY_FRACTION = 0.10
DISPLAY_MIN_PER_LABEL = 20


def top_up_subset(mask, labels, *, min_per_label: int = DISPLAY_MIN_PER_LABEL, seed: int = 0) -> np.ndarray:
    """`mask` with records added until every label ('' = none) has `min_per_label` records in it, or all it has.

    The added records are a seeded draw among the label's records outside the subset. At the real
    PTB-XL's scale the 10% subset already has that many of each rhythm label and nothing is added;
    at demo scale it is what keeps per-label numbers from resting on a handful of records.
    """
    mask = np.asarray(mask, dtype=bool).copy()
    labels = np.asarray([str(x) for x in labels])
    rng = np.random.default_rng(seed)
    for lab in sorted(set(labels) - {""}):
        have = int((mask & (labels == lab)).sum())
        outside = np.flatnonzero(~mask & (labels == lab))
        need = min(max(0, min_per_label - have), len(outside))
        if need:
            mask[rng.choice(outside, size=need, replace=False)] = True
    return mask


def display_subset_rule(fraction: float = DISPLAY_FRACTION, min_per_label: int = DISPLAY_MIN_PER_LABEL) -> str:
    return (f"a seeded {fraction:.0%} subset stratified on the label set, topped up with seeded records until "
            f"each rhythm label has at least {min_per_label} single-labelled records where the dataset has them")


def acdc_folds(groups, *, n_folds: int = 5, seed: int = 0) -> np.ndarray:
    """The fold (0..n_folds-1) in which each patient is in validation, stratified on group."""
    groups = np.asarray(groups)
    if len(groups) < n_folds:
        raise ValueError(f"need at least {n_folds} patients for {n_folds}-fold CV, got {len(groups)}")
    _, counts = np.unique(groups, return_counts=True)
    folds = np.empty(len(groups), dtype=int)
    if counts.min() >= n_folds:
        splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        split_iter = splitter.split(np.zeros(len(groups)), groups)
    else:  # too few patients per group for stratification (tiny demo sets)
        from sklearn.model_selection import KFold
        split_iter = KFold(n_splits=n_folds, shuffle=True, random_state=seed).split(groups)
    for k, (_, val_idx) in enumerate(split_iter):
        folds[val_idx] = k
    return folds


PAIRED_FRACTIONS = (0.70, 0.15, 0.15)


def paired_split(subject_ids, *, seed: int = 0, fractions=PAIRED_FRACTIONS) -> np.ndarray:
    """'train' / 'val' / 'test' per subject of a paired cohort: a seeded permutation of the sorted ids, cut 70/15/15.

    Per subject, not stratified (there is no label to stratify on); the ids are sorted first so the split does
    not depend on the manifest's row order, only on the set of usable subjects and the seed."""
    ids = np.asarray([str(s) for s in subject_ids])
    if len(set(ids.tolist())) != len(ids):
        raise ValueError("subject ids must be unique")
    if len(fractions) != 3 or min(fractions) <= 0 or abs(sum(fractions) - 1) > 1e-9:
        raise ValueError(f"fractions must be three positive numbers summing to 1, got {fractions}")
    n = len(ids)
    out = np.empty(n, dtype=object)
    if n == 0:
        return out.astype(str)
    order = np.argsort(ids, kind="stable")
    perm = order[np.random.default_rng(seed).permutation(n)]
    n_train = int(round(fractions[0] * n))
    n_val = int(round(fractions[1] * n))
    out[perm[:n_train]] = "train"
    out[perm[n_train:n_train + n_val]] = "val"
    out[perm[n_train + n_val:]] = "test"
    return out.astype(str)


def nested_subset(ids, strata, fraction: float, *, seed: int = 0) -> np.ndarray:
    """Boolean mask of a seeded, stratified `fraction` of records that is nested across fractions: for the same
    ids, strata and seed, the 1 % subset lies inside the 10 % one, which lies inside 100 % (label-efficiency
    curves, method.md §8: "nested 10 % and 1 % subsets of the training set").

    Each stratum's records are put in one seeded order (of their sorted ids, so the subset depends on which records
    there are, not on their row order); a fraction keeps the first max(1, round(fraction * n_stratum)) of each
    stratum. Growing the fraction only appends, hence the nesting. Every stratum keeps at least one record, so a
    1 % subset of a small set is more than 1 % (the run records how many it trained on).
    """
    ids = np.asarray([str(i) for i in ids])
    strata = np.asarray([str(s) for s in strata])
    if len(ids) != len(strata):
        raise ValueError(f"ids and strata differ in length: {len(ids)} and {len(strata)}")
    if len(set(ids.tolist())) != len(ids):
        raise ValueError("ids must be unique")
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
    mask = np.zeros(len(ids), dtype=bool)
    if fraction == 1:
        mask[:] = True
        return mask
    for stratum in sorted(set(strata.tolist())):
        members = np.flatnonzero(strata == stratum)
        members = members[np.argsort(ids[members], kind="stable")]
        # one stream per stratum, from the seed and the stratum's name: another stratum never shifts this order
        stream = np.random.default_rng([int(seed), zlib.crc32(stratum.encode("utf-8"))])
        order = members[stream.permutation(len(members))]
        mask[order[:max(1, int(round(fraction * len(members))))]] = True
    return mask
