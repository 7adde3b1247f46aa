"""How far apart the two views of the same content sit inside the model, layer by layer; each metric defined once.

Inputs are paired rows: row i of `text` and row i of `speech` are the same content read and heard (an item's
question pooled over its positions, or one aligned next-is-text position). All sums run in float64.

    pair cosine      mean_i  <t_i, s_i> / (|t_i| |s_i|)                               no unit, in [-1, 1]
    norm ratio       mean_i  |s_i| / |t_i|                                            speech / text, 1 = same length
    modality gap     | mean_i t_i/|t_i|  -  mean_i s_i/|s_i| |                         in [0, 2], unit vectors
    linear CKA       |S'^T T'|_F^2 / (|T'^T T'|_F |S'^T S'|_F),  T', S' column-centred  no unit, in [0, 1]
    item KL          mean over an item's aligned positions of KL(P(.|text) || P(.|speech))   nats per token

The modality gap follows Liang et al. 2022 ("Mind the Gap"): the distance between the modality centroids of the
L2-normalised embeddings. Linear CKA follows Kornblith et al. 2019 (eq. for linear kernels, feature-space form); it
compares the two clouds' geometry as a whole and ignores rotations and isotropic scaling between them. The item KL
is the token-level misalignment M of SALAD restricted to one item (salad_core/eval/divergence.py defines M).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

METRICS = ("pair_cosine", "norm_ratio", "modality_gap", "linear_cka")
METRIC_LABELS = {  # axis titles, with units
    "pair_cosine": "cosine(text, speech) of a pair (no unit)",
    "norm_ratio": "L2 norm ratio |speech| / |text| (×)",
    "modality_gap": "modality gap: centroid distance of unit vectors (no unit, 0–2)",
    "linear_cka": "linear CKA (no unit, 0–1)",
}
_EPS = 1e-12


def _check_pairs(text: np.ndarray, speech: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t, s = np.asarray(text, dtype=np.float64), np.asarray(speech, dtype=np.float64)
    if t.ndim != 2 or t.shape != s.shape:
        raise ValueError(f"paired views must be two (N, D) arrays of one shape, got {t.shape} and {s.shape}. "
                         "Fix: pass row i of both as the same item.")
    return t, s


def _norms(x: np.ndarray) -> np.ndarray:
    return np.maximum(np.linalg.norm(x, axis=1), _EPS)


def pair_cosines(text: np.ndarray, speech: np.ndarray) -> np.ndarray:
    """(N,) cosine similarity of each pair."""
    t, s = _check_pairs(text, speech)
    return np.einsum("nd,nd->n", t, s) / (_norms(t) * _norms(s))


def norm_ratios(text: np.ndarray, speech: np.ndarray) -> np.ndarray:
    """(N,) |s_i| / |t_i| for each pair."""
    t, s = _check_pairs(text, speech)
    return _norms(s) / _norms(t)


def modality_gap(text: np.ndarray, speech: np.ndarray) -> float:
    """Distance between the centroids of the unit-normalised text rows and speech rows (Liang et al. 2022)."""
    t, s = _check_pairs(text, speech)
    centre_t = (t / _norms(t)[:, None]).mean(0)
    centre_s = (s / _norms(s)[:, None]).mean(0)
    return float(np.linalg.norm(centre_t - centre_s))


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA of two (N, D) representations of the same N inputs (Kornblith et al. 2019)."""
    a, b = _check_pairs(x, y)
    a, b = a - a.mean(0), b - b.mean(0)
    cross = np.linalg.norm(b.T @ a) ** 2
    scale = np.linalg.norm(a.T @ a) * np.linalg.norm(b.T @ b)
    return float(cross / scale) if scale > _EPS else float("nan")


def layer_metrics(text: np.ndarray, speech: np.ndarray) -> dict[str, float]:
    """Every metric of METRICS for one layer's paired rows."""
    return {
        "pair_cosine": float(pair_cosines(text, speech).mean()),
        "norm_ratio": float(norm_ratios(text, speech).mean()),
        "modality_gap": modality_gap(text, speech),
        "linear_cka": linear_cka(text, speech),
    }


def item_kl(token_kl: np.ndarray, token_item: np.ndarray, n_items: int) -> np.ndarray:
    """(n_items,) mean KL over each item's aligned positions; NaN for an item without one.

    `token_kl[k]` is KL(P(.|text) || P(.|speech)) at aligned position k, `token_item[k]` the item it belongs to.
    """
    total = np.bincount(token_item, weights=token_kl, minlength=n_items)
    count = np.bincount(token_item, minlength=n_items)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan)


def metrics_frame(rows: list[tuple[int, str, dict[str, float], int]]) -> pd.DataFrame:
    """Long table (layer, view, metric, value, n) from (layer, view, layer_metrics(...), n pairs) tuples."""
    return pd.DataFrame([{"layer": layer, "view": view, "metric": name, "value": value, "n": n}
                         for layer, view, values, n in rows for name, value in values.items()])
