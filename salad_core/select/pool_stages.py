"""The first stages of a selection round on Ray Data, from a text pool to its embeddings on disk; each is a function
of a stage folder (select/stages.py), so that an interrupted round resumes from its finished stages.

    documents    read the pool (select/pool.py) → leak audit against the evaluation facts → parquet, by key bucket
    unique       each bucket read alone, exact duplicates and documents that state an eval fact dropped
    embeddings   each shard of unique documents embedded by an actor of a pool (select/embed.py), which writes its
                 embeddings shard (key, text, domain, embedding)

No step holds the pool in one process: documents stream from read tasks to writers, a dedup task holds one bucket,
and the embeddings go to disk shard by shard.

These stages, and the clusters made from them, do not depend on the scoring model, so rounds share them: they live
in `data/pools/<digest>/`, named by what they depend on (`pool_identity`), and a round over a pool that an earlier
round read the same way (the same documents, segmenting, eval facts and embedder) starts at its probes. One round
at a time computes a pool's stages (`pool_lock`); another round over the same pool waits, then reads them.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from salad_core.errors import InputError
from salad_core.paths import data_dir
from salad_core.progress import NoProgress, Progress
from salad_core.select.config import SelectConfig
from salad_core.select.pool import WORLD, PoolSource, drop_duplicates, pool_dataset
from salad_core.select.ray_runtime import Resources
from salad_core.select.stages import SHARD_ROWS, Stages, shard_files

BUCKET_BYTES = 8 * 2**20  # a dedup bucket holds about this much of the pool's files
HUB_BUCKETS = 64  # buckets of a hub pool, whose size is not known before reading


def pool_identity(source: PoolSource, facts: dict[str, list[dict]], segment_words: int, embedder: str,
                  world_name: str | None = None) -> dict:
    """What a pool's stages depend on. A local pool's files are listed with their size and modification time, so
    that an edited file makes a new pool; the world's pool is named by the world's build (`world_name`, the name of
    its folder, which carries the build's digest)."""
    if source.spec == WORLD:
        files = [world_name]
    elif source.spec.startswith("hf:"):
        files = []  # the hub dataset as named: a revision pinned in the name pins the pool
    else:
        files = [[p["file"], os.stat(p["file"]).st_size, os.stat(p["file"]).st_mtime_ns] for p in source.parts()]
    facts_digest = hashlib.sha256(json.dumps(facts, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return {"pool": source.spec, "column": source.column, "files": files, "segment_words": segment_words,
            "embedder": embedder, "eval_facts": facts_digest}


def shared_pool(identity: dict) -> Path:
    """The folder of the stages of the pool with this identity, `data/pools/<digest>/` (with `pool.json`)."""
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    folder = data_dir() / "pools" / digest
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "pool.json").exists():
        (folder / "pool.json").write_text(json.dumps(identity, indent=1))
    return folder


@contextmanager
def pool_lock(folder: Path) -> Iterator[None]:
    """Held while a round computes (or reads) a shared pool's stages: another round over the pool waits here."""
    with open(folder / "lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def default_clusters(n_texts: int) -> int:
    """K = 128 on real corpora (the paper); on a small one, about 140 texts a cluster (24 on the mini world's)."""
    return max(4, min(128, n_texts, n_texts // 140))


@dataclass
class PoolRun:
    """A round's pool: its shared stages (documents → unique → embeddings → one clustering) and what they found."""
    stages: Stages
    found: dict  # the unique stage's counts
    clustering: str  # the clusters stage's name: a pool has one clustering per (K, method, sample, seed)
    clustered: dict  # its record
    reused: list[str]  # the stages that were finished before this round came

    @property
    def folder(self) -> Path:
        return self.stages.root.parent

    @property
    def k(self) -> int:
        return self.clustered["k"]

    @property
    def embeddings(self) -> Path:
        return self.stages.folder("embeddings")

    @property
    def clusters(self) -> Path:
        return self.stages.folder(self.clustering)

    def timings(self) -> dict[str, float]:
        """Seconds of the stages this round ran (`clusters_s` for its clustering)."""
        ran = [n for n in ("documents", "unique", "embeddings", self.clustering) if n not in self.reused]
        return {f"{n.split('-')[0]}_s": self.stages.record(n)["seconds"] for n in ran}


def run_pool_stages(config: SelectConfig, source: PoolSource, facts: dict[str, list[dict]], world_name: str,
                    resources: Resources, bar: Progress | NoProgress) -> PoolRun:
    """The pool's stages for a round with this config, computed now or read from an earlier round's."""
    from salad_core.select.assign import clusters_stage

    shared = shared_pool(pool_identity(source, facts, config.segment_words, config.embedder, world_name))
    stages = Stages(shared)
    with pool_lock(shared):
        before = set(stages.finished())
        bar.set_stage(f"reading and auditing the pool ({source.spec})", None)
        stages.run("documents", documents_stage(source, facts, config.segment_words))
        bar.set_stage("dropping duplicates", None)
        found = stages.run("unique", unique_stage(stages.folder("documents")))
        k = config.clusters or default_clusters(found["unique"])
        require_documents(found, source.spec, k)
        bar.set_stage(f"embedding {found['unique']:,} documents ({config.embedder})", None)
        stages.run("embeddings", embeddings_stage(stages.folder("unique"), config.embedder, resources))
        bar.set_stage(f"clustering into {k} balanced clusters", None)
        clustering = f"clusters-k{k}-{config.kmeans}-sample{config.cluster_sample}-seed{config.seed}"
        clustered = stages.run(clustering, clusters_stage(stages.folder("embeddings"), k, config.seed, config.kmeans,
                                                          config.cluster_sample))
    reused = [n for n in ("documents", "unique", "embeddings", clustering) if n in before]
    return PoolRun(stages, found, clustering, clustered, reused)


def bucket_count(source: PoolSource) -> int:
    """Dedup buckets: about BUCKET_BYTES of the pool's files each (at least 4)."""
    files = [p["file"] for p in source.parts() if p["file"]]
    if not files:
        return 4 if source.spec == WORLD else HUB_BUCKETS
    return max(4, min(4096, int(sum(Path(f).stat().st_size for f in files) // BUCKET_BYTES) + 1))


def audit_batch(table: pa.Table, auditor, buckets: int) -> pa.Table:
    """Ray map_batches function: the batch with `stated` (the first eval fact a document states, "" if none) and
    `bucket` (its key's dedup bucket)."""
    from salad_core.broad.audit import text_form

    stated = [min(auditor.stated(text_form(t)), default="") for t in table["text"].to_pylist()]
    bucket = pa.array(table["key"].to_numpy() % buckets, pa.int32())
    return table.append_column("stated", pa.array(stated, pa.string())).append_column("bucket", bucket)


def documents_stage(source: PoolSource, facts: dict[str, list[dict]], segment_words: int):
    """The `documents` stage: the pool read, audited and written by dedup bucket."""
    from salad_core.world.audit import Auditor

    auditor = Auditor(f for task_facts in facts.values() for f in task_facts)  # sent to each task with the function

    def stage(folder: Path) -> dict:
        buckets = bucket_count(source)
        (pool_dataset(source, segment_words)
         .map_batches(audit_batch, batch_format="pyarrow", fn_kwargs={"auditor": auditor, "buckets": buckets})
         .write_parquet(str(folder), partition_cols=["bucket"]))
        return {"buckets": buckets, "pool": source.spec, "segment_words": segment_words}

    return stage


def unique_bucket(folder: Path) -> tuple[pa.Table, dict]:
    """One dedup bucket's documents (key, text, domain) less exact duplicates and those stating an eval fact, and
    the counts."""
    import pyarrow.parquet as pq

    table = pa.concat_tables([pq.read_table(f, columns=["key", "text", "domain", "stated"])
                              for f in sorted(folder.glob("*.parquet"))])
    stating = table.filter(pc.not_equal(table["stated"], ""))
    kept = drop_duplicates(table.filter(pc.equal(table["stated"], "")).select(["key", "text", "domain"]))
    return kept, {"read": table.num_rows, "stating": stating.num_rows, "unique": kept.num_rows,
                  "examples": sorted(set(stating["stated"].to_pylist()))[:5]}


def unique_stage(documents: Path):
    """The `unique` stage: one task per bucket; writes the unique documents (key, text, domain) and returns the
    counts (read, stating an eval fact, duplicates, unique)."""

    def stage(folder: Path) -> dict:
        import pyarrow.parquet as pq
        import ray

        @ray.remote(num_cpus=1)
        def one(bucket: Path) -> dict:
            kept, counts = unique_bucket(bucket)
            for start in range(0, kept.num_rows, SHARD_ROWS):
                name = f"part-{bucket.name.split('=', 1)[1]}-{start // SHARD_ROWS:04d}.parquet"
                pq.write_table(kept.slice(start, SHARD_ROWS), folder / name)
            return counts

        counts = ray.get([one.remote(b) for b in sorted(documents.glob("bucket=*"))])
        read, stating, unique = (sum(c[k] for c in counts) for k in ("read", "stating", "unique"))
        return {"read": read, "stating_eval_facts": stating, "duplicates": read - stating - unique, "unique": unique,
                "fact_examples": sorted({e for c in counts for e in c["examples"]})[:5]}

    return stage


def embeddings_stage(unique: Path, embedder: str, resources: Resources):
    """The `embeddings` stage: each shard of unique documents embedded by an `EmbedShards` actor, which reads it and
    writes its embeddings shard itself (the embedder batches inside)."""

    def stage(folder: Path) -> dict:
        import ray.data

        from salad_core.select.embed import EmbedShards

        files = shard_files(unique)
        actors, gpus = resources.model_actors()
        written = (ray.data.from_items([{"file": f} for f in files], override_num_blocks=len(files))
                   .map_batches(EmbedShards, fn_constructor_kwargs={"name": embedder, "out": str(folder)},
                                batch_size=1, batch_format="pyarrow", compute=ray.data.ActorPoolStrategy(size=actors),
                                num_gpus=gpus, num_cpus=0 if gpus else 1)
                   .take_all())
        return {"embedder": embedder, "actors": actors, "gpus_per_actor": gpus, "shards": len(written),
                "embedded": sum(row["rows"] for row in written)}

    return stage


def require_documents(found: dict, spec: str, clusters: int) -> None:
    """Bad pools end the round here, with what was found and the fix."""
    if found["read"] == 0:
        raise InputError(f"--pool {spec!r} holds no documents (no non-blank text in its text column). Fix: name a "
                         "pool with texts, or its column with --pool-column.")
    if found["unique"] < clusters:
        raise InputError(f"--pool {spec!r}: {found['unique']} unique documents left (of {found['read']} read: "
                         f"{found['duplicates']} exact duplicates, {found['stating_eval_facts']} stating an eval "
                         f"fact), fewer than the {clusters} clusters asked for. Fix: a larger pool, or fewer "
                         "--clusters.")


def read_embeddings(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """(keys, embeddings) of an embeddings stage, in this process: for a sample or a small pool only."""
    import pyarrow.parquet as pq

    from salad_core.select.assign import vectors

    table = pq.read_table(str(folder))
    return table["key"].to_numpy(), vectors(table)
