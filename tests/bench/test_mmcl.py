import pytest


@pytest.mark.slow
def test_bench_mmcl_reports_three_throughputs_and_the_overhead(capsys):
    from bench.mmcl import main
    res = main(["--device=cpu", "--steps=1", "--warmup=1", "--batch-size=2", "--cmr-size=32", "--precision=32"])["cpu"]
    assert set(res["pairs_per_s"]) == {"bare", "bare+loader", "lightning"}
    assert all(v > 0 for v in res["pairs_per_s"].values()) and res["overhead"] > 0 and res["bf16"] is False
    assert "overhead     bare+loader / lightning" in capsys.readouterr().out
