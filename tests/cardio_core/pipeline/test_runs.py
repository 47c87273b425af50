"""Run files and lineage rows are never half-written (issue 11, points 8-9)."""
import json
import os

import pytest

from cardio_core.errors import RecordError
from cardio_core.pipeline.finetune import FoldsDone
from cardio_core.pipeline.runs import read_json, register_checkpoint, write_json
from cardio_core.store import Store, StoreWriteFailed


def test_register_checkpoint_writes_both_rows_or_neither(tmp_path, disk_full_on):
    store = Store(tmp_path / "s.duckdb")
    kw = dict(run_id="r", job_id="j", epoch=1, step=10, fold=None, path=tmp_path / "e1.pth", modality="ecg",
              parent_id="p", name="r epoch 1", metrics={}, config={})
    disk_full_on(store, "INSERT INTO checkpoints")
    with pytest.raises(StoreWriteFailed):
        register_checkpoint(store, weights_id="r-e0001", **kw)
    assert store.scalar("SELECT count(*) FROM weights WHERE weights_id = 'r-e0001'") == 0


def test_write_json_never_leaves_half_a_file(tmp_path, monkeypatch):
    path = write_json(tmp_path / "fold_accuracy.json", {"1": {"0": 0.5}})
    real_replace = os.replace

    def crash(*a, **k):  # the process dies between writing the temporary file and renaming it
        raise KeyboardInterrupt
    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        write_json(path, {"1": {"0": 0.5, "1": 0.6}, "2": {}})
    monkeypatch.setattr(os, "replace", real_replace)
    assert json.loads(path.read_text()) == {"1": {"0": 0.5}}


def test_a_damaged_fold_file_is_a_clear_error_and_does_not_block_resume(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "folds_done.json").write_text("[0, 1, 2")  # truncated by an in-place writer
    with pytest.raises(RecordError, match="folds_done.json: not valid JSON"):
        read_json(run_dir / "folds_done.json", [])
    done = FoldsDone(run_dir)
    assert done.done == set()
    done.add(0)
    assert json.loads((run_dir / "folds_done.json").read_text()) == [0]
