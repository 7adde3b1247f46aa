"""2-D maps of embeddings: a seeded UMAP over exact cosine neighbours, cached on disk by its input.

The explorer maps paired hidden states with it, a selection round maps its corpus's sentence embeddings. UMAP
distances are not metric (only neighbourhoods are kept). Projections are cached by a digest of the exact input rows
and the UMAP settings, so a page that redraws a map reads it back.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np

from salad_core.paths import cache_dir

UMAP_SETTINGS = {"n_neighbors": 15, "min_dist": 0.1, "metric": "cosine"}
MIN_POINTS = 5  # below this UMAP's spectral initialisation is undefined


def _projection_file(points: np.ndarray, seed: int) -> Path:
    h = hashlib.sha256(np.ascontiguousarray(points, dtype=np.float32).tobytes())
    h.update(repr((points.shape, sorted(UMAP_SETTINGS.items()), seed)).encode())
    return cache_dir("umap") / f"{h.hexdigest()[:24]}.npy"


def cosine_knn(points: np.ndarray, k: int, chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest neighbours by cosine distance, each row's own index first: (M, k) indices and distances.

    Given to UMAP instead of its approximate NN-descent, which numba compiles anew in every process (about half a
    minute here): exact search over a few thousand points takes a second and is exact.
    """
    unit = points.astype(np.float32) / np.maximum(np.linalg.norm(points, axis=1, keepdims=True), 1e-12)
    indices = np.empty((len(unit), k), dtype=np.int64)
    distances = np.empty((len(unit), k), dtype=np.float32)
    for start in range(0, len(unit), chunk):
        dist = 1.0 - unit[start : start + chunk] @ unit.T  # (chunk, M)
        rows = np.arange(dist.shape[0])
        dist[rows, start + rows] = -1.0  # each point is its own first neighbour, even among duplicates
        nearest = np.argpartition(dist, k - 1, axis=1)[:, :k]
        order = np.argsort(np.take_along_axis(dist, nearest, 1), axis=1, kind="stable")
        indices[start : start + chunk] = np.take_along_axis(nearest, order, 1)
        distances[start : start + chunk] = np.maximum(np.take_along_axis(dist, indices[start : start + chunk], 1), 0)
    return indices, distances


def project(points: np.ndarray, seed: int = 0, use_cache: bool = True) -> np.ndarray:
    """(M, D) -> (M, 2) UMAP coordinates; the same rows and seed give the same map (read back from the cache,
    unless `use_cache` is off: then it is fitted and not stored, as a timing needs)."""
    if points.ndim != 2 or points.shape[0] < MIN_POINTS:
        raise ValueError(f"UMAP needs a (M, D) array with M >= {MIN_POINTS}, got shape {points.shape}. "
                         "Fix: choose an item set with more items.")
    path = _projection_file(points, seed)
    if use_cache and path.exists():
        return np.load(path)
    import umap  # imported here: it compiles with numba on first import (seconds)

    k = min(UMAP_SETTINGS["n_neighbors"], points.shape[0] - 1)
    with warnings.catch_warnings():  # it warns that `transform` needs its own index: we never transform new data
        warnings.filterwarnings("ignore", message=".*knn_search_index.*")
        reducer = umap.UMAP(**{**UMAP_SETTINGS, "n_neighbors": k}, random_state=seed, n_jobs=1,
                            precomputed_knn=(*cosine_knn(points, k), None))
        xy = reducer.fit_transform(points.astype(np.float32)).astype(np.float32)
    if not use_cache:
        return xy
    tmp = path.with_name(path.stem + ".tmp.npy")
    np.save(tmp, xy)
    tmp.replace(path)
    return np.load(path)
