"""Metric replacement is one transaction (issue 11, point 7): a disk-full error in the insert keeps the old rows."""
import numpy as np
import pytest

from cardio_core.analysis.metric_rows import store_classification, store_cmr_accuracy
from cardio_core.labels import CLASSES
from cardio_core.store import Store, StoreWriteFailed


def scores(seed):
    rng = np.random.default_rng(seed)
    y = (rng.random((200, len(CLASSES))) < 0.3).astype(int)
    return y, np.clip(y * 0.6 + rng.random(y.shape) * 0.5, 0, 1)


def test_classification_metrics_survive_a_failed_replacement(tmp_path, disk_full_on):
    store = Store(tmp_path / "s.duckdb")
    store_classification(store, "w1", *scores(0), CLASSES)
    before = store.query_df("SELECT * FROM metrics WHERE weights_id = 'w1' ORDER BY ALL")
    assert len(before) == 104  # 20 classes x 5 + macro f1/precision/recall + prevalence_f1_r
    disk_full_on(store, "INSERT INTO metrics")
    with pytest.raises(StoreWriteFailed, match="rolled back"):
        store_classification(store, "w1", *scores(1), CLASSES)
    after = store.query_df("SELECT * FROM metrics WHERE weights_id = 'w1' ORDER BY ALL")
    assert len(after) == 104 and after["value"].fillna(-1).tolist() == before["value"].fillna(-1).tolist()


def test_cmr_accuracy_survives_a_failed_replacement(tmp_path, disk_full_on):
    store = Store(tmp_path / "s.duckdb")
    store_cmr_accuracy(store, "c1", {0: 0.8, 1: 0.7, 2: 0.9})
    before = store.query_df("SELECT fold, value FROM metrics WHERE weights_id = 'c1' ORDER BY fold")
    disk_full_on(store, "INSERT INTO metrics")
    with pytest.raises(StoreWriteFailed):
        store_cmr_accuracy(store, "c1", {0: 0.1})
    assert store.query_df("SELECT fold, value FROM metrics WHERE weights_id = 'c1' ORDER BY fold").equals(before)
