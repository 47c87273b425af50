"""Time the full metrics pass on a Chapman-test-sized synthetic set (8.6k x 384-d).

`python -m bench metrics [--n=8600] [--dim=384] [--n-boot=200] [--seed=0]`

Prints each stage's time, the total, and how much the bootstrap shortcut of
silhouette_report (per-sample silhouettes once, means bootstrapped) saves over
recomputing the silhouettes on every bootstrap resample.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.metrics import silhouette_samples

from cardio_core.labels import CLASSES, RHYTHM_LABELS
from cardio_core.metrics import (
    centroid_table,
    cross_domain_distances,
    demographic_probe,
    domain_shift_score,
    knn_label_purity,
    linear_probe,
    rhythm_centroids,
    rhythm_label_of,
    share_closer_to,
    silhouette_report,
    single_labelled_rhythm_mask,
)


def synthetic_cohort(n: int, dim: int, seed: int, shift: float = 0.0):
    """Embeddings with weak rhythm clusters, extra classes on ~40% of records, age and sex."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(1234).normal(size=(len(CLASSES), dim))  # shared across cohorts
    rhythm_share = np.array([0.2, 0.15, 0.02, 0.35, 0.28])  # AFIB GSVT PACE SB SR
    rhythm = rng.choice(len(RHYTHM_LABELS), size=n, p=rhythm_share)
    Y = np.zeros((n, len(CLASSES)), dtype=np.int8)
    Y[np.arange(n), [CLASSES.index(RHYTHM_LABELS[r]) for r in rhythm]] = 1
    others = [i for i, c in enumerate(CLASSES) if c not in RHYTHM_LABELS]
    extra = rng.random(n) < 0.4
    Y[np.flatnonzero(extra), rng.choice(others, size=extra.sum())] = 1
    X = 0.15 * (Y @ centres) + rng.normal(size=(n, dim)) + shift
    age = 60 + 8 * X[:, 0] + rng.normal(0, 5, n)
    sex = np.where(X[:, 1] + rng.normal(size=n) > 0, "M", "F")
    return X.astype(np.float32), Y, age, sex


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="bench metrics")
    parser.add_argument("--n", type=int, default=8600)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--n-boot", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args, _ = parser.parse_known_args(argv)

    X, Y, age, sex = synthetic_cohort(args.n, args.dim, args.seed)
    X_ptb, Y_ptb, _, _ = synthetic_cohort(max(args.n // 5, 50), args.dim, args.seed + 1, shift=0.03)
    n_train = int(0.7 * args.n)
    times: dict[str, float] = {}

    def stage(name, fn):
        t0 = time.perf_counter()
        out = fn()
        times[name] = time.perf_counter() - t0
        print(f"  {name:<28s} {times[name]:7.2f} s", flush=True)
        return out

    print(f"metrics pass on {args.n} x {args.dim} synthetic records, n_boot={args.n_boot}")
    report = stage("silhouettes + bootstrap CIs", lambda: silhouette_report(
        X, Y, CLASSES, n_boot=args.n_boot, seed=args.seed))
    stage("centroids + cross-domain", lambda: (
        centroid_table(X, Y, CLASSES),
        cross_domain_distances(X_ptb, rhythm_label_of(Y_ptb, CLASSES), rhythm_centroids(X, Y, CLASSES)),
        share_closer_to(X_ptb, rhythm_label_of(Y_ptb, CLASSES), rhythm_centroids(X, Y, CLASSES))))
    single = single_labelled_rhythm_mask(Y, CLASSES)
    stage("kNN purity (k=10)", lambda: knn_label_purity(X[single], rhythm_label_of(Y[single], CLASSES)))
    probe = stage("linear probe (20 classes)", lambda: linear_probe(
        X[:n_train], Y[:n_train], X[n_train:], Y[n_train:], CLASSES))
    demo = stage("demographic probe (age, sex)", lambda: demographic_probe(X, age=age, sex=sex, seed=args.seed))
    shift = stage("domain-shift score", lambda: domain_shift_score(X, X_ptb, seed=args.seed))
    total = sum(times.values())
    print(f"  {'total':<28s} {total:7.2f} s")

    # What the shortcut saves: one recomputation of the per-sample silhouettes,
    # times n_boot, is what a full bootstrap would cost.
    Xs, ls = X[single], rhythm_label_of(Y[single], CLASSES)
    t0 = time.perf_counter()
    silhouette_samples(Xs, ls)
    one = time.perf_counter() - t0
    print(f"silhouette bootstrap: shortcut {times['silhouettes + bootstrap CIs']:.2f} s vs about "
          f"{one * args.n_boot:.1f} s recomputing ({one * args.n_boot / times['silhouettes + bootstrap CIs']:.0f}x)")
    print(f"sanity: overall silhouette {report.loc['overall', 'silhouette']:.4f} "
          f"[{report.loc['overall', 'ci_low']:.4f}, {report.loc['overall', 'ci_high']:.4f}], "
          f"probe macro AUROC {probe['macro_auroc']:.3f}, age R^2 {demo['age']['r2']:.3f}, "
          f"sex AUROC {demo['sex']['auroc']:.3f}, domain AUROC {shift:.3f}")


if __name__ == "__main__":
    main()
