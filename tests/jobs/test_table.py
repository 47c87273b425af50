"""jobs.table and the progress/log readers the Jobs page shows."""
from pathlib import Path

import pytest

from jobs.progress import log_tail, progress_fraction
from jobs.table import jobs_table
from app.testing import checkpoint_id, fill_store


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return fill_store(tmp_path_factory.mktemp("ws"))


def test_jobs_progress_and_log_tail(store, tmp_path):
    ws_root = Path(store.db_path).parent
    jobs = jobs_table(store, ws_root / "runs").set_index("job_id")
    assert jobs.loc["job-running", "progress"] == pytest.approx(0.4)
    assert jobs.loc["job-done", "progress"] == 1.0 and jobs.loc["job-done", "last_checkpoint_id"] == checkpoint_id(10)
    assert "val_macro_f1=0.41" in jobs.loc["job-running", "latest_metrics"]
    assert "epoch 5" in log_tail(jobs.loc["job-done", "log_path"], roots=[ws_root])
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    assert "outside the workspace" in log_tail(outside, roots=[ws_root])
    assert progress_fraction({"epoch": 2, "total_epochs": 8}) == 0.25
