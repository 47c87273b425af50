"""kill -9 at every stage of a real fine-tune job, then resume (issue 11, systematic test).

One job lineage on a small real workspace: each job is killed with SIGKILL at a named point
(cardio_core/faults.py) and resumed by the next, which is killed at the next point:

  baseline analysis after its first view -> mid-epoch -> between writing checkpoint 1 and registering it
  -> after its embeddings -> after its metrics -> after its last projection, before its mark -> (to the end)

After every kill the store is consistent (no checkpoint without its weights row and back, no weights
marked analysed without all of its rows); at the end every checkpoint and the baseline are fully
analysed exactly once (one row set each), the run is marked complete and no temporary file is left.
"""
import time

import pytest

from cardio_core.config import Workspace
from cardio_core.data.ingest import ingest_dataset
from cardio_core.faults import ENV
from cardio_core.store import Store


pytestmark = pytest.mark.slow

# The baseline's analysis is killed after its first view (the cancelled-baseline case of point 8); then the
# first checkpoint at each stage: mid-epoch, written but not registered, and after each analysis step.
KILLS = ["analysis:project:chapman_test", "train_batch", "checkpoint_written", "analysis:embed",
         "analysis:metrics", "analysis:project:cross_domain"]
VIEWS = {"chapman_test", "cross_domain"}


@pytest.fixture(scope="module")
def small_ws(tmp_path_factory):
    """Chapman and PTB-XL with enough test / display records for both projection views."""
    from cardio_core.demo.generate import generate_demo_datasets
    raw = tmp_path_factory.mktemp("kill_raw")
    generate_demo_datasets(raw, size={"chapman": 40, "ptbxl": 16, "acdc": 5}, seed=1, workers=1)
    ws = Workspace(tmp_path_factory.mktemp("kill_ws")).ensure()
    store = Store(ws.db_path)
    for name in ("chapman", "ptbxl"):
        ingest_dataset(store, ws, name, raw / name, seed=0, workers=1)
    return ws, store


def test_a_finetune_job_killed_at_every_stage_resumes_to_a_consistent_store(small_ws, monkeypatch,
                                                                            consistent):
    from jobs.runner import LocalRunner
    ws, store = small_ws
    monkeypatch.setenv("CARDIO_WORKSPACE", str(ws.root))
    runner = LocalRunner(ws, store)
    spec = {"kind": "finetune", "modality": "ecg", "dataset": "chapman", "recipe": "demo_ecg",
            "epochs": 2, "checkpoint_every": 1, "device": "cpu", "overrides": {"batch_size": 8},
            "params": {"max_train_records": 16}}  # two batches an epoch: small, and a real mid-epoch
    first = None
    job = None
    t0 = time.monotonic()
    for point in KILLS + [None]:
        if point:
            monkeypatch.setenv(ENV, point)
        else:
            monkeypatch.delenv(ENV, raising=False)
        job = runner.submit(spec) if job is None else runner.resume(job)
        first = first or job
        status = runner.wait(job, timeout=600)
        row = runner.show(job)
        if point:
            assert status == "failed" and "process died" in (row.get("error") or ""), (point, status, row)
        else:
            assert status == "succeeded", row.get("error")
        consistent(store)
    run = first
    base = store.scalar("SELECT parent_weights_id FROM runs WHERE run_id = ?", [run])
    epochs = [r[0] for r in store.query("SELECT epoch FROM checkpoints WHERE run_id = ? ORDER BY epoch", [run])]
    assert epochs == [1, 2]
    assert store.scalar("SELECT completed_at FROM runs WHERE run_id = ?", [run]) is not None
    ckpts = [r[0] for r in store.query("SELECT weights_id FROM checkpoints WHERE run_id = ? ORDER BY epoch", [run])]
    n_test = store.scalar("SELECT count(*) FROM records WHERE dataset_id = 'chapman' AND split = 'test' "
                          "AND NOT excluded")
    for wid in [base] + ckpts:
        assert store.scalar("SELECT count(*) FROM analysis_complete WHERE weights_id = ?", [wid]) == 1, wid
        views = store.query("SELECT view, count(*) FROM projections WHERE weights_id = ? GROUP BY view", [wid])
        # every view exactly once; a checkpoint also has its aligned layout of each (the epoch evolution's)
        expected = {v: 1 for v in VIEWS} | ({f"{v}_aligned": 1 for v in VIEWS} if wid != base else {})
        expected["chapman_test_lda"] = 1   # the supervised view: fitted on train, never aligned
        assert dict(views) == expected, (wid, views)
        assert store.scalar("SELECT count(*) FROM projection_points WHERE projection_id = ?",
                            [f"{wid}:chapman_test"]) == n_test
        if wid != base:
            assert {"f1", "silhouette"} <= {r[0] for r in store.query(
                "SELECT DISTINCT name FROM metrics WHERE weights_id = ?", [wid])}
    # the checkpoints of the resumed run are aligned to the run's earlier layouts
    assert store.scalar("SELECT aligned_to FROM projections WHERE weights_id = ? AND view = 'chapman_test_aligned'",
                        [ckpts[1]]) == f"{ckpts[0]}:chapman_test_aligned"
    leftovers = [p for p in (ws.runs_dir / run).rglob("*") if ".tmp" in p.name]
    assert leftovers == []
    print(f"{len(KILLS)} kills + final resume: {time.monotonic() - t0:.0f} s")
