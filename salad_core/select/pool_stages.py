"""The first stages of a selection round on Ray Data, from a text pool to its embeddings on disk; each is a function
of a stage folder (select/stages.py), so that an interrupted round resumes from its finished stages.

    documents    read the pool (select/pool.py) → leak audit against the evaluation facts → parquet, by key bucket
    unique       each bucket read alone, exact duplicates and documents that state an eval fact dropped
    embeddings   the unique documents embedded by an actor pool (select/embed.py) → parquet shards (key, text,
                 domain, embedding)

No step holds the pool in one process: documents stream from read tasks to writers, a dedup task holds one bucket,
and the embeddings go to disk shard by shard.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from salad_core.errors import InputError
from salad_core.select.pool import PoolSource, drop_duplicates, pool_dataset
from salad_core.select.ray_runtime import Resources
from salad_core.select.stages import SHARD_ROWS, read_shards

BUCKET_BYTES = 8 * 2**20  # a dedup bucket holds about this much of the pool's files
HUB_BUCKETS = 64  # buckets of a hub pool, whose size is not known before reading


def bucket_count(source: PoolSource) -> int:
    """Dedup buckets: about BUCKET_BYTES of the pool's files each (at least 4)."""
    files = [p["file"] for p in source.parts() if p["file"]]
    if not files:
        return 4 if source.spec == "world" else HUB_BUCKETS
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
    """The `embeddings` stage: the unique documents through `EmbedBatches` actors, written as parquet shards. An
    actor takes a whole shard at a time (the embedder batches inside): handed Ray batches smaller than the blocks,
    the actor's memory grew with every shard it had read."""

    def stage(folder: Path) -> dict:
        import ray.data

        from salad_core.select.embed import EmbedBatches

        actors, gpus = resources.model_actors()
        (read_shards(unique, ["key", "text", "domain"])
         .map_batches(EmbedBatches, fn_constructor_kwargs={"name": embedder}, batch_size=None,
                      batch_format="pyarrow", compute=ray.data.ActorPoolStrategy(size=actors), num_gpus=gpus,
                      num_cpus=0 if gpus else 1)
         .write_parquet(str(folder), max_rows_per_file=SHARD_ROWS))
        return {"embedder": embedder, "actors": actors, "gpus_per_actor": gpus}

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
