"""Stage II selection, the pure parts: balanced k-means, the target distribution, the seeded draw, budgets."""

from __future__ import annotations

import numpy as np
import pytest

from salad_core.select.allocation import target_distribution
from salad_core.select.clustering import balanced_kmeans, size_bounds
from salad_core.select.pool_stages import default_clusters
from salad_core.select.round import budget_hours


def blobs(sizes: list[int], dim: int = 32, spread: float = 0.25, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors around len(sizes) random centres; returns (points, true blob of each point)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(sizes), dim))
    x = np.concatenate([c + spread * rng.normal(size=(n, dim)) for c, n in zip(centres, sizes)]).astype(np.float32)
    truth = np.repeat(np.arange(len(sizes)), sizes)
    return x / np.linalg.norm(x, axis=1, keepdims=True), truth


def test_size_bounds_are_ten_percent_around_the_mean_and_always_feasible():
    assert size_bounds(1000, 10) == (90, 110)
    assert size_bounds(25, 10) == (2, 3)  # ±10 % of 2.5 admits no integer: floor/ceil of the mean instead
    lo, hi = size_bounds(101, 4)
    assert lo <= 101 // 4 and hi >= -(-101 // 4)


def test_balanced_kmeans_keeps_every_cluster_within_ten_percent_on_lopsided_data():
    x, _ = blobs([3000, 600, 300, 100])  # one blob holds 75 % of the points
    clustering = balanced_kmeans(x, 16, seed=0)
    lo, hi = size_bounds(len(x), 16)
    assert clustering.sizes.sum() == len(x)
    assert lo <= clustering.sizes.min() and clustering.sizes.max() <= hi, clustering.sizes
    assert np.allclose(np.linalg.norm(clustering.centroids, axis=1), 1.0, atol=1e-5)


def test_balanced_kmeans_recovers_equal_well_separated_blobs_and_is_seeded():
    x, truth = blobs([200, 200, 200, 200], spread=0.1)
    a = balanced_kmeans(x, 4, seed=3)
    b = balanced_kmeans(x, 4, seed=3)
    assert (a.labels == b.labels).all()
    # each cluster is one blob: the contingency table is a permutation matrix
    table = np.zeros((4, 4), dtype=int)
    np.add.at(table, (a.labels, truth), 1)
    assert sorted(table.max(axis=1)) == [200] * 4


def test_balanced_kmeans_refuses_more_clusters_than_points():
    with pytest.raises(ValueError, match="Cannot make 5 clusters of 3 texts"):
        balanced_kmeans(np.eye(3, dtype=np.float32), 5)


def test_target_distribution_follows_p_web_times_m_to_the_gamma():
    p_web = np.array([0.4, 0.3, 0.2, 0.1])
    m = np.array([1.0, 2.0, 4.0, 0.5])
    filtered = np.array([False, False, False, True])
    uniform = target_distribution(p_web, m, 0.0, filtered)
    assert np.allclose(uniform, [4 / 9, 3 / 9, 2 / 9, 0.0])  # γ = 0: the corpus's own mix, filtered dropped
    active = target_distribution(p_web, m, 2.0, filtered)
    expected = np.array([0.4 * 1, 0.3 * 4, 0.2 * 16, 0.0])
    assert np.allclose(active, expected / expected.sum())
    huge = target_distribution(p_web, np.array([100.0, 200.0, 300.0, 1.0]), 300.0, filtered)
    assert np.isfinite(huge).all() and huge.argmax() == 2  # M^γ would overflow outside log space


def test_target_distribution_refuses_when_every_cluster_is_filtered():
    with pytest.raises(ValueError, match="Every cluster was filtered"):
        target_distribution(np.array([0.5, 0.5]), np.array([1.0, 2.0]), 5.0, np.array([True, True]))


def test_budgets_read_as_hours_seconds_or_a_share_of_the_natural_speech():
    assert budget_hours("10%", 1.5) == pytest.approx(0.15)
    assert budget_hours("0.25", 1.5) == budget_hours("0.25h", 9.0) == 0.25
    assert budget_hours("720s", 1.5) == pytest.approx(0.2)
    for bad in ("", "ten", "-1", "0", "5 min"):
        with pytest.raises(ValueError, match="not understood"):
            budget_hours(bad, 1.0)


def test_default_cluster_count_is_128_on_real_corpora_and_smaller_on_small_ones():
    assert default_clusters(100_000) == 128
    assert default_clusters(3_371) == 24
    assert default_clusters(50) == 4
    assert default_clusters(25_000) == 128  # never more than the paper's K
