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


@pytest.mark.slow  # two fresh processes that import umap and JIT-compile: ~30-40 s on 2 busy cores
def test_umap_bench_cold_and_warm_runs(capsys):
    res = bench_umap.main(["--quick"])
    assert [(r["n"], r["run"]) for r in res] == [(n, run) for n in bench_umap.QUICK_SIZES for run in (1, 2)]
    assert all(r["fit_s"] > 0 and r["process_s"] >= r["fit_s"] for r in res)
    cold, warm = res[0], res[1]
    assert warm["import_s"] < cold["import_s"]  # the second process reuses the numba cache the first filled
    assert "points" in capsys.readouterr().out
