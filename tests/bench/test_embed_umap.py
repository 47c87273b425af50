"""The embedding and UMAP benchmarks run end to end on tiny inputs and report sane numbers."""
from __future__ import annotations

import math

import pytest

from bench import embed as bench_embed
from bench import umap as bench_umap


def test_embed_bench_times_pipeline_and_bare_loop(capsys):
    res = bench_embed.main(["--n=8", "--batch-size=4", "--repeats=1", "--device=cpu"])
    out = capsys.readouterr().out
    assert "pipeline overhead vs bare loop" in out and "records/s" in out
    assert res["n"] == 8 and res["device"] == "cpu"
    assert {"bare fp32", "bare compute fp32", "pipeline"} <= set(res["seconds"])
    assert all(0 < s < math.inf for s in res["seconds"].values())
    assert math.isfinite(res["overhead"])


def test_embed_bench_refuses_cuda_without_a_gpu():
    import torch
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(SystemExit, match="no CUDA device"):
        bench_embed.main(["--device=cuda", "--n=4"])


def test_umap_bench_rejects_bad_sizes():
    with pytest.raises(SystemExit, match="sizes must be"):
        bench_umap.main(["--sizes=2"])


@pytest.mark.slow  # three fresh processes that import umap (one JIT-compiles): ~40 s on 2 busy cores
def test_umap_bench_compares_today_and_pca_first_cold_and_warm(capsys):
    res = bench_umap.main(["--quick"])
    n = bench_umap.QUICK_SIZES[0]
    assert [(r["n"], r["run"], r["variant"]) for r in res] == \
        [(n, "cold", "pca50"), (n, "warm", "today"), (n, "warm", "pca50")]
    assert all(r["fit_s"] > 0 and r["process_s"] >= r["fit_s"] for r in res)
    assert all(0.5 < r["trust"] <= 1.0 for r in res)       # clustered data: a layout that keeps neighbours
    cold, warm = res[0], res[2]
    assert warm["import_s"] < cold["import_s"]  # the later processes reuse the numba cache the first filled
    out = capsys.readouterr().out
    assert "trust@15" in out and "today" in out and "pca50" in out
