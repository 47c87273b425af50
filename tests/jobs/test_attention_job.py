"""The attention job kind: the spec it accepts, and a real worker computing a record's maps into the store."""
import shutil

import pytest

from cardio_core.config import Workspace
from cardio_core.store import Store
from jobs.spec import JobSpec, SpecError


def test_an_attention_spec_names_ecg_weights_a_dataset_and_records():
    ok = JobSpec(kind="attention", weights="w1", dataset="chapman", params={"record_ids": ["JS00001"]})
    assert ok.params["record_ids"] == ["JS00001"]
    for bad, field in ((dict(dataset="chapman", params={"record_ids": ["a"]}), "weights"),
                       (dict(weights="w1", dataset="acdc", params={"record_ids": ["a"]}), "dataset"),
                       (dict(weights="w1", dataset="chapman", params={}), "record_ids"),
                       (dict(weights="w1", dataset="chapman", params={"record_ids": [""]}), "record_ids"),
                       (dict(weights="w1", dataset="chapman", params={"record_ids": ["a"] * 1001}), "record_ids")):
        with pytest.raises(SpecError, match=field):
            JobSpec(kind="attention", **bad)


def test_an_attention_job_stores_the_maps_and_a_bad_record_fails_with_its_name(ingested_ws, tmp_path):
    from cardio_core import queries
    from cardio_core.catalog import ensure_random_weights
    from jobs.runner import LocalRunner

    src, _, _ = ingested_ws
    ws = Workspace(tmp_path / "ws").ensure()
    shutil.copy(src.db_path, ws.db_path)           # the session's workspace is read only
    store = Store(ws.db_path)
    wid = ensure_random_weights(store, "ecg")
    record = store.scalar("SELECT record_id FROM records WHERE dataset_id = 'chapman' AND split = 'val' "
                          "AND NOT excluded ORDER BY record_id LIMIT 1")
    runner = LocalRunner(ws, store)
    job = runner.submit(JobSpec(kind="attention", weights=wid, dataset="chapman", device="cpu",
                                params={"record_ids": [record]}))
    assert runner.wait(job, timeout=180) == "succeeded", runner.show(job).get("error")
    maps = queries.record_attention(store, wid, "chapman", record)
    assert list(maps) == ["block3", "block2", "block1", "pool"] and maps["block1"].shape == (6, 12, 25)
    bad = runner.submit(JobSpec(kind="attention", weights=wid, dataset="chapman", device="cpu",
                                params={"record_ids": ["NO_SUCH_RECORD"]}))
    assert runner.wait(bad, timeout=180) == "failed"
    assert "NO_SUCH_RECORD" in runner.show(bad)["error"]
    assert queries.record_attention(store, wid, "chapman", record)   # what was stored stays
