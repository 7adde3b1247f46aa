"""Seeded draws from a pool held in shards (SALAD Stage II): each cluster's probes, and the texts selected for speech.

Every document has a seeded rank (`assign.uniform` of its key), so the same seed draws the same documents whatever
the order in which tasks read the shards, and a draw of n documents is the first n of a draw of more.

    probes      per cluster, its `per_cluster` lowest-ranked documents
    selection   two-level sampling: a cluster from P_target, renormalised over the clusters with documents left,
                then that cluster's next document by rank; the `random` strategy takes documents by rank from the
                whole pool instead

Each pass keeps, per cluster, only as many of a batch's documents as the cluster needs, so the driver receives the
draw and no more.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from salad_core.select.assign import uniform

PROBE_SALT, DRAW_SALT = 2, 3
WHOLE_POOL = -1  # the `need` key of a draw from the whole pool, clusters ignored


def lowest_batch(table: pa.Table, need: dict[int, int], exclude: np.ndarray, seed: int, salt: int) -> pa.Table:
    """Ray map_batches function: per cluster c in `need`, the batch's need[c] lowest-ranked documents (over the
    whole batch for WHOLE_POOL), leaving out the keys in `exclude` (sorted); with their `rank`."""
    keys = table["key"].to_numpy()
    rank = uniform(keys, seed, salt)
    free = ~np.isin(keys, exclude) if len(exclude) else np.ones(len(keys), dtype=bool)
    clusters = table["cluster"].to_numpy() if set(need) != {WHOLE_POOL} else None
    chosen = []
    for c, n in need.items():
        rows = np.flatnonzero(free & ((clusters == c) if c != WHOLE_POOL else True))
        chosen.append(rows[np.argsort(rank[rows], kind="stable")[:n]])
    rows = np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=int)
    return table.take(pa.array(rows, pa.int64())).append_column("rank", pa.array(rank[rows]))


def free_batch(table: pa.Table, exclude: np.ndarray, k: int) -> pa.Table:
    """Ray map_batches function: the batch's documents per cluster, those in `exclude` (sorted) left out."""
    keys = table["key"].to_numpy()
    free = ~np.isin(keys, exclude) if len(exclude) else np.ones(len(keys), dtype=bool)
    return pa.table({"counts": [np.bincount(table["cluster"].to_numpy()[free], minlength=k).tolist()]})


def free_sizes(members, exclude: np.ndarray, k: int) -> np.ndarray:
    """Documents per cluster that a draw may still take: the clusters' sizes less the `exclude`d keys."""
    rows = members.map_batches(free_batch, batch_format="pyarrow",
                               fn_kwargs={"exclude": np.sort(exclude), "k": k}).take_all()
    return np.sum([np.asarray(r["counts"]) for r in rows], axis=0) if rows else np.zeros(k, dtype=int)


def lowest_ranked(members, need: dict[int, int], exclude: np.ndarray, seed: int, salt: int) -> pa.Table:
    """The draw over every shard of `members` (a Ray dataset of key, text, domain, cluster; cluster may be absent
    for a WHOLE_POOL draw): per cluster, its need[c] lowest-ranked documents, sorted by cluster and rank."""
    parts = members.map_batches(lowest_batch, batch_format="pyarrow",
                                fn_kwargs={"need": need, "exclude": np.sort(exclude), "seed": seed, "salt": salt})
    best = None  # merged part by part, so that the driver holds at most two draws' worth, however large the pool
    for part in parts.iter_batches(batch_format="pyarrow", batch_size=None):
        best = keep_lowest(part if best is None else pa.concat_tables([best, part]), need)
    return best


def keep_lowest(table: pa.Table, need: dict[int, int]) -> pa.Table:
    """Of candidates gathered from many batches, the need[c] lowest-ranked of each cluster (ties by key)."""
    if table.num_rows == 0:
        return table
    clusters = table["cluster"].to_numpy() if WHOLE_POOL not in need else np.full(table.num_rows, WHOLE_POOL)
    order = np.lexsort((table["key"].to_numpy(), table["rank"].to_numpy(), clusters))
    kept, seen = [], {}
    for i in order:
        c = int(clusters[i])
        if seen.get(c, 0) < need.get(c, 0):
            kept.append(i)
            seen[c] = seen.get(c, 0) + 1
    return table.take(pa.array(kept, pa.int64()))


def cluster_draws(p_target: np.ndarray, capacity: np.ndarray, n: int, seed: int) -> np.ndarray:
    """The first `n` clusters drawn (fewer if the clusters run out): each from P_target renormalised over the
    clusters that still have documents (`capacity` per cluster)."""
    rng = np.random.default_rng([seed, 11])
    weights = np.where(np.asarray(capacity) > 0, np.asarray(p_target, dtype=float), 0.0)
    left = np.asarray(capacity, dtype=int).copy()
    draws = []
    while len(draws) < n and weights.sum() > 0:
        c = int(rng.choice(len(weights), p=weights / weights.sum()))
        draws.append(c)
        left[c] -= 1
        if left[c] == 0:
            weights[c] = 0.0
    return np.array(draws, dtype=int)


def in_draw_order(fetched: pa.Table, draws: np.ndarray) -> pa.Table:
    """The fetched documents in the order of the cluster draws: the i-th draw of cluster c takes c's i-th document
    by rank (a cluster with fewer documents than draws gives what it has)."""
    clusters = fetched["cluster"].to_numpy()
    by_cluster = {c: list(np.flatnonzero(clusters == c)) for c in np.unique(clusters)}  # already in rank order
    taken = {c: 0 for c in by_cluster}
    rows = []
    for c in draws:
        if taken.get(c, 0) < len(by_cluster.get(c, ())):
            rows.append(by_cluster[c][taken[c]])
            taken[c] += 1
    return fetched.take(pa.array(rows, pa.int64()))
