import numpy as np
import pytest
import torch

from cardio_core.analysis.embeddings import compute_embeddings, load_embeddings, store_embeddings
from cardio_core.store import Store


class _Tiny(torch.nn.Module):
    """Stands in for an encoder: a fixed projection of the (cropped) input."""

    def __init__(self, d_in, d=8, classes=3):
        super().__init__()
        self.proj = torch.nn.Linear(d_in, d)
        self.head = torch.nn.Linear(d, classes)

    def forward_head(self, f):
        return self.head(f)

    def forward_features(self, x):
        return self.proj(x.flatten(1))


def test_embeddings_use_the_fixed_evaluation_crop_and_are_deterministic():
    rng = np.random.default_rng(0)
    arrays = rng.normal(size=(10, 12, 5000)).astype(np.float32)
    model = _Tiny(12 * 2500)
    a, probs = compute_embeddings(model, arrays, modality="ecg", batch_size=4, with_head=True)
    b, _ = compute_embeddings(model, arrays, modality="ecg", batch_size=3)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    assert a.shape == (10, 8) and probs.shape == (10, 3) and (0 <= probs).all() and (probs <= 1).all()
    # only samples 0..2499 matter: changing the second half changes nothing
    changed = arrays.copy()
    changed[:, :, 2500:] = 99
    c, _ = compute_embeddings(model, changed, modality="ecg")
    np.testing.assert_allclose(a, c, rtol=1e-5, atol=1e-5)


def test_store_and_load_roundtrip_replaces(tmp_path):
    store = Store(tmp_path / "s.duckdb")
    X = np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32)
    ids = ["b", "a", "c", "e", "d"]
    store_embeddings(store, "w1", "chapman", ids, X)
    store_embeddings(store, "w1", "chapman", ids[:2], X[:2] + 1)  # re-embedding replaces, no duplicates
    got_ids, got = load_embeddings(store, "w1", "chapman", record_ids=ids)
    assert got_ids == ids
    np.testing.assert_allclose(got[:2], X[:2] + 1, rtol=1e-6)
    np.testing.assert_allclose(got[2:], X[2:], rtol=1e-6)
    with pytest.raises(KeyError, match="no embeddings"):
        load_embeddings(store, "w1", "chapman", record_ids=["zz"])
    with pytest.raises(ValueError):
        store_embeddings(store, "w1", "chapman", ids, X[:2])


def test_the_probe_limit_is_smaller_for_a_demo_dataset_only(tmp_path):
    from cardio_core.analysis.embeddings import (DEMO_PROBE_TRAIN_MAX, PROBE_TRAIN_MAX, probe_train_limit,
                                                 probe_train_subset)
    store = Store(tmp_path / "s.duckdb")
    assert probe_train_limit(store) == PROBE_TRAIN_MAX  # nothing ingested: the real-data limit
    for is_demo, expected in ((False, PROBE_TRAIN_MAX), (True, DEMO_PROBE_TRAIN_MAX)):
        store.execute("DELETE FROM datasets")
        store.execute("INSERT INTO datasets (dataset_id, modality, source_dir, is_demo) VALUES "
                      "('chapman', 'ecg', '/x', ?)", [is_demo])
        assert probe_train_limit(store) == expected
    ids = [f"r{i:04d}" for i in range(1000)]
    keep = probe_train_subset(ids, limit=DEMO_PROBE_TRAIN_MAX)
    assert keep.sum() == DEMO_PROBE_TRAIN_MAX
    assert (probe_train_subset(ids[::-1], limit=DEMO_PROBE_TRAIN_MAX)[::-1] == keep).all()  # order-independent
