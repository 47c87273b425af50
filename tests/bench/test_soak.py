"""bench soak, short: concurrent jobs, page reads and an outside read-only DuckDB handle lose nothing and raise
no lock error (issue 11; the figures for a few minutes come from `./run bench soak`)."""
import pytest


@pytest.mark.slow
def test_short_soak_loses_no_rows_and_raises_no_lock_error(tmp_path, capsys):
    from bench.soak import soak
    result = soak(seconds=6, writers=3, readers=1, outside_hold=0.2, root=tmp_path / "ws")
    assert result["writes_committed"] > 0 and result["reads"] > 0 and result["outside_opened"] > 0, result
    assert result["rows_lost"] == 0 and result["jobs_with_partial_metric_sets"] == 0, result
    assert result["unhandled_lock_errors"] == 0 and result["unhandled_errors"] == 0, result
