"""A real fine-tune job in its own process: killed with SIGKILL mid-run, then resumed.

The resumed job continues the same run from the last complete checkpoint; every
checkpoint is registered once with its lineage, and nothing half-written is left.
"""
import os
import signal
import time

import pytest

from cardio_core.config import Workspace
from cardio_core.data.ingest import ingest_dataset
from cardio_core.store import Store

pytestmark = pytest.mark.slow


def test_finetune_job_survives_sigkill_and_resumes(demo_root, tmp_path, monkeypatch):
    from jobs.runner import LocalRunner

    ws = Workspace(tmp_path / "ws").ensure()
    monkeypatch.setenv("CARDIO_WORKSPACE", str(ws.root))
    store = Store(ws.db_path)
    ingest_dataset(store, ws, "chapman", demo_root / "chapman", workers=1)
    runner = LocalRunner(ws, store)
    job = runner.submit({"kind": "finetune", "modality": "ecg", "dataset": "chapman", "recipe": "demo_ecg",
                         "epochs": 4, "checkpoint_every": 1, "device": "cpu"})

    # wait for the first complete checkpoint, then kill the worker's process group mid-run
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        runner.poll()
        row = runner.show(job)
        if row["status"] in ("failed", "succeeded"):
            pytest.fail(f"job ended before it could be killed: {row['status']} {row.get('error')}")
        if (row.get("last_checkpoint_epoch") or 0) >= 1:
            break
        time.sleep(0.5)
    else:
        pytest.fail("no checkpoint within 240 s")
    os.killpg(int(row["pgid"]), signal.SIGKILL)
    assert runner.wait(job, timeout=30) == "failed"
    assert "process died" in (runner.show(job)["error"] or "")
    done_before = {e for (e,) in store.query("SELECT epoch FROM checkpoints WHERE run_id = ?", [job])}
    assert done_before and max(done_before) < 4

    resumed = runner.resume(job)
    assert runner.wait(resumed, timeout=600) == "succeeded", runner.show(resumed).get("error")
    epochs = [e for (e,) in store.query("SELECT epoch FROM checkpoints WHERE run_id = ? ORDER BY epoch", [job])]
    assert epochs == [1, 2, 3, 4]                      # one registered checkpoint per epoch, same run
    log = (ws.runs_dir / resumed / "job.log").read_text()
    assert "Restoring states from the checkpoint" in log  # Lightning continued from resume.ckpt
    parent = store.scalar("SELECT parent_weights_id FROM runs WHERE run_id = ?", [job])
    assert {p for (p,) in store.query("SELECT DISTINCT parent_weights_id FROM weights w JOIN checkpoints c "
                                      "USING (weights_id) WHERE c.run_id = ?", [job])} == {parent}
    leftovers = [p for p in (ws.runs_dir / job).rglob("*") if ".tmp" in p.name]
    assert leftovers == []
