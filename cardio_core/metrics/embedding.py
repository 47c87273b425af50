"""Embedding-space metrics (method.md §5): silhouettes, centroid distances, kNN purity.

All distances are Euclidean in the original embedding space (384-d ECG, 2048-d CMR),
never on UMAP coordinates. Inputs are numpy arrays; outputs are floats, dicts of
floats, or small DataFrames.

Labels come either as a 0/1 matrix ``Y`` (n_records, n_classes) with its list of
class names, or as one list of label names per record (see :func:`label_matrix`).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import silhouette_samples
from sklearn.neighbors import NearestNeighbors

from cardio_core.labels import RHYTHM_LABELS
from cardio_core.metrics.summary import fold_summary

NO_LABEL = ""


# ---------------------------------------------------------------------------
# argument checking


def _check_embeddings(X, name: str = "X") -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n_records, n_dims), got shape {X.shape}")
    if len(X) == 0:
        raise ValueError(f"{name} has no records")
    if not np.isfinite(X).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return X


def _check_labels(labels, n: int, name: str = "labels") -> np.ndarray:
    labels = np.asarray(labels, dtype=object)
    if labels.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one label per record), got shape {labels.shape}")
    if len(labels) != n:
        raise ValueError(f"{name} has {len(labels)} entries but X has {n} records")
    if any(lab is None or (isinstance(lab, float) and lab != lab) for lab in labels):
        raise ValueError(f"{name} contains None or NaN; use '' for records without a label")
    return labels.astype(str)


def _check_classes(classes, n_columns: int) -> tuple[str, ...]:
    classes = tuple(str(c) for c in classes)
    if len(classes) != n_columns:
        raise ValueError(f"classes names {len(classes)} labels but Y has {n_columns} columns")
    if len(set(classes)) != len(classes):
        raise ValueError(f"classes contains duplicate names: {sorted(classes)}")
    return classes


def label_matrix(label_lists: Sequence[Sequence[str]], classes: Sequence[str]) -> np.ndarray:
    """One list of label names per record -> (n_records, n_classes) 0/1 int8 matrix."""
    classes = _check_classes(classes, len(classes))
    index = {c: i for i, c in enumerate(classes)}
    Y = np.zeros((len(label_lists), len(classes)), dtype=np.int8)
    for row, names in enumerate(label_lists):
        if isinstance(names, str):
            raise ValueError(f"record {row}: labels must be a list of names, got the string {names!r}")
        for name in names:
            if name not in index:
                raise ValueError(f"record {row}: unknown label {name!r}; known: {', '.join(classes)}")
            Y[row, index[name]] = 1
    return Y


def _is_label_lists(Y) -> bool:
    # A list of label-name lists (strings, or all rows empty) rather than a nested 0/1 list.
    if not isinstance(Y, (list, tuple)) or len(Y) == 0:
        return False
    if not all(isinstance(row, (list, tuple, set, frozenset)) for row in Y):
        return False
    items = [x for row in Y for x in row]
    return not items or any(isinstance(x, str) for x in items)


def _check_label_matrix(Y, classes) -> tuple[np.ndarray, tuple[str, ...]]:
    """Accept a 0/1 matrix or a list of label lists; return a bool matrix and the class names."""
    if _is_label_lists(Y):
        Y = label_matrix(Y, classes)
    Y = np.asarray(Y)
    if Y.ndim != 2:
        raise ValueError(f"Y must be a 2-D 0/1 matrix (n_records, n_classes), got shape {Y.shape}")
    classes = _check_classes(classes, Y.shape[1])
    if not np.isin(Y, (0, 1)).all():
        raise ValueError("Y must contain only 0 and 1")
    return Y.astype(bool), classes


def _rhythm_columns(classes: tuple[str, ...], rhythm_labels: Sequence[str]) -> np.ndarray:
    missing = [r for r in rhythm_labels if r not in classes]
    if missing:
        raise ValueError(f"rhythm labels {missing} are not among the classes {list(classes)}")
    return np.array([classes.index(r) for r in rhythm_labels], dtype=int)


# ---------------------------------------------------------------------------
# single-/multi-labelled rhythm records


def single_labelled_rhythm_mask(Y, classes, rhythm_labels: Sequence[str] = RHYTHM_LABELS) -> np.ndarray:
    """Records with exactly one rhythm label and no other class (method.md §5)."""
    Y, classes = _check_label_matrix(Y, classes)
    rhythm = _rhythm_columns(classes, rhythm_labels)
    n_rhythm = Y[:, rhythm].sum(1)
    n_other = Y.sum(1) - n_rhythm
    return (n_rhythm == 1) & (n_other == 0)


def multi_labelled_rhythm_mask(Y, classes, rhythm_labels: Sequence[str] = RHYTHM_LABELS) -> np.ndarray:
    """Records with exactly one rhythm label plus at least one other class."""
    Y, classes = _check_label_matrix(Y, classes)
    rhythm = _rhythm_columns(classes, rhythm_labels)
    n_rhythm = Y[:, rhythm].sum(1)
    n_other = Y.sum(1) - n_rhythm
    return (n_rhythm == 1) & (n_other >= 1)


def rhythm_label_of(Y, classes, rhythm_labels: Sequence[str] = RHYTHM_LABELS) -> np.ndarray:
    """Each record's rhythm label when it has exactly one, else '' (none, or several)."""
    Y, classes = _check_label_matrix(Y, classes)
    rhythm = _rhythm_columns(classes, rhythm_labels)
    sub = Y[:, rhythm]
    names = np.array(list(rhythm_labels), dtype=object)
    out = np.full(len(Y), NO_LABEL, dtype=object)
    one = sub.sum(1) == 1
    out[one] = names[sub[one].argmax(1)]
    return out.astype(str)


# ---------------------------------------------------------------------------
# silhouettes


def _silhouette_samples(X, labels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    X = _check_embeddings(X)
    labels = _check_labels(labels, len(X))
    n_labels = len(np.unique(labels))
    if not 2 <= n_labels <= len(X) - 1:
        raise ValueError(f"silhouette needs 2 to n_records-1 distinct labels, got {n_labels} "
                         f"labels on {len(X)} records")
    return X, labels, silhouette_samples(X, labels, metric="euclidean")


def silhouette_overall(X, labels) -> float:
    """Mean per-sample silhouette over all records (Euclidean, original space)."""
    return float(_silhouette_samples(X, labels)[2].mean())


def silhouette_per_label(X, labels) -> dict[str, float]:
    """Label -> mean of the per-sample silhouettes of that label's records."""
    _, labels, s = _silhouette_samples(X, labels)
    return {str(lab): float(s[labels == lab].mean()) for lab in np.unique(labels)}


def bootstrap_ci(statistic: Callable[..., float], *arrays, n_boot: int = 200, seed: int = 0,
                 confidence: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic(*arrays)``, resampling rows with replacement.

    All arrays are resampled with the same row indices. Deterministic for a seed.
    """
    if not arrays:
        raise ValueError("bootstrap_ci needs at least one array to resample")
    if int(n_boot) < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    arrays = [np.asarray(a) for a in arrays]
    n = len(arrays[0])
    if n == 0:
        raise ValueError("cannot bootstrap an empty sample")
    if any(len(a) != n for a in arrays):
        raise ValueError(f"arrays to resample have different lengths: {[len(a) for a in arrays]}")
    rng = np.random.default_rng(seed)
    values = np.empty(int(n_boot))
    for b in range(int(n_boot)):
        idx = rng.integers(0, n, size=n)
        values[b] = statistic(*(a[idx] for a in arrays))
    alpha = (1 - confidence) / 2
    low, high = np.quantile(values, [alpha, 1 - alpha])
    return float(low), float(high)


def silhouette_report(X, Y, classes, *, rhythm_labels: Sequence[str] = RHYTHM_LABELS,
                      n_boot: int = 200, seed: int = 0, confidence: float = 0.95) -> pd.DataFrame:
    """Silhouettes of the single-labelled rhythm records, with bootstrap intervals.

    Returns one row per rhythm label present plus a final row ``"overall"``, columns
    ``silhouette``, ``ci_low``, ``ci_high``, ``n``.

    Bootstrap choice (the standard cheap approximation): per-sample silhouettes are
    computed once on the full filtered set, then their means are bootstrapped —
    over all records for ``overall``, within each label for the per-label rows (so a
    label keeps its size). This captures which records enter each mean, not how the
    cluster structure itself would move on a resampled set; recomputing silhouettes
    200 times on 8.6k records would cost minutes instead of milliseconds.
    """
    X = _check_embeddings(X)
    Y, classes = _check_label_matrix(Y, classes)
    if len(Y) != len(X):
        raise ValueError(f"Y has {len(Y)} records but X has {len(X)}")
    mask = single_labelled_rhythm_mask(Y, classes, rhythm_labels)
    labels = rhythm_label_of(Y[mask], classes, rhythm_labels)
    _, labels, s = _silhouette_samples(X[mask], labels)
    rows = {}
    for lab in [r for r in rhythm_labels if r in set(labels)]:
        s_lab = s[labels == lab]
        low, high = bootstrap_ci(np.mean, s_lab, n_boot=n_boot, seed=seed, confidence=confidence)
        rows[lab] = (float(s_lab.mean()), low, high, len(s_lab))
    low, high = bootstrap_ci(np.mean, s, n_boot=n_boot, seed=seed, confidence=confidence)
    rows["overall"] = (float(s.mean()), low, high, len(s))
    return pd.DataFrame.from_dict(rows, orient="index", columns=["silhouette", "ci_low", "ci_high", "n"])


# ---------------------------------------------------------------------------
# centroids


def label_centroids(X, labels) -> dict[str, np.ndarray]:
    """Label -> mean embedding of that label's records ('' = unlabelled, skipped)."""
    X = _check_embeddings(X)
    labels = _check_labels(labels, len(X))
    return {str(lab): X[labels == lab].mean(0) for lab in np.unique(labels) if lab != NO_LABEL}


def rhythm_centroids(X, Y, classes, rhythm_labels: Sequence[str] = RHYTHM_LABELS) -> dict[str, np.ndarray]:
    """Rhythm label -> centroid of its single-labelled records (method.md §5)."""
    X = _check_embeddings(X)
    Y, classes = _check_label_matrix(Y, classes)
    if len(Y) != len(X):
        raise ValueError(f"Y has {len(Y)} records but X has {len(X)}")
    single = single_labelled_rhythm_mask(Y, classes, rhythm_labels)
    return label_centroids(X[single], rhythm_label_of(Y[single], classes, rhythm_labels))


def centroid_table(X, Y, classes, rhythm_labels: Sequence[str] = RHYTHM_LABELS) -> pd.DataFrame:
    """Per rhythm label: how far single- and multi-labelled records lie from the centroid.

    The centroid is the mean of the label's single-labelled records. Columns:
    ``n_single``, ``single_distance`` (their mean distance to it), ``n_multi``,
    ``multi_distance`` (mean distance of multi-labelled records carrying the label),
    ``ratio`` (multi / single) and ``pct_difference`` (100 * (multi - single) / single).
    A label without single-labelled records gets NaN distances.
    """
    X = _check_embeddings(X)
    Y, classes = _check_label_matrix(Y, classes)
    if len(Y) != len(X):
        raise ValueError(f"Y has {len(Y)} records but X has {len(X)}")
    single = single_labelled_rhythm_mask(Y, classes, rhythm_labels)
    multi = multi_labelled_rhythm_mask(Y, classes, rhythm_labels)
    rhythm = rhythm_label_of(Y, classes, rhythm_labels)
    centroids = label_centroids(X[single], rhythm[single])
    rows = {}
    for lab in rhythm_labels:
        s_mask, m_mask = single & (rhythm == lab), multi & (rhythm == lab)
        if lab in centroids:
            c = centroids[lab]
            d_single = float(np.linalg.norm(X[s_mask] - c, axis=1).mean())
            d_multi = float(np.linalg.norm(X[m_mask] - c, axis=1).mean()) if m_mask.any() else np.nan
        else:
            d_single = d_multi = np.nan
        ratio = d_multi / d_single if d_single > 0 else np.nan
        rows[lab] = (int(s_mask.sum()), d_single, int(m_mask.sum()), d_multi, ratio, 100 * (ratio - 1))
    return pd.DataFrame.from_dict(rows, orient="index", columns=[
        "n_single", "single_distance", "n_multi", "multi_distance", "ratio", "pct_difference"])


def _check_centroids(centroids: Mapping[str, np.ndarray], n_dims: int) -> dict[str, np.ndarray]:
    out = {}
    for lab, c in centroids.items():
        c = np.asarray(c, dtype=np.float64)
        if c.shape != (n_dims,):
            raise ValueError(f"centroid of {lab!r} has shape {c.shape}, expected ({n_dims},)")
        out[str(lab)] = c
    return out


def cross_domain_distances(X_target, target_labels, centroids_source: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Label -> mean distance of target records (e.g. PTB-XL) to the source centroid of their label.

    Records labelled '' are skipped; a label with no source centroid is an error.
    """
    X = _check_embeddings(X_target, "X_target")
    labels = _check_labels(target_labels, len(X), "target_labels")
    centroids = _check_centroids(centroids_source, X.shape[1])
    present = [lab for lab in np.unique(labels) if lab != NO_LABEL]
    missing = [lab for lab in present if lab not in centroids]
    if missing:
        raise ValueError(f"no source centroid for target labels {missing}")
    return {str(lab): float(np.linalg.norm(X[labels == lab] - centroids[lab], axis=1).mean())
            for lab in present}


def share_closer_to(X, labels, centroids: Mapping[str, np.ndarray], label: str = "SR",
                    other: str = "SB") -> float:
    """Share of ``label`` records strictly closer to the ``other`` centroid than to their own."""
    X = _check_embeddings(X)
    labels = _check_labels(labels, len(X))
    centroids = _check_centroids(centroids, X.shape[1])
    for name in (label, other):
        if name not in centroids:
            raise ValueError(f"no centroid for {name!r}; have {sorted(centroids)}")
    own = labels == label
    if not own.any():
        raise ValueError(f"no records labelled {label!r}")
    d_own = np.linalg.norm(X[own] - centroids[label], axis=1)
    d_other = np.linalg.norm(X[own] - centroids[other], axis=1)
    return float((d_other < d_own).mean())


def intra_inter_ratio(X, labels) -> dict[str, float]:
    """Label -> mean distance of its records to its own centroid / mean distance from its centroid to each
    other label's centroid (method.md §5: centroid to centroid, as in the thesis code).

    Below 1 = the label is tighter than its separation from the rest.
    """
    X = _check_embeddings(X)
    labels = _check_labels(labels, len(X))
    centroids = label_centroids(X, labels)
    if len(centroids) < 2:
        raise ValueError(f"intra/inter ratio needs at least 2 labels, got {len(centroids)}")
    names = list(centroids)
    C = np.stack([centroids[n] for n in names])
    out = {}
    for i, lab in enumerate(names):
        intra = np.linalg.norm(X[labels == lab] - C[i], axis=1).mean()
        inter = np.linalg.norm(np.delete(C, i, axis=0) - C[i], axis=1).mean()
        out[lab] = float(intra / inter) if inter > 0 else np.nan
    return out


def embedding_scale(X) -> float:
    """The spread of an embedding: the mean Euclidean distance of its records to their overall centroid.

    Distances divided by it are comparable between checkpoints whose embeddings differ in scale (fine-tuning
    often stretches the whole space, which makes every raw distance grow)."""
    X = _check_embeddings(X)
    return float(np.linalg.norm(X - X.mean(0), axis=1).mean())


def _weighted_silhouettes(D: np.ndarray, codes: np.ndarray, w: np.ndarray, n_labels: int) -> np.ndarray:
    """Per-point silhouettes of a weighted point set (w = how often each point was drawn).

    D: distances between the points; a point's own copies are not its neighbours (its distance to
    itself is left out of a(i)), so a resample with repeats scores as the distribution it was drawn
    from, not as a set of zero-distance twins. With all weights 1 this is sklearn's silhouette_samples.
    """
    onehot = np.zeros((len(codes), n_labels))
    onehot[np.arange(len(codes)), codes] = 1.0
    W = onehot * w[:, None]                  # weight of each point in each label
    sums = D @ W                             # sum of weighted distances from each point to each label
    size = W.sum(0)                          # total weight per label
    own = size[codes] - w                    # the label's weight without the point (and its copies)
    a = np.divide(sums[np.arange(len(codes)), codes], own, out=np.zeros(len(codes)), where=own > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_other = sums / size[None, :]
    mean_other[np.arange(len(codes)), codes] = np.inf
    mean_other[:, size == 0] = np.inf
    b = mean_other.min(1)
    s = (b - a) / np.maximum(a, b)
    s[own <= 0] = 0.0                        # a point alone in its label: silhouette 0 (sklearn's convention)
    return np.nan_to_num(s)


def paired_silhouette_change(X_baseline, X_other, labels, *, n_boot: int = 200, max_records: int = 2000,
                             seed: int = 0, confidence: float = 0.95,
                             label_order: Sequence[str] | None = None) -> pd.DataFrame:
    """Change of the silhouettes (other - baseline) of the same records, with a paired bootstrap interval.

    Design (method.md §5, "Uncertainty"):
    - *Paired*: every replicate draws one set of records and scores both embeddings on it, so the
      interval is of the change itself, with what the two embeddings share cancelling out.
    - *Recomputed*: each replicate recomputes the silhouettes on the resampled records (the clusters'
      centres and spreads move with the sample), rather than resampling per-record silhouettes
      computed once, which ignores that movement and gives too narrow an interval.
    - *Stratified*: records are resampled with replacement within each label, so every label keeps its
      size and its per-label mean exists in every replicate. A record drawn several times is weighted,
      not duplicated: its own copies are not its neighbours (see _weighted_silhouettes).
    - *Subsampled*: silhouettes need all pairwise distances. When there are more than `max_records`
      records, a seeded stratified subsample of `max_records` is drawn once and its two distance
      matrices are computed once; each replicate then only reweights them (milliseconds each). The
      replicates' spread is that of a set of `max_records` records, so with more records the interval
      is conservative (wider than the full set's). The interval is the percentile interval of the
      replicates' deviations from the subsample's own change, placed around the change on all records.
    The point estimates (baseline, other, change) are computed on all records.

    Returns one row per label (in `label_order`, else sorted) plus "overall": columns ``baseline``,
    ``other``, ``change``, ``ci_low``, ``ci_high``, ``n``, ``n_resampled``, ``n_boot``.
    """
    Xa = _check_embeddings(X_baseline, "X_baseline")
    Xb = _check_embeddings(X_other, "X_other")
    if len(Xa) != len(Xb):
        raise ValueError(f"X_baseline has {len(Xa)} records but X_other has {len(Xb)}: the change is paired")
    labels = _check_labels(labels, len(Xa))
    if int(n_boot) < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if int(max_records) < 4:
        raise ValueError(f"max_records must be >= 4, got {max_records}")
    names = [str(x) for x in (label_order or sorted(set(labels))) if str(x) in set(labels)]
    _, _, sa = _silhouette_samples(Xa, labels)
    _, _, sb = _silhouette_samples(Xb, labels)
    n = len(labels)
    rng = np.random.default_rng(seed)
    # the subsample the replicates reweight (stratified, proportional, every label kept)
    if n > max_records:
        pool = []
        for lab in names:
            idx = np.flatnonzero(labels == lab)
            k = max(1, int(round(len(idx) * max_records / n)))
            pool.append(rng.choice(idx, size=min(k, len(idx)), replace=False))
        pool = np.sort(np.concatenate(pool))
    else:
        pool = np.arange(n)
    codes_all = np.array([names.index(lab) for lab in labels[pool]])
    from scipy.spatial.distance import cdist
    Da, Db = cdist(Xa[pool], Xa[pool]), cdist(Xb[pool], Xb[pool])
    members = [np.flatnonzero(codes_all == j) for j in range(len(names))]

    def stats(w):
        out = []
        for D in (Da, Db):
            s = _weighted_silhouettes(D, codes_all, w, len(names))
            per = [np.average(s[m], weights=w[m]) for m in members]
            out.append(np.r_[per, np.average(s, weights=w)])
        return out[1] - out[0]

    pool_change = stats(np.ones(len(pool)))
    reps = np.empty((int(n_boot), len(names) + 1))
    for b in range(int(n_boot)):
        w = np.zeros(len(pool))
        for m in members:   # within each label, draw its size with replacement
            np.add.at(w, m[rng.integers(0, len(m), size=len(m))], 1.0)
        reps[b] = stats(w)
    alpha = (1 - confidence) / 2
    dev_low, dev_high = np.quantile(reps - pool_change, [alpha, 1 - alpha], axis=0)
    rows = {}
    for j, lab in enumerate(names + ["overall"]):
        m = np.ones(n, dtype=bool) if lab == "overall" else labels == lab
        base, other = float(sa[m].mean()), float(sb[m].mean())
        ch = other - base
        rows[lab] = (base, other, ch, ch + float(dev_low[j]), ch + float(dev_high[j]), int(m.sum()),
                     int(len(pool) if lab == "overall" else len(members[j])), int(n_boot))
    return pd.DataFrame.from_dict(rows, orient="index", columns=[
        "baseline", "other", "change", "ci_low", "ci_high", "n", "n_resampled", "n_boot"])


def fold_mean_sd(values) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1) over folds, e.g. 5 ACDC folds."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or len(values) < 2:
        raise ValueError(f"need a 1-D sequence of at least 2 fold values, got shape {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError("fold values contain NaN or infinite values")
    summary = fold_summary(values)
    return summary.mean, summary.sd


# ---------------------------------------------------------------------------
# neighbourhoods


def knn_label_purity(X, labels, k: int = 10) -> tuple[float, dict[str, float]]:
    """Share of each record's k nearest neighbours (itself excluded) that share its label.

    Returns (overall mean over records, label -> mean over that label's records).
    Chance level for a label is roughly its prevalence, so compare labels with care.
    """
    X = _check_embeddings(X)
    labels = _check_labels(labels, len(X))
    k = int(k)
    if not 1 <= k <= len(X) - 1:
        raise ValueError(f"k must be between 1 and n_records-1 = {len(X) - 1}, got {k}")
    # kneighbors() without a query excludes each point from its own neighbours,
    # even when exact duplicates exist.
    neighbours = NearestNeighbors(n_neighbors=k).fit(X).kneighbors(return_distance=False)
    purity = (labels[neighbours] == labels[:, None]).mean(1)
    per_label = {str(lab): float(purity[labels == lab].mean()) for lab in np.unique(labels)}
    return float(purity.mean()), per_label
