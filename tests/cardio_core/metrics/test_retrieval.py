"""Cross-modal retrieval metrics against a brute-force reference."""
import numpy as np
import pytest

from cardio_core.metrics.retrieval import (chance_median_rank, chance_top_k, cross_modal_retrieval, retrieval_ranks,
                                           retrieval_summary, top_k_accuracy)


def brute_force_ranks(Q, G):
    """Loop over queries: sort the gallery by cosine similarity, ties placed ahead of the pair."""
    ranks = []
    for i, q in enumerate(Q):
        sims = [float(np.dot(q, g) / (np.linalg.norm(q) * np.linalg.norm(g))) for g in G]
        ahead = sum(1 for j, s in enumerate(sims) if j != i and s >= sims[i])
        ranks.append(ahead + 1)
    return np.array(ranks)


def test_ranks_match_brute_force():
    rng = np.random.default_rng(0)
    latent = rng.normal(size=(60, 8))
    Q = latent + 0.7 * rng.normal(size=latent.shape)
    G = latent @ rng.normal(size=(8, 8)) * 0.1 + latent + 0.7 * rng.normal(size=latent.shape)
    np.testing.assert_array_equal(retrieval_ranks(Q, G), brute_force_ranks(Q, G))


def test_perfect_pairs_rank_first_and_constant_embeddings_score_chance_or_worse():
    X = np.eye(5)
    assert retrieval_ranks(X, X).tolist() == [1] * 5
    C = np.ones((5, 3))
    # all similarities tie: pessimistic ranks put every pair last
    assert retrieval_ranks(C, C).tolist() == [5] * 5


def test_summary_values_and_chance():
    rng = np.random.default_rng(1)
    latent = rng.normal(size=(100, 16))
    Q, G = latent + 0.5 * rng.normal(size=latent.shape), latent + 0.5 * rng.normal(size=latent.shape)
    ranks = brute_force_ranks(Q, G)
    out = retrieval_summary(Q, G, ks=(1, 5, 10), n_boot=50, seed=0)
    for k in (1, 5, 10):
        assert out[f"top{k}"]["value"] == pytest.approx((ranks <= k).mean())
        assert out[f"top{k}"]["chance"] == pytest.approx(k / 100)
        assert out[f"top{k}"]["ci_low"] <= out[f"top{k}"]["value"] <= out[f"top{k}"]["ci_high"]
    assert out["median_rank"]["value"] == pytest.approx(np.median(ranks))
    assert out["median_rank"]["chance"] == pytest.approx(50.5)
    assert out["top10"]["value"] > 3 * out["top10"]["chance"]


def test_both_directions_differ_for_asymmetric_spaces():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(30, 4)), rng.normal(size=(30, 4))
    both = cross_modal_retrieval(a, b, n_boot=10)
    np.testing.assert_array_equal(retrieval_ranks(b, a), brute_force_ranks(b, a))
    assert set(both) == {"ecg_to_cmr", "cmr_to_ecg"}
    assert both["cmr_to_ecg"]["median_rank"]["value"] == pytest.approx(np.median(brute_force_ranks(b, a)))


def test_chance_helpers_and_validation():
    assert chance_top_k(4, 10) == 1.0
    assert chance_median_rank(4) == 2.5
    assert top_k_accuracy([1, 2, 3, 4], 2) == 0.5
    with pytest.raises(ValueError, match="same width"):
        retrieval_ranks(np.ones((3, 2)), np.ones((4, 2)))
    with pytest.raises(ValueError, match="NaN"):
        retrieval_ranks(np.array([[np.nan, 1.0], [1.0, 0.0]]), np.ones((2, 2)))
    with pytest.raises(ValueError, match="k must be"):
        top_k_accuracy([1], 0)
