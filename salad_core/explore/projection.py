"""One 2-D map for paired representations: a seeded UMAP fitted on the union of every view shown.

Text and speech rows (and, when two checkpoints are compared, both checkpoints' rows) go into one fit, so their
positions are comparable on one map: a pair's joining line is the distance the model leaves between the two views
of the same content. UMAP distances are not metric (only neighbourhoods are kept); the per-layer metrics are the
quantitative view. Projections are cached on disk by a digest of the exact input rows and the UMAP settings.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from salad_core.explore.cache import Representations
from salad_core.paths import cache_dir

UMAP_SETTINGS = {"n_neighbors": 15, "min_dist": 0.1, "metric": "cosine"}
MIN_POINTS = 5  # below this UMAP's spectral initialisation is undefined
ITEM_COLUMNS = ("item_id", "task", "domain", "question", "kl", "answer", "text_pred", "speech_pred")


def _projection_file(points: np.ndarray, seed: int) -> Path:
    h = hashlib.sha256(np.ascontiguousarray(points, dtype=np.float32).tobytes())
    h.update(repr((points.shape, sorted(UMAP_SETTINGS.items()), seed)).encode())
    return cache_dir("representations/umap") / f"{h.hexdigest()[:24]}.npy"


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


def map_points(entries: dict[str, Representations], layer: int, seed: int = 0) -> pd.DataFrame:
    """Every item of every entry as two rows (text, speech) at `layer`, placed by one UMAP fitted on all of them.

    Columns: checkpoint (the entries' keys), modality, x, y and the item's ITEM_COLUMNS.
    """
    frames, blocks = [], []
    for label, entry in entries.items():
        states = entry.layer(layer)
        items = entry.items[list(ITEM_COLUMNS)]
        for modality in ("text", "speech"):
            blocks.append(states[modality])
            frames.append(items.assign(checkpoint=label, modality=modality))
    xy = project(np.concatenate(blocks), seed)
    points = pd.concat(frames, ignore_index=True)
    return points.assign(x=xy[:, 0], y=xy[:, 1])
