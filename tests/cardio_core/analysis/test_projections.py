import numpy as np
import pytest

from cardio_core.analysis.projections import (PCA_COMPONENTS, align_procrustes, fit_lda, fit_umap, pca_reduce,
                                              pre_reduction, project)


def _blobs(n=300, d=16, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 6, (3, d))
    y = rng.integers(0, 3, n)
    return centers[y] + rng.normal(0, 1, (n, d)), y


def test_align_procrustes_recovers_similarity_transform():
    rng = np.random.default_rng(1)
    ref = rng.normal(size=(50, 2))
    theta = 0.7
    R = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    moved = 3.0 * ref @ R + np.array([5.0, -2.0])
    np.testing.assert_allclose(align_procrustes(moved, ref), ref, atol=1e-5)
    with pytest.raises(ValueError, match="shape"):
        align_procrustes(moved[:10], ref)


@pytest.mark.slow
def test_umap_is_deterministic_and_separates_clusters():
    X, y = _blobs()
    a = fit_umap(X, n_neighbors=15, min_dist=0.1, seed=3)
    b = fit_umap(X, n_neighbors=15, min_dist=0.1, seed=3)
    np.testing.assert_allclose(a, b)
    from sklearn.metrics import silhouette_score
    assert silhouette_score(a, y) > 0.5


@pytest.mark.slow
def test_projection_initialised_from_previous_stays_close():
    X, y = _blobs()
    first = project(X, modality="cmr", seed=0)
    # the next checkpoint: slightly moved embeddings
    X2 = X + np.random.default_rng(2).normal(0, 0.2, X.shape)
    second = project(X2, modality="cmr", seed=0, previous=first)
    # aligned layouts of nearly the same embeddings keep records near their old place
    span = np.ptp(first, axis=0).max()
    assert np.median(np.linalg.norm(second - first, axis=1)) < 0.15 * span


def test_fit_umap_validates():
    with pytest.raises(ValueError, match="at least 4"):
        fit_umap(np.zeros((3, 5)))
    with pytest.raises(ValueError, match="init"):
        fit_umap(np.random.rand(20, 5), init=np.zeros((5, 2)))


def test_default_layout_is_an_independent_fit_and_the_aligned_chain_is_separate(ingested_ws, tmp_path):
    """method.md §5: each checkpoint's default layout is its own fixed-seed fit; the aligned layout of the
    epoch evolution is a separate, labelled projection chained to the previous weights."""
    import shutil
    from cardio_core.analysis.embeddings import store_embeddings
    from cardio_core.analysis.projections import aligned_view, load_projection, project_weights
    from cardio_core.catalog import register_weights
    from cardio_core.config import Workspace
    from cardio_core.data.dataset_view import load_view
    from cardio_core.queries import projection_points
    from cardio_core.store import Store
    ws, _, _ = ingested_ws
    copy = Workspace(tmp_path / "ws")
    shutil.copytree(ws.root, copy.root)
    store = Store(copy.db_path)
    ids = load_view(store, "acdc", where="TRUE").records["record_id"].tolist()
    rng = np.random.default_rng(0)
    X0 = rng.normal(size=(len(ids), 6)).astype(np.float32)
    for wid, X in (("b", X0), ("c", X0 + 0.05 * rng.normal(size=X0.shape).astype(np.float32))):
        register_weights(store, weights_id=wid, modality="cmr", name=wid, kind="pretrained")
        store_embeddings(store, wid, "acdc", ids, X)
    project_weights(store, "b", "acdc", modality="cmr")
    project_weights(store, "c", "acdc", modality="cmr", chain_after="b")
    rows = dict(store.query("SELECT view, aligned_to FROM projections WHERE weights_id = 'c'"))
    assert rows == {"acdc": None, aligned_view("acdc"): "b:acdc"}
    independent = load_projection(store, "c:acdc")
    # the default layout is what a fit of these weights alone gives: the chain does not touch it
    project_weights(store, "c", "acdc", modality="cmr")
    np.testing.assert_array_equal(independent[["x", "y"]].to_numpy(), load_projection(store, "c:acdc")[["x", "y"]])
    aligned = load_projection(store, f"c:{aligned_view('acdc')}")
    assert not np.allclose(aligned[["x", "y"]].to_numpy(), independent[["x", "y"]].to_numpy())
    # pages: the default view reads the independent layout, the evolution view the aligned one (the baseline,
    # which starts the chain, its independent one)
    assert np.allclose(projection_points(store, "c", "acdc")[["x", "y"]], independent[["x", "y"]])
    assert np.allclose(projection_points(store, "c", "acdc", aligned=True)[["x", "y"]], aligned[["x", "y"]])
    assert len(projection_points(store, "b", "acdc", aligned=True)) == len(ids)


def test_pca_reduction_is_deterministic_and_keeps_the_variance():
    X, _ = _blobs(n=400, d=120)
    a, b = pca_reduce(X, 50), pca_reduce(X.copy(), 50)
    assert a.shape == (400, 50) and np.array_equal(a, b)             # bit-identical, signs fixed
    from sklearn.decomposition import PCA
    ref = PCA(n_components=50, svd_solver="full").fit_transform(X)
    np.testing.assert_allclose(np.abs(a), np.abs(ref), atol=1e-3)    # the same components as sklearn's, up to sign
    # variance along the kept axes, largest first
    assert np.all(np.diff(a.var(0)) <= 1e-6)


def test_pre_reduction_only_when_there_are_more_dimensions():
    assert pre_reduction(1000, 384) == {"method": "pca", "n_components": PCA_COMPONENTS, "input_dims": 384}
    assert pre_reduction(1000, 32) is None              # already small
    assert pre_reduction(40, 384) is None               # fewer records than components
    assert pre_reduction(1000, 384, None) is None       # asked for none


@pytest.mark.slow
def test_umap_after_pca_is_deterministic_and_separates_clusters():
    X, y = _blobs(n=300, d=120)
    a = fit_umap(X, n_neighbors=15, min_dist=0.1, seed=3)
    b = fit_umap(X.copy(), n_neighbors=15, min_dist=0.1, seed=3)
    assert np.array_equal(a, b)                          # same input and seed: the same layout, bit for bit
    c = fit_umap(X, n_neighbors=15, min_dist=0.1, seed=4)
    assert not np.array_equal(a, c)                      # the seed matters
    from sklearn.metrics import silhouette_score
    assert silhouette_score(a, y) > 0.5


def test_fit_lda_is_sklearns_lda_applied_to_other_records_and_needs_three_classes():
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    X, y = _blobs(n=400, d=12)
    labels = np.array(["AFIB", "SB", "SR"])[y]
    fit, draw = slice(0, 300), slice(300, 400)
    layout, facts = fit_lda(X[fit], labels[fit], X[draw])
    reference = LinearDiscriminantAnalysis(n_components=2, solver="eigen", shrinkage="auto").fit(X[fit], labels[fit]).transform(X[draw])
    np.testing.assert_allclose(layout, reference, rtol=1e-4, atol=1e-4)
    assert layout.shape == (100, 2) and facts["classes"] == ["AFIB", "SB", "SR"] and facts["n_fit"] == 300
    # a class with a single fitted record is left out of the fit (it would have no within-class scatter)
    odd = labels[fit].copy()
    odd[0] = "PACE"
    assert "PACE" not in fit_lda(X[fit], odd, X[draw])[1]["classes"]
    with pytest.raises(ValueError, match="3 classes"):
        fit_lda(X[fit], np.where(labels[fit] == "SR", "SB", labels[fit]), X[draw])


def test_the_lda_view_is_fitted_on_train_records_and_drawn_on_test_records_only(ingested_ws, tmp_path):
    import json
    import shutil

    from cardio_core.analysis.embeddings import store_embeddings
    from cardio_core.analysis.projections import LDA_VIEW, project_weights
    from cardio_core.catalog import register_weights
    from cardio_core.data.dataset_view import load_view
    from cardio_core.labels import rhythm_of
    from cardio_core.queries import projection_method
    from cardio_core.store import Store

    ws, _, _ = ingested_ws
    shutil.copy(ws.db_path, tmp_path / "copy.duckdb")        # the session's workspace is read only
    store = Store(tmp_path / "copy.duckdb")
    register_weights(store, weights_id="w", modality="ecg", name="w", kind="pretrained")
    # the 16-record session demo has too few train records per rhythm for two axes: one rhythm label per record,
    # cycling over three, and one record with none (left out of the fit)
    ids = [r for (r,) in store.query("SELECT record_id FROM records WHERE dataset_id = 'chapman' ORDER BY 1")]
    store.execute("DELETE FROM labels WHERE dataset_id = 'chapman'")
    for i, r in enumerate(ids[1:]):
        store.execute("INSERT INTO labels (dataset_id, record_id, class, class_group) VALUES ('chapman', ?, ?, "
                      "'Rhythm')", [r, ("AFIB", "SB", "SR")[i % 3]])
    rng = np.random.default_rng(0)
    centres = {}
    for split in ("train", "test"):
        view = load_view(store, "chapman", where=f"r.split = '{split}'")
        rhythms = [rhythm_of([c for c, v in zip(view.classes, row) if v]) for row in view.Y]
        X = np.stack([centres.setdefault(r, rng.normal(0, 3, 16)) + rng.normal(0, 1, 16) for r in rhythms])
        store_embeddings(store, "w", "chapman", view.records["record_id"].tolist(), X.astype(np.float32))
    pid = project_weights(store, "w", LDA_VIEW, modality="ecg")
    assert pid == f"w:{LDA_VIEW}"
    method, params = store.query("SELECT method, params FROM projections WHERE projection_id = ?", [pid])[0]
    params = json.loads(params)
    drawn = {r for (r,) in store.query("SELECT record_id FROM projection_points WHERE projection_id = ?", [pid])}
    test = set(load_view(store, "chapman", where="r.split = 'test'").records["record_id"])
    train = load_view(store, "chapman", where="r.split = 'train'")
    single = sum(rhythm_of([c for c, v in zip(train.classes, row) if v]) not in ("other", "mixed") for row in train.Y)
    assert method == "lda" and drawn == test and not drawn & set(train.records["record_id"])
    assert params["fitted_on"] == "chapman train" and params["n_fit"] <= single and params["n_fit"] >= 0.9 * single
    assert "fitted on" in projection_method(store, "w", LDA_VIEW)
