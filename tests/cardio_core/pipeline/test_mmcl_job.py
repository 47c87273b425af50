"""A contrastive pre-training job end to end, in a workspace that holds only a paired cohort: both encoders
trained, each checkpoint registered as a pair with its lineage, and each pair analysed on the paired test split
(retrieval metrics, the joint layout)."""
import pytest

from cardio_core.config import Workspace
from cardio_core.data.ingest_paired import ingest_paired
from cardio_core.pipeline.runs import run_complete
from cardio_core.store import Store
from tests.cardio_core.data.paired_cohort import write_cohort

pytestmark = pytest.mark.slow


def test_pretrain_mmcl_job_trains_registers_and_analyses_each_pair(tmp_path, monkeypatch):
    from jobs.runner import LocalRunner

    ws = Workspace(tmp_path / "ws").ensure()
    monkeypatch.setenv("CARDIO_WORKSPACE", str(ws.root))
    store = Store(ws.db_path)
    write_cohort(tmp_path / "paired", 24)
    result = ingest_paired(store, ws, tmp_path / "paired", is_demo=False, seed=0, workers=1)
    assert result.n_ok == 24
    runner = LocalRunner(ws, store)
    job = runner.submit({"kind": "pretrain_mmcl", "dataset": "paired", "recipe": "demo_mmcl", "epochs": 2,
                         "checkpoint_every": 1, "device": "cpu",
                         "overrides": {"batch_size": 8, "train_subset": 0}})
    assert runner.wait(job, timeout=600) == "succeeded", runner.show(job).get("error")

    pairs = store.query("SELECT pair_id, ecg_weights_id, cmr_weights_id, epoch, stage FROM encoder_pairs "
                        "WHERE run_id = ? ORDER BY epoch", [job])
    assert [p[3] for p in pairs] == [1, 2]
    assert {p[4] for p in pairs} == {"mmcl"}
    for pair_id, ecg_id, cmr_id, _, _ in pairs:
        for wid, modality in ((ecg_id, "ecg"), (cmr_id, "cmr")):
            row = store.query("SELECT modality, family, stage, parent_weights_id FROM weights WHERE weights_id = ?",
                              [wid])[0]
            assert row[:3] == (modality, job, "mmcl")
            assert row[3]                                                   # the lineage: where it started
        assert store.scalar("SELECT count(*) FROM analysis_complete WHERE weights_id = ?", [pair_id]) == 1
        scopes = {r[0] for r in store.query("SELECT DISTINCT scope FROM metrics WHERE weights_id = ?", [pair_id])}
        assert "paired_test" in scopes
        n_test = store.scalar("SELECT count(*) FROM records WHERE dataset_id = 'paired_ecg' AND split = 'test' "
                              "AND NOT excluded")
        assert n_test > 0
        views = {r[0] for r in store.query("SELECT DISTINCT view FROM projections WHERE weights_id = ?",
                                           [pair_id])}
        assert "paired_joint" in views
    assert run_complete(store, job)
