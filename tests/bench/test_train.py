import pytest
import torch


@pytest.mark.slow
def test_bench_train_reports_three_throughputs(capsys):
    from bench.train import main
    out = main(["--device=cpu", "--steps=1", "--warmup=1", "--batch-size=2"])
    res = out["cpu"]
    assert set(res) == {"bare", "bare+loader", "lightning"}
    assert all(v > 0 for v in res.values())
    assert "bare / lightning" in capsys.readouterr().out
