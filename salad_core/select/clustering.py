"""Balanced k-means over unit-length embeddings (SALAD Stage II, step 2).

Every cluster ends with between 0.9·N/K and 1.1·N/K members (rounded outwards to whole points), so that a
cluster's share of the corpus P_web(c) is near 1/K and the selection's target distribution is shaped by M(c), not
by one giant cluster. Spherical k-means (cosine similarity, centroids renormalised) alternates with a balanced
assignment:

1. each point goes to the cluster that maximises similarity − price; prices of over-full clusters rise and those of
   under-full clusters fall until the sizes fit (an auction-style relaxation, warm-started between iterations);
2. whatever is still out of bounds is repaired by moving the points that lose least similarity by moving.

Similarities are computed `chunk` rows at a time: memory is the embeddings, the labels and one chunk × K block.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from salad_core.errors import InputError

TOLERANCE = 0.1  # sizes within ±10 % of N/K


@dataclass
class Clustering:
    labels: np.ndarray  # (N,) int32 cluster per point
    centroids: np.ndarray  # (K, dim) float32, unit length
    iterations: int

    @property
    def sizes(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=len(self.centroids))


def size_bounds(n: int, k: int, tolerance: float = TOLERANCE) -> tuple[int, int]:
    """Smallest and largest allowed cluster size; always admits the split into floor/ceil(N/K)."""
    mean = n / k
    return min(math.ceil(mean * (1 - tolerance)), n // k), max(math.floor(mean * (1 + tolerance)), -(-n // k))


def _similarities(x: np.ndarray, centroids: np.ndarray, chunk: int):
    for start in range(0, len(x), chunk):
        yield start, np.asarray(x[start : start + chunk], dtype=np.float32) @ centroids.T


def _assign(x, centroids, prices, chunk) -> np.ndarray:
    labels = np.empty(len(x), dtype=np.int32)
    for start, sim in _similarities(x, centroids, chunk):
        labels[start : start + len(sim)] = np.argmax(sim - prices, axis=1)
    return labels


def _price_assign(x, centroids, prices, lo, hi, chunk, rounds: int = 40) -> np.ndarray:
    """Argmax of similarity − price, adjusting the prices (in place) until the sizes fit or `rounds` run out."""
    k, target = len(centroids), len(x) / len(centroids)
    step = 0.05
    for _ in range(rounds):
        labels = _assign(x, centroids, prices, chunk)
        sizes = np.bincount(labels, minlength=k)
        if sizes.min() >= lo and sizes.max() <= hi:
            break
        prices += step * (sizes - target) / target
        step *= 0.9
    return labels


def balancing_prices(x: np.ndarray, centroids: np.ndarray, *, tolerance: float = TOLERANCE, chunk: int = 8192,
                     rounds: int = 80) -> np.ndarray:
    """Per-cluster prices that balance the assignment argmax(similarity − price) of `x` to fixed `centroids`: found
    on a sample, they carry the balance over to a pool too large to hold (select/assign.py)."""
    lo, hi = size_bounds(len(x), len(centroids), tolerance)
    prices = np.zeros(len(centroids), dtype=np.float32)
    _price_assign(x, centroids, prices, lo, hi, chunk, rounds)
    return prices


def balanced_labels(x: np.ndarray, centroids: np.ndarray, *, tolerance: float = TOLERANCE,
                    chunk: int = 8192) -> np.ndarray:
    """Labels of `x` for fixed `centroids`, every size within bounds: the prices, then the repair."""
    lo, hi = size_bounds(len(x), len(centroids), tolerance)
    labels = _assign(x, centroids, balancing_prices(x, centroids, tolerance=tolerance, chunk=chunk), chunk)
    _repair(x, centroids, labels, lo, hi, chunk)
    return labels


def _repair(x, centroids, labels, lo, hi, chunk) -> None:
    """Move the cheapest points out of over-full clusters and into under-full ones (labels changed in place)."""
    k = len(centroids)
    sizes = np.bincount(labels, minlength=k)
    for j in np.flatnonzero(sizes > hi):
        members = np.flatnonzero(labels == j)
        sim = np.asarray(x[members], dtype=np.float32) @ centroids.T
        sim[:, sizes >= hi] = -np.inf  # only clusters with room may receive
        best = sim.argmax(axis=1)
        loss = sim[np.arange(len(members)), j] - sim[np.arange(len(members)), best]
        for i in np.argsort(loss):
            if sizes[j] <= hi:
                break
            dest = best[i]
            if sizes[dest] >= hi:  # filled up meanwhile: take the next cluster with room
                row = np.asarray(x[members[i]], dtype=np.float32) @ centroids.T
                row[sizes >= hi] = -np.inf
                dest = int(row.argmax())
            labels[members[i]] = dest
            sizes[j] -= 1
            sizes[dest] += 1
    for j in np.flatnonzero(sizes < lo):
        need = lo - sizes[j]
        # Candidates: points whose cluster can spare one, ranked by the similarity they lose by moving to j.
        loss = np.full(len(x), np.inf, dtype=np.float32)
        for start, sim in _similarities(x, centroids, chunk):
            own = labels[start : start + len(sim)]
            spare = sizes[own] > lo
            rows = np.arange(len(sim))
            loss[start : start + len(sim)] = np.where(spare, sim[rows, own] - sim[:, j], np.inf)
        for i in np.argsort(loss):
            if need == 0 or not np.isfinite(loss[i]):
                break
            if sizes[labels[i]] <= lo:
                continue
            sizes[labels[i]] -= 1
            labels[i] = j
            sizes[j] += 1
            need -= 1


def _update_centroids(x, labels, k, chunk, old) -> np.ndarray:
    sums = np.zeros_like(old)
    for start in range(0, len(x), chunk):
        np.add.at(sums, labels[start : start + chunk], np.asarray(x[start : start + chunk], dtype=np.float32))
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return np.where(norms > 0, sums / np.maximum(norms, 1e-12), old).astype(np.float32)


def balanced_kmeans(x: np.ndarray, k: int, *, seed: int = 0, tolerance: float = TOLERANCE, iterations: int = 15,
                    chunk: int = 8192, on_iteration: Callable[[int], None] | None = None) -> Clustering:
    """Cluster unit-length rows of `x` into `k` clusters of balanced size (see the module docstring)."""
    n = len(x)
    if not 1 <= k <= n:
        raise InputError(f"Cannot make {k} clusters of {n} texts. Fix: choose K between 1 and the corpus size.")
    lo, hi = size_bounds(n, k, tolerance)
    rng = np.random.default_rng(seed)
    centroids = np.asarray(x[np.sort(rng.choice(n, size=k, replace=False))], dtype=np.float32).copy()
    prices = np.zeros(k, dtype=np.float32)
    labels = None
    done = 0
    for done in range(1, iterations + 1):
        new = _price_assign(x, centroids, prices, lo, hi, chunk)
        _repair(x, centroids, new, lo, hi, chunk)
        changed = n if labels is None else int((new != labels).sum())
        labels = new
        centroids = _update_centroids(x, labels, k, chunk, centroids)
        if on_iteration:
            on_iteration(done)
        if changed <= max(1, n // 1000):
            break
    return Clustering(labels, centroids, done)
