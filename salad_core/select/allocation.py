"""Where a synthesis budget goes: the target distribution over clusters (the draw itself: select/draws.py).

    P_target(c) ∝ P_web(c) · M(c)^γ     over the clusters that passed the intelligibility filter

γ = 0 keeps the corpus's own mix (the uniform baseline); γ = 5 is the paper's active selection. `strategy="random"`
ignores clusters altogether and draws texts uniformly from the whole pool (the naive baseline).
"""

from __future__ import annotations

import numpy as np

from salad_core.errors import InputError


def target_distribution(p_web: np.ndarray, m: np.ndarray, gamma: float, filtered: np.ndarray) -> np.ndarray:
    """P_target per cluster (zero for filtered clusters); computed in log space so M^γ cannot overflow."""
    p_web, m, filtered = np.asarray(p_web, float), np.asarray(m, float), np.asarray(filtered, bool)
    keep = ~filtered & (p_web > 0) & np.isfinite(m) & ((m > 0) | (gamma == 0))
    if not keep.any():
        raise InputError("Every cluster was filtered out (unintelligible probes or no misalignment score). "
                         "Fix: raise --cer-max, or choose another TTS voice.")
    logits = np.full(len(p_web), -np.inf)
    logits[keep] = np.log(p_web[keep]) + (gamma * np.log(m[keep]) if gamma else 0.0)
    weights = np.exp(logits - logits[keep].max())
    return weights / weights.sum()
