"""UMAP fit time and quality with the ECG parameters (n_neighbors 30, min_dist 0.25): today's way (UMAP on
the 384-d embedding) beside the new default (PCA to 50 dimensions first), at 8.6k and 50k points.

`python -m bench umap [--sizes=8600,50000] [--dim=384] [--quick] [--timeout=1800]`

One process first fills a new, empty NUMBA_CACHE_DIR (numba's JIT compilation: the cold
time); every timed process then loads the compiled functions from it (warm). Each child times
`import umap` and `cardio_core.analysis.projections.fit_umap` on synthetic clustered 384-d data
and scores the layout with sklearn's trustworthiness@15 on 3,000 sampled points; the parent
prints both variants side by side. `--quick` uses small sizes for a smoke test.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

QUICK_SIZES = (300,)


def clustered_data(n: int, dim: int, seed: int, n_clusters: int = 10):
    """n points around n_clusters Gaussian centres, like a partly separated embedding space."""
    import numpy as np
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(n_clusters, dim))
    labels = rng.integers(0, n_clusters, size=n)
    return (centres[labels] + rng.normal(size=(n, dim))).astype(np.float32)


VARIANTS = {"today": None, "pca50": 50}   # variant -> fit_umap(pca_components=...)
TRUST_POINTS = 3000
TRUST_K = 15


def trustworthiness_sample(X, layout, seed: int, n: int = TRUST_POINTS, k: int = TRUST_K) -> float:
    """sklearn's trustworthiness@k of the layout against the original X, on a seeded sample of n points
    (the full O(n^2) computation does not fit at 50k)."""
    import numpy as np
    from sklearn.manifold import trustworthiness
    idx = np.random.default_rng(seed).choice(len(X), size=min(n, len(X)), replace=False)
    return float(trustworthiness(X[idx], layout[idx], n_neighbors=min(k, len(idx) // 2 - 1)))


def _child(n: int, dim: int, seed: int, variant: str) -> None:
    t0 = time.perf_counter()
    import umap  # noqa: F401  (numba compiles or loads umap's jitted functions here and on first call)
    from cardio_core.analysis.projections import UMAP_PARAMS, fit_umap
    t_import = time.perf_counter() - t0
    X = clustered_data(n, dim, seed)
    t1 = time.perf_counter()
    layout = fit_umap(X, seed=seed, pca_components=VARIANTS[variant], **UMAP_PARAMS["ecg"])
    t_fit = time.perf_counter() - t1
    if layout.shape != (n, 2):
        raise RuntimeError(f"fit_umap returned shape {layout.shape}, expected ({n}, 2)")
    trust = trustworthiness_sample(X, layout, seed)
    print("RESULT " + json.dumps({"import_s": t_import, "fit_s": t_fit, "trust": trust}), flush=True)


def run_once(n: int, dim: int, seed: int, cache_dir: str, timeout: float, variant: str) -> dict:
    env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "bench.umap", "--child", f"--n={n}", f"--dim={dim}",
                           f"--seed={seed}", f"--variant={variant}"], env=env, capture_output=True, text=True,
                          timeout=timeout)
    wall = time.perf_counter() - t0
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"UMAP child (n={n}) failed with exit code {proc.returncode}: {proc.stderr[-2000:]}")
    return {**json.loads(lines[-1][len("RESULT "):]), "process_s": wall}


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(prog="bench umap")
    parser.add_argument("--sizes", default="8600,50000", help="comma-separated point counts")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help=f"sizes {QUICK_SIZES} only (smoke test)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds allowed per child process")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--variant", default="pca50", choices=tuple(VARIANTS), help=argparse.SUPPRESS)
    args, _ = parser.parse_known_args(argv)
    if args.child:
        _child(args.n, args.dim, args.seed, args.variant)
        return []
    sizes = QUICK_SIZES if args.quick else tuple(int(s) for s in args.sizes.split(",") if s.strip())
    if not sizes or min(sizes) < 4:
        raise SystemExit(f"bench umap: sizes must be >= 4 points, got {args.sizes!r}")

    print(f"UMAP (ECG parameters) on {args.dim}-d synthetic clustered data, seed {args.seed}: today's fit_umap "
          f"(UMAP on all {args.dim} dimensions) vs PCA to 50 dimensions first (the default now).")
    print(f"Warm: one process first fills an empty numba cache; each timed process then loads it. "
          f"Trustworthiness@{TRUST_K} of the layout against the {args.dim}-d data, on {TRUST_POINTS} sampled points.")
    results = []
    with tempfile.TemporaryDirectory(prefix="bench_umap_numba_") as cache_dir:
        cold = {"n": min(sizes), "variant": "pca50", "run": "cold",
                **run_once(min(sizes), args.dim, args.seed, cache_dir, args.timeout, "pca50")}
        results.append(cold)
        print(f"  cold process (empty cache, {min(sizes)} points): import {cold['import_s']:.1f} s, "
              f"fit {cold['fit_s']:.1f} s, process {cold['process_s']:.1f} s")
        print(f"  {'points':>7s} {'variant':>8s} {'import s':>9s} {'fit s':>8s} {'process s':>10s} "
              f"{'trust@15':>9s}")
        for n in sizes:
            for variant in VARIANTS:
                r = {"n": n, "variant": variant, "run": "warm", **run_once(n, args.dim, args.seed, cache_dir, args.timeout,
                                                            variant)}
                results.append(r)
                print(f"  {n:7d} {variant:>8s} {r['import_s']:9.2f} {r['fit_s']:8.2f} {r['process_s']:10.2f} "
                      f"{r['trust']:9.4f}", flush=True)
    return results


if __name__ == "__main__":
    main()
