"""Balanced clusters of a pool too large for one process (SALAD Stage II, step 2, on Ray Data).

1. centroids: spherical k-means on a seeded sample of the embeddings (the project's balanced k-means, or FAISS's),
   then the prices that balance the sample's assignment (clustering.balancing_prices);
2. assignment: each document goes to argmax(similarity − price); one pass over the shards counts the sizes, and
   prices rise for over-full clusters and fall for under-full ones, pass after pass, until every size is within the
   bound (0.9–1.1 · N/K, clustering.size_bounds) or the passes run out;
3. repair: a cluster still out of bounds gives (or takes) the documents that lose least similarity by moving; each
   task hands on only its best candidates per cluster, and the moves are kept as a small table of overrides;
4. members: a last pass writes (key, text, domain, cluster) shards, what the later stages read.

A document's place in the sample (and in every later seeded draw) comes from a hash of its key and the seed, not from
the order in which tasks read it, so the same pool and seed give the same clusters.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pyarrow as pa

from salad_core.select.clustering import (
    TOLERANCE,
    balanced_kmeans,
    balanced_labels,
    balancing_prices,
    size_bounds,
)
from salad_core.select.stages import SHARD_ROWS, read_shards, shard_rows

log = logging.getLogger(__name__)
KMEANS = ("balanced", "faiss")
_MASK = (1 << 64) - 1
MEMBERS = "members"  # the clusters stage's (key, text, domain, cluster) shards, in its folder


def uniform(keys: np.ndarray, seed: int, salt: int) -> np.ndarray:
    """A number in [0, 1) per key, fixed by (key, seed, salt): a seeded draw that does not depend on read order."""
    x = keys.astype(np.uint64) ^ np.uint64((seed * 0x9E3779B97F4A7C15 + salt * 0xD1B54A32D192ED03) & _MASK)
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return (x >> np.uint64(11)).astype(np.float64) / 2.0**53


def vectors(table: pa.Table) -> np.ndarray:
    """The `embedding` column as an (n, dim) float32 array."""
    column = table["embedding"].combine_chunks()
    return column.flatten().to_numpy(zero_copy_only=False).reshape(len(column), column.type.list_size)


class Assignment:
    """Centroids, prices and overrides: the whole rule that puts a document in a cluster (small enough to send to
    every task)."""

    def __init__(self, centroids: np.ndarray, prices: np.ndarray, moved: dict[int, int] | None = None):
        self.centroids, self.prices = centroids.astype(np.float32), prices.astype(np.float32)
        moved = moved or {}
        self.moved_keys = np.array(sorted(moved), dtype=np.int64)
        self.moved_to = np.array([moved[k] for k in sorted(moved)], dtype=np.int32)

    @property
    def k(self) -> int:
        return len(self.centroids)

    def similarities(self, table: pa.Table) -> np.ndarray:
        return vectors(table) @ self.centroids.T

    def labels(self, table: pa.Table, sims: np.ndarray | None = None) -> np.ndarray:
        sims = self.similarities(table) if sims is None else sims
        labels = np.argmax(sims - self.prices, axis=1).astype(np.int32)
        if len(self.moved_keys):
            keys = table["key"].to_numpy()
            at = np.clip(np.searchsorted(self.moved_keys, keys), 0, len(self.moved_keys) - 1)
            hit = self.moved_keys[at] == keys
            labels[hit] = self.moved_to[at[hit]]
        return labels

    def with_moves(self, moves: dict[int, int]) -> Assignment:
        return Assignment(self.centroids, self.prices, {**dict(zip(self.moved_keys.tolist(),
                                                                    self.moved_to.tolist())), **moves})


# -- Ray map_batches functions ----------------------------------------------------------------------------------


def count_batch(table: pa.Table, rule: Assignment) -> pa.Table:
    return pa.table({"counts": [np.bincount(rule.labels(table), minlength=rule.k).tolist()]})


def sample_batch(table: pa.Table, rate: float, seed: int) -> pa.Table:
    return table.filter(pa.array(uniform(table["key"].to_numpy(), seed, 1) < rate))


def member_batch(table: pa.Table, rule: Assignment) -> pa.Table:
    return table.select(["key", "text", "domain"]).append_column("cluster", pa.array(rule.labels(table)))


def domains_batch(table: pa.Table) -> pa.Table:
    """Ray map_batches function: the batch's documents counted per (cluster, domain)."""
    frame = table.select(["cluster", "domain"]).group_by(["cluster", "domain"]).aggregate([([], "count_all")])
    return frame.select(["cluster", "domain", "count_all"]).rename_columns(["cluster", "domain", "size"])


def cluster_domains(members) -> list[dict]:
    """The pool's documents per cluster and domain ({cluster, domain, size} rows), counted batch by batch."""
    counts: dict[tuple[int, str], int] = {}
    for row in members.map_batches(domains_batch, batch_format="pyarrow").take_all():
        where = (int(row["cluster"]), row["domain"] or "")
        counts[where] = counts.get(where, 0) + int(row["size"])
    return [{"cluster": c, "domain": d, "size": n} for (c, d), n in sorted(counts.items())]


def candidates_batch(table: pa.Table, rule: Assignment, sizes: np.ndarray, lo: int, hi: int) -> pa.Table:
    """Per cluster out of bounds, this batch's best documents to move: out of an over-full cluster (to one of its
    three nearest clusters with room), or into an under-full one (from a cluster that can spare them)."""
    sims = rule.similarities(table)
    own = rule.labels(table, sims)
    keys = table["key"].to_numpy()
    rows = []
    room = sizes < hi
    for j in np.flatnonzero(sizes > hi):
        members = np.flatnonzero(own == j)
        toward = np.where(room, sims[members], -np.inf)
        dests = np.argsort(-toward, axis=1)[:, :3]
        loss = sims[members, j] - toward[np.arange(len(members)), dests[:, 0]]
        for i in np.argsort(loss)[: sizes[j] - hi]:
            rows.append((int(keys[members[i]]), int(j), dests[i].tolist(), float(loss[i])))
    spare = sizes[own] > lo
    for j in np.flatnonzero(sizes < lo):
        loss = np.where(spare & (own != j), sims[np.arange(len(own)), own] - sims[:, j], np.inf)
        for i in np.argsort(loss)[: 2 * (lo - sizes[j])]:
            if np.isfinite(loss[i]):
                rows.append((int(keys[i]), int(own[i]), [int(j)], float(loss[i])))
    return pa.table({"key": pa.array([r[0] for r in rows], pa.int64()), "own": pa.array([r[1] for r in rows], pa.int32()),
                     "dests": pa.array([r[2] for r in rows], pa.list_(pa.int32())),
                     "loss": pa.array([r[3] for r in rows], pa.float64())})


# -- driver side ------------------------------------------------------------------------------------------------


def read_sample(dataset, n: int, sample_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(keys, embeddings) of a seeded sample of about `sample_size` documents (all of them when the pool is
    smaller), in key order."""
    rate = min(1.0, sample_size / max(n, 1))
    parts = [(b["key"].to_numpy(), vectors(b)) for b in
             dataset.map_batches(sample_batch, batch_format="pyarrow", fn_kwargs={"rate": rate, "seed": seed})
             .iter_batches(batch_format="pyarrow", batch_size=None) if len(b)]
    keys = np.concatenate([p[0] for p in parts])
    order = np.argsort(keys, kind="stable")
    return keys[order], np.concatenate([p[1] for p in parts])[order]


def fit_centroids(x: np.ndarray, k: int, seed: int, method: str) -> tuple[np.ndarray, int]:
    """(unit-length centroids, iterations) of spherical k-means on the sample."""
    if method == "faiss":
        import faiss

        faiss.omp_set_num_threads(1)  # its parallel sums would make the centroids depend on the core count
        km = faiss.Kmeans(x.shape[1], k, niter=20, seed=seed, spherical=True, verbose=False)
        km.train(np.ascontiguousarray(x, dtype=np.float32))
        c = km.centroids / np.maximum(np.linalg.norm(km.centroids, axis=1, keepdims=True), 1e-12)
        return c.astype(np.float32), 20
    clustering = balanced_kmeans(x, k, seed=seed)
    return clustering.centroids, clustering.iterations


def sizes_of(dataset, rule: Assignment) -> np.ndarray:
    counts = dataset.map_batches(count_batch, batch_format="pyarrow", fn_kwargs={"rule": rule}).take_all()
    return np.sum([np.asarray(c["counts"]) for c in counts], axis=0)


def balance(dataset, rule: Assignment, n: int, *, tolerance: float = TOLERANCE, passes: int = 6,
            on_pass=None) -> tuple[Assignment, np.ndarray, int]:
    """The rule with prices (and, where they did not get there, moves) that keep every size within bounds; returns
    (rule, sizes, passes made)."""
    lo, hi = size_bounds(n, rule.k, tolerance)
    target, step = n / rule.k, 0.02
    made = 0
    for made in range(1, passes + 1):
        sizes = sizes_of(dataset, rule)
        if on_pass:
            on_pass(made)
        if sizes.min() >= lo and sizes.max() <= hi:
            return rule, sizes, made
        if made == passes:
            break
        rule = Assignment(rule.centroids, rule.prices + step * (sizes - target) / target)
        step *= 0.8
    for _ in range(3):  # each repair can only fill what the candidates allow: a second look finishes the rest
        candidates = dataset.map_batches(candidates_batch, batch_format="pyarrow",
                                         fn_kwargs={"rule": rule, "sizes": sizes, "lo": lo, "hi": hi}).take_all()
        rule = rule.with_moves(_moves(candidates, sizes.copy(), lo, hi))
        sizes = sizes_of(dataset, rule)
        if sizes.min() >= lo and sizes.max() <= hi:
            break
    else:
        log.warning("cluster sizes %d-%d stay outside the balance bound %d-%d after the repair", sizes.min(),
                    sizes.max(), lo, hi)
    return rule, sizes, made


def _moves(candidates: list[dict], sizes: np.ndarray, lo: int, hi: int) -> dict[int, int]:
    """Greedy, cheapest first: a move is made while its source is out of bounds (or can spare) and its
    destination has room (or needs it)."""
    moves: dict[int, int] = {}
    for row in sorted(candidates, key=lambda r: (r["loss"], r["key"])):
        own, key = row["own"], row["key"]
        if key in moves:
            continue
        for dest in row["dests"]:
            leaving = sizes[own] > hi or (sizes[dest] < lo and sizes[own] > lo)
            if leaving and sizes[dest] < hi:
                moves[key] = int(dest)
                sizes[own] -= 1
                sizes[dest] += 1
                break
    return moves


def cluster_whole(x: np.ndarray, k: int, seed: int, method: str, tolerance: float) -> tuple[np.ndarray, np.ndarray, int]:
    """(centroids, balanced labels, iterations) of points held in memory: a pool no larger than the sample."""
    if method == "balanced":
        clustering = balanced_kmeans(x, k, seed=seed, tolerance=tolerance)
        return clustering.centroids, clustering.labels, clustering.iterations
    centroids, iterations = fit_centroids(x, k, seed, method)
    return centroids, balanced_labels(x, centroids, tolerance=tolerance), iterations


def read_members(clusters: Path):
    """The pool's documents with their cluster, as the clusters stage in folder `clusters` wrote them (a Ray
    dataset)."""
    return read_shards(clusters / MEMBERS)


def save_rule(folder: Path, rule: Assignment) -> None:
    np.savez(folder / "assignment.npz", centroids=rule.centroids, prices=rule.prices, moved_keys=rule.moved_keys,
             moved_to=rule.moved_to)


def load_rule(folder: Path) -> Assignment:
    saved = np.load(folder / "assignment.npz")
    return Assignment(saved["centroids"], saved["prices"],
                      dict(zip(saved["moved_keys"].tolist(), saved["moved_to"].tolist())))


def clusters_stage(embeddings: Path, k: int, seed: int, method: str = "balanced", sample_size: int = 100_000,
                   tolerance: float = TOLERANCE):
    """The `clusters` stage: centroids on a sample, the balanced rule for the whole pool, and the members shards."""

    def stage(folder: Path) -> dict:
        dataset = read_shards(embeddings)
        n = shard_rows(embeddings)
        keys, x = read_sample(dataset.select_columns(["key", "embedding"]), n, sample_size, seed)
        if len(keys) == n:  # the whole pool is the sample: clustered here, its labels carried as moves
            centroids, labels, iterations = cluster_whole(x, k, seed, method, tolerance)
            rule = Assignment(centroids, np.zeros(k, np.float32), dict(zip(keys.tolist(), labels.tolist())))
            sizes, passes = np.bincount(labels, minlength=k), 0
        else:
            centroids, iterations = fit_centroids(x, k, seed, method)
            rule = Assignment(centroids, balancing_prices(x, centroids, tolerance=tolerance))
            rule, sizes, passes = balance(dataset, rule, n, tolerance=tolerance)
        save_rule(folder, rule)
        dataset.map_batches(member_batch, batch_format="pyarrow", fn_kwargs={"rule": rule}) \
            .write_parquet(str(folder / MEMBERS), max_rows_per_file=SHARD_ROWS)
        lo, hi = size_bounds(n, k, tolerance)
        return {"n": n, "k": k, "method": method, "sample": len(keys), "kmeans_iterations": iterations,
                "balance_passes": passes, "moved": len(rule.moved_keys), "sizes": sizes.tolist(),
                "size_bounds": [lo, hi], "seed": seed}

    return stage
