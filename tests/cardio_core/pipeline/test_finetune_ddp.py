"""A real 2-process DDP fine-tune on CPU (gloo), through the job path a user takes (LocalRunner ->
jobs.worker -> jobs.kinds -> workflows.finetune -> finetune_ecg), against a one-process run on the
same data and global batch.

The learning rate is tiny (1e-9) so both runs end with the same weights and any difference in the
validation metrics could only come from how they are computed: per rank (the old bug: each rank
scored its own half of the validation set) or over the whole set.
"""
import json

import numpy as np
import pytest

from cardio_core.config import Workspace
from cardio_core.data.ingest import ingest_dataset
from cardio_core.demo.generate import generate_demo_datasets
from cardio_core.store import Store

pytestmark = pytest.mark.slow


def _spec(devices: int) -> dict:
    return {"kind": "finetune", "modality": "ecg", "dataset": "chapman", "recipe": "demo_ecg", "epochs": 1,
            "checkpoint_every": 1, "device": "cpu", "devices": devices, "seed": 0,
            "overrides": {"lr": 1e-9, "batch_size": 8}}


def test_two_process_ddp_matches_one_process_and_writes_once(tmp_path, monkeypatch):
    from jobs.runner import LocalRunner

    # 40 records: an odd-sized validation split, so DDP's padding of the last rank is exercised
    data = tmp_path / "data"
    generate_demo_datasets(data, size={"chapman": 40, "ptbxl": 0, "acdc": 0}, seed=3, workers=1)
    ws = Workspace(tmp_path / "ws").ensure()
    monkeypatch.setenv("CARDIO_WORKSPACE", str(ws.root))
    # fp32 in both runs: bf16 autocast on a CPU with native bf16 would make the two runs' sums differ by ~1e-4
    monkeypatch.setenv("CARDIO_CPU_BF16", "0")
    store = Store(ws.db_path)
    ingest_dataset(store, ws, "chapman", data / "chapman", workers=1)
    n_val = store.scalar("SELECT count(*) FROM records WHERE dataset_id = 'chapman' AND split = 'val' "
                         "AND NOT excluded")
    assert n_val >= 3 and n_val % 2 == 1, n_val

    runner = LocalRunner(ws, store, max_concurrent=1)
    single = runner.submit(_spec(1))
    assert runner.wait(single, timeout=600) == "succeeded", runner.show(single).get("error")
    ddp = runner.submit(_spec(2))
    assert runner.wait(ddp, timeout=600) == "succeeded", runner.show(ddp).get("error")

    log = (ws.runs_dir / ddp / "job.log").read_text()
    assert "Initializing distributed: GLOBAL_RANK: 1, MEMBER: 2/2" in log     # a second process really trained
    assert f"[{ddp} rank 1]" in log                                           # ... running this job's worker

    def val_metrics(run):
        rows = store.query("SELECT epoch, val_metrics FROM checkpoints WHERE run_id = ?", [run])
        assert [e for e, _ in rows] == [1], rows                               # one checkpoint row per epoch
        return json.loads(rows[0][1])

    one, two = val_metrics(single), val_metrics(ddp)
    for name in ("val/macro_f1", "val/macro_precision", "val/macro_recall", "val/loss"):
        assert two[name] == pytest.approx(one[name], abs=1e-5), name
    per_class = [k for k in one if k.startswith("val/f1/")]
    assert len(per_class) == 20
    assert np.allclose([two[k] for k in per_class], [one[k] for k in per_class], atol=1e-5)

    # exactly one set of files and analyses for the DDP run
    ckpt_dir = ws.runs_dir / ddp / "checkpoints"
    assert sorted(p.name for p in ckpt_dir.iterdir()) == ["epoch_0001.pth", "resume.ckpt"]
    wid = f"{ddp}-e0001"
    for table in ("embeddings", "projections", "metrics"):
        n_single = store.scalar(f"SELECT count(*) FROM {table} WHERE weights_id = ?", [f"{single}-e0001"])
        n_ddp = store.scalar(f"SELECT count(*) FROM {table} WHERE weights_id = ?", [wid])
        assert n_ddp == n_single > 0, table
    assert store.scalar("SELECT count(*) FROM runs WHERE run_id = ?", [ddp]) == 1
    assert store.scalar("SELECT count(*) FROM weights WHERE weights_id = ?", [wid]) == 1
    assert runner.show(ddp)["last_checkpoint"].endswith("resume.ckpt")
