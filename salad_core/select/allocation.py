"""Where a synthesis budget goes: the target distribution over clusters and the seeded draw of texts.

    P_target(c) ∝ P_web(c) · M(c)^γ     over the clusters that passed the intelligibility filter

γ = 0 keeps the corpus's own mix (the uniform baseline); γ = 5 is the paper's active selection. `strategy="random"`
ignores clusters altogether and draws texts uniformly from the whole corpus (the naive baseline).
"""

from __future__ import annotations

from collections.abc import Iterator

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


def draw_texts(labels: np.ndarray, p_target: np.ndarray | None, available: np.ndarray, seed: int) -> Iterator[int]:
    """Corpus indices in the order they are selected, until the available texts run out.

    With `p_target`, each draw picks a cluster from P_target (renormalised over clusters that still have texts),
    then a text uniformly inside it, without replacement; with None, texts come uniformly from the whole corpus.
    `available` marks the texts that may be drawn (probe texts and earlier rounds' selections are not).
    """
    rng = np.random.default_rng([seed, 11])
    free = np.flatnonzero(available)
    if p_target is None:
        yield from (int(i) for i in rng.permutation(free))
        return
    members = {c: list(rng.permutation(free[labels[free] == c])) for c in np.flatnonzero(p_target > 0)}
    weights = np.array([p_target[c] for c in members], dtype=float)
    clusters = list(members)
    while weights.sum() > 0:
        k = rng.choice(len(clusters), p=weights / weights.sum())
        yield int(members[clusters[k]].pop())
        if not members[clusters[k]]:
            weights[k] = 0.0
