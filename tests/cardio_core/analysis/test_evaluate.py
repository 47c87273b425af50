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


def _half_test_half_other(store, other="val"):
    ids = [r[0] for r in store.query("SELECT record_id FROM records WHERE dataset_id = 'chapman' AND NOT excluded "
                                     "ORDER BY record_id")]
    with store.write() as con:
        for i, rid in enumerate(ids):
            con.execute("UPDATE records SET split = ? WHERE dataset_id = 'chapman' AND record_id = ?",
                        ["test" if i % 2 == 0 else other, rid])
            if i % 3:
                con.execute("DELETE FROM labels WHERE dataset_id = 'chapman' AND record_id = ? "
                            "AND NOT list_contains(?, class)", [rid, list(L.RHYTHM_LABELS)])


def meta(store, wid, scope, name, label="", fold=-1):
    import json
    raw = store.scalar("SELECT CAST(extra AS TEXT) FROM metrics WHERE weights_id = ? AND scope = ? AND name = ? "
                       "AND label = ? AND fold = ?", [wid, scope, name, label, fold])
    return json.loads(raw) if raw else {}


def test_ecg_probe_ptbxl_shares_and_paired_change_are_over_their_defined_records(store):
    _half_test_half_other(store, other="train")
    test, X = embed_by_label(store, "base", "chapman", "r.split = 'test'", "ecg", seed=0)
    train, Xt = embed_by_label(store, "base", "chapman", "r.split = 'train'", "ecg", seed=1)
    # the PTB-XL display subset (pool records would change every number if they were counted)
    ptb, Xp = embed_by_label(store, "base", "ptbxl", "r.split = 'display'", "ecg", seed=2)
    pool = load_view(store, "ptbxl", where="r.split = 'pool'")
    if len(pool.records):
        store_embeddings(store, "base", "ptbxl", pool.records["record_id"].tolist(),
                         np.full((len(pool.records), 8), -40.0, np.float32))
    # a checkpoint of a run started from 'base': same records, different vectors
    from cardio_core.pipeline.runs import register_checkpoint, register_run
    register_run(store, "run", "job", "ecg", "chapman", "demo_ecg", {}, "base")
    register_checkpoint(store, weights_id="run-e0002", run_id="run", job_id="job", epoch=2, step=1, fold=None,
                        path=None, modality="ecg", parent_id="base", name="e2", metrics={}, config={})
    X2 = X * 1.5 + np.random.default_rng(5).normal(scale=0.2, size=X.shape).astype(np.float32)
    store_embeddings(store, "run-e0002", "chapman", test.records["record_id"].tolist(), X2)
    store_embeddings(store, "run-e0002", "chapman", train.records["record_id"].tolist(), Xt)
    store_embeddings(store, "run-e0002", "ptbxl", ptb.records["record_id"].tolist(), Xp)
    evaluate_ecg(store, "base", n_boot=10)
    evaluate_ecg(store, "run-e0002", n_boot=10)

    # linear probe: fitted on the train split, scored on test, its sizes recorded
    lp = M.linear_probe(Xt, train.Y, X, test.Y, test.classes)
    assert stored(store, "base", "chapman_test", "linear_probe_macro_f1") == pytest.approx(lp["macro_f1"], rel=1e-6)
    info = meta(store, "base", "chapman_test", "linear_probe_macro_f1")
    assert info["fitted_on"] == "train" and info["n_train"] == len(train.records) == info["n_train_split"]
    assert info["n_test"] == len(test.records)

    # centroids over the test split's single- / multi-labelled records
    table = M.centroid_table(X, test.Y, test.classes)
    for lab, r in table.dropna(subset=["single_distance"]).iterrows():
        assert stored(store, "base", "chapman_test", "centroid_single", lab) == pytest.approx(r["single_distance"],
                                                                                             rel=1e-6)

    # PTB-XL: the display subset, rhythm statements mapped onto the Chapman rhythm labels
    Yp = ptb.Y[:, [ptb.classes.index(c) for c in L.RHYTHM_LABELS]]
    single = M.single_labelled_rhythm_mask(Yp, L.RHYTHM_LABELS)
    rhythm = np.where(single, M.rhythm_label_of(Yp, L.RHYTHM_LABELS), "")
    if len(set(rhythm[single])) >= 2:
        assert stored(store, "base", "ptbxl_display", "silhouette") == pytest.approx(
            M.silhouette_overall(Xp[single], rhythm[single]), rel=1e-6)
    own = M.label_centroids(Xp[single], rhythm[single])
    chapman_centroids = M.rhythm_centroids(X, test.Y, test.classes)
    if {"SR", "SB"} <= set(own):
        assert stored(store, "base", "cross_domain", "share_sr_closer_to_sb") == pytest.approx(
            M.share_closer_to(Xp, rhythm, own, "SR", "SB"))
        assert stored(store, "base", "cross_domain", "share_sb_closer_to_sr") == pytest.approx(
            M.share_closer_to(Xp, rhythm, own, "SB", "SR"))
    if {"SR", "SB"} <= set(chapman_centroids) and "SR" in set(rhythm):
        assert stored(store, "base", "cross_domain", "share_sr_closer_to_sb_chapman_centroids") == pytest.approx(
            M.share_closer_to(Xp, rhythm, chapman_centroids, "SR", "SB"))

    # the paired change of the checkpoint against its run's baseline, over the same test records
    s_single = M.single_labelled_rhythm_mask(test.Y, test.classes)
    labels = M.rhythm_label_of(test.Y, test.classes)[s_single]
    expected = M.paired_silhouette_change(X[s_single], X2[s_single], labels, n_boot=200, max_records=2000, seed=0,
                                          label_order=L.RHYTHM_LABELS)
    assert stored(store, "run-e0002", "chapman_test", "silhouette_change") == pytest.approx(
        expected.loc["overall", "change"], rel=1e-6)
    assert meta(store, "run-e0002", "chapman_test", "silhouette_change")["baseline_weights_id"] == "base"
    lo = store.scalar("SELECT ci_low FROM metrics WHERE weights_id = 'run-e0002' AND scope = 'chapman_test' "
                      "AND name = 'silhouette_change' AND label = ''")
    assert lo == pytest.approx(expected.loc["overall", "ci_low"], rel=1e-6)
    assert stored(store, "base", "chapman_test", "silhouette_change") is None   # a baseline has no change


def test_cmr_one_model_per_fold_per_label_summaries_and_unscorable_folds(store):
    view = load_view(store, "acdc", where="TRUE")
    register_weights(store, weights_id="c", modality="cmr", name="c", kind="pretrained")
    rng = np.random.default_rng(0)
    folds = view.records["fold"].to_numpy().astype(int)
    X = np.zeros((len(folds), 8), np.float32)
    for k in sorted(set(folds)):   # each fold's patients embedded by "its own model": a fold-specific map
        m = folds == k
        X[m] = (view.Y[m] @ rng.normal(size=(view.Y.shape[1], 8)) + rng.normal(scale=0.3, size=(m.sum(), 8)))
        store_embeddings(store, "c", "acdc", view.records["record_id"][m].tolist(), X[m], fold=int(k))
    evaluate_cmr(store, "c")
    groups = np.array([view.classes[i] for i in view.Y.argmax(1)])
    per_label_sil, per_label_ratio, scored = {}, {}, 0
    for k in sorted(set(folds)):
        m = folds == k
        if not 2 <= len(set(groups[m])) < m.sum():
            assert stored(store, "c", "acdc", "silhouette", fold=int(k)) is None
            assert "cannot be scored" in meta(store, "c", "acdc", "silhouette", fold=int(k))["note"]
            continue
        scored += 1
        for lab, v in M.silhouette_per_label(X[m], groups[m]).items():
            assert stored(store, "c", "acdc", "silhouette", lab, int(k)) == pytest.approx(v, rel=1e-6, abs=1e-9)
            per_label_sil.setdefault(lab, []).append(v)
        for lab, v in M.intra_inter_ratio(X[m], groups[m]).items():
            assert stored(store, "c", "acdc", "intra_inter_ratio", lab, int(k)) == pytest.approx(v, rel=1e-6)
            per_label_ratio.setdefault(lab, []).append(v)
    for name, per in (("silhouette", per_label_sil), ("intra_inter_ratio", per_label_ratio)):
        for lab, vals in per.items():
            assert stored(store, "c", "acdc", name, lab) == pytest.approx(np.mean(vals), rel=1e-6, abs=1e-9)
            sd = meta(store, "c", "acdc", name, lab)["sd"]
            if len(vals) > 1:
                assert sd == pytest.approx(np.std(vals, ddof=1), rel=1e-6)


def test_cmr_fold_that_cannot_be_scored_is_stored_with_its_reason(store):
    view = load_view(store, "acdc", where="TRUE")
    register_weights(store, weights_id="one", modality="cmr", name="one", kind="pretrained")
    folds = view.records["fold"].to_numpy().astype(int)
    k0 = int(sorted(set(folds))[0])
    keep = folds != k0
    ids = view.records["record_id"].tolist()
    first = [i for i, f in enumerate(folds) if f == k0][:1]     # fold k0: a single patient, unscorable
    chosen = [i for i in range(len(ids)) if keep[i]] + first
    X = np.random.default_rng(0).normal(size=(len(chosen), 4)).astype(np.float32)
    store_embeddings(store, "one", "acdc", [ids[i] for i in chosen], X)
    evaluate_cmr(store, "one")
    assert stored(store, "one", "acdc", "silhouette", fold=k0) is None
    note = meta(store, "one", "acdc", "silhouette", fold=k0)["note"]
    assert f"fold {k0} cannot be scored" in note and "1 records" in note
