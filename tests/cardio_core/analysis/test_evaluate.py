"""cardio_core.analysis.evaluate on a small ingested store with known embeddings: the stored metrics equal
the metric functions applied by hand to the records each one is defined over."""
import shutil

import numpy as np
import pytest

from cardio_core import labels as L
from cardio_core import metrics as M
from cardio_core.analysis.embeddings import store_embeddings
from cardio_core.analysis.evaluate import evaluate_cmr, evaluate_ecg
from cardio_core.catalog import register_weights
from cardio_core.config import Workspace
from cardio_core.data.dataset_view import load_view
from cardio_core.store import Store


@pytest.fixture
def store(ingested_ws, tmp_path):
    ws, _, _ = ingested_ws
    copy = Workspace(tmp_path / "ws")
    shutil.copytree(ws.root, copy.root)   # ingested_ws is shared and read only
    store = Store(copy.db_path)
    # the preprocessed folder moved with the copy
    with store.write() as con:
        con.execute("UPDATE datasets SET preprocessed_dir = replace(preprocessed_dir, ?, ?)",
                    [str(ws.root), str(copy.root)])
    return store


def embed_by_label(store, weights_id, dataset_id, where, modality, seed=0):
    """Vectors that put each record near its first label's corner, plus noise: known, label-dependent geometry."""
    register_weights(store, weights_id=weights_id, modality=modality, name=weights_id, kind="pretrained")
    view = load_view(store, dataset_id, where=where)
    rng = np.random.default_rng(seed)
    X = (view.Y @ rng.normal(size=(view.Y.shape[1], 8)) + rng.normal(scale=0.3, size=(len(view.Y), 8)))
    store_embeddings(store, weights_id, dataset_id, view.records["record_id"].tolist(), X.astype(np.float32),
                     fold=None)
    return view, X.astype(np.float32)


def stored(store, wid, scope, name, label="", fold=-1):
    return store.scalar("SELECT value FROM metrics WHERE weights_id = ? AND scope = ? AND name = ? AND label = ? "
                        "AND fold = ?", [wid, scope, name, label, fold])


def test_ecg_silhouette_is_over_the_test_splits_single_labelled_rhythm_records(store):
    # The tiny demo's splits are too small for silhouettes: here every other record is a test record and the
    # rest validate; val records get embeddings that would change every number if they were counted as test.
    ids = [r[0] for r in store.query("SELECT record_id FROM records WHERE dataset_id = 'chapman' AND NOT excluded "
                                     "ORDER BY record_id")]
    with store.write() as con:
        for i, rid in enumerate(ids):
            con.execute("UPDATE records SET split = ? WHERE dataset_id = 'chapman' AND record_id = ?",
                        ["test" if i % 2 == 0 else "val", rid])
            if i % 3:  # most tiny-demo records carry extra classes: make two in three single-labelled
                con.execute("DELETE FROM labels WHERE dataset_id = 'chapman' AND record_id = ? "
                            "AND NOT list_contains(?, class)", [rid, list(L.RHYTHM_LABELS)])
    test, X = embed_by_label(store, "w", "chapman", "r.split = 'test'", "ecg")
    val = load_view(store, "chapman", where="r.split = 'val'")
    store_embeddings(store, "w", "chapman", val.records["record_id"].tolist(),
                     np.full((len(val.records), 8), 50.0, np.float32))
    evaluate_ecg(store, "w", n_boot=20)
    single = M.single_labelled_rhythm_mask(test.Y, test.classes)
    rhythm = M.rhythm_label_of(test.Y, test.classes)
    assert len(set(rhythm[single])) >= 2
    expected = M.silhouette_overall(X[single], rhythm[single])
    assert stored(store, "w", "chapman_test", "silhouette") == pytest.approx(expected, rel=1e-6)
    for label, value in M.silhouette_per_label(X[single], rhythm[single]).items():
        assert stored(store, "w", "chapman_test", "silhouette", label) == pytest.approx(value, rel=1e-6, abs=1e-9)


def test_cmr_metrics_are_per_fold_then_mean_over_folds(store):
    view, X = embed_by_label(store, "c", "acdc", "TRUE", "cmr")
    evaluate_cmr(store, "c")
    groups = np.array([view.classes[i] for i in view.Y.argmax(1)])
    folds = view.records["fold"].to_numpy()
    per_fold = {}
    for k in sorted(set(folds)):
        m = folds == k
        if 2 <= len(set(groups[m])) < m.sum():
            per_fold[int(k)] = M.silhouette_overall(X[m], groups[m])
            assert stored(store, "c", "acdc", "silhouette", fold=int(k)) == pytest.approx(per_fold[int(k)], rel=1e-6)
    if per_fold:
        assert stored(store, "c", "acdc", "silhouette") == pytest.approx(np.mean(list(per_fold.values())), rel=1e-6)
    assert set(L.ACDC_GROUPS) >= set(groups)
