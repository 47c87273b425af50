import numpy as np
import pytest

from cardio_core.analysis.projections import align_procrustes, fit_umap, project


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
