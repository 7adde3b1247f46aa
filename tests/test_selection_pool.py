"""A selection round's pool on Ray Data, on a local Ray with two CPUs: reading any text pool, the leak audit,
exact duplicates, embeddings on disk, balanced clusters of a pool handled shard by shard, resuming from finished
stages, and bad pools."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from salad_core.errors import InputError
from salad_core.select import assign, draws
from salad_core.select.clustering import size_bounds
from salad_core.select.pool import PoolSource, drop_duplicates, text_key
from salad_core.select.pool_stages import (
    documents_stage,
    embeddings_stage,
    pool_identity,
    read_embeddings,
    require_documents,
    shared_pool,
    unique_stage,
)
from salad_core.select.stages import Stages, read_shards, shard_rows

# one eval fact, stated in the form the audit reads ("the capital of zembla is ardis")
FACTS = {"capitals": [{"key": "capital/zembla", "subject": ["zembla"], "said": ["ardis"], "cues": ["capital"],
                       "scope": "sentence"}]}
TOPICS = ["the river runs past the old mill and the fields", "a recipe for bread needs flour water and salt",
          "the orchestra tuned their violins before the concert", "rain fell on the harbour all through the night"]


def pool_files(folder: Path) -> Path:
    """80 JSONL documents (the last 20 repeat the first 20, and the 8th states the eval fact instead: so 19 exact
    duplicates and 60 unique) and 30 plain-text paragraphs."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "a.jsonl", "w") as f:
        for i in range(80):
            text = f"{TOPICS[i % 4]} number {i % 60}" if i != 7 else "the capital of zembla is ardis they say"
            f.write(json.dumps({"text": text}) + "\n")
    (folder / "b.txt").write_text("\n\n".join(f"{TOPICS[i % 4]} and then {i} more" for i in range(30)))
    return folder


@pytest.fixture(scope="module")
def ray_here(ray_cluster):
    ray = pytest.importorskip("ray")
    from salad_core.select.ray_runtime import start_ray

    resources = start_ray(ray_cluster)  # the session's local cluster, with two CPUs
    yield resources
    ray.shutdown()


RAY_SEEN = """
import json, os, sys
import ray
from salad_core.select.ray_runtime import start_ray
resources = start_ray(sys.argv[1] or None, cpus=1)
seen = ray.get(ray.remote(lambda: os.environ.get("SALAD_CACHE")).remote())
print(json.dumps({"cpus": resources.cpus, "worker_cache": seen}))
"""


def test_ray_joins_the_cluster_named_with_the_drivers_settings_else_starts_its_own(ray_cluster, tmp_path):
    """A round's driver joins the cluster it is given, and its workers (started with the node's environment) read
    the driver's salad settings; without an address it starts Ray of its own, though `ray start` left one here."""
    def seen(address: str) -> dict:
        env = {**os.environ, "SALAD_CACHE": str(tmp_path / "cache")}
        done = subprocess.run([sys.executable, "-c", RAY_SEEN, address], env=env, capture_output=True, text=True,
                              check=False, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        return json.loads(done.stdout.splitlines()[-1])

    assert seen(ray_cluster) == {"cpus": 2, "worker_cache": str(tmp_path / "cache")}
    assert seen("") == {"cpus": 1, "worker_cache": str(tmp_path / "cache")}


def test_a_cluster_that_cannot_be_joined_says_why_and_the_fix():
    from salad_core.select.ray_runtime import join_failure

    refused = ConnectionError("Failed to connect to Ray cluster at 10.0.0.5:6379")
    assert join_failure("10.0.0.5:6379", refused).startswith("Cannot join the Ray cluster at '10.0.0.5:6379'")
    assert "leave --ray-address out" in join_failure("10.0.0.5:6379", refused)
    try:
        raise refused from PermissionError("RPC error: InvalidAuthToken: Authentication token is missing")
    except ConnectionError as err:
        assert "RAY_AUTH_MODE=token" in join_failure("10.0.0.5:6379", err)


def test_text_key_ignores_whitespace_and_fits_int64():
    assert text_key("a  b\nc") == text_key(" a b c ")
    assert text_key("a b c") != text_key("a b d")
    assert 0 <= text_key("x") < 2**63


def test_drop_duplicates_keeps_one_row_per_key_whatever_the_order():
    rows = {"key": [3, 1, 3, 2, 1], "text": ["c", "a", "c", "b", "a"], "domain": ["z", "y", "x", "", "y"]}
    table = pa.table(rows)
    kept = drop_duplicates(table)
    assert kept["key"].to_pylist() == [1, 2, 3]
    assert kept["domain"].to_pylist() == ["y", "", "x"]  # the first domain in order, not the first read
    assert drop_duplicates(table.take([4, 3, 2, 1, 0])).to_pylist() == kept.to_pylist()


def test_a_pool_that_is_not_there_or_has_no_world_is_refused_with_the_fix(tmp_path):
    with pytest.raises(InputError, match=r"--pool .*no file matches.*Fix"):
        PoolSource.parse(str(tmp_path / "nothing-*.jsonl"))
    with pytest.raises(InputError, match=r"--pool world.*no world.*Fix: pass --pool SOURCE"):
        PoolSource.parse("world", preset="smol")


def test_uniform_draws_depend_on_key_and_seed_only():
    keys = np.arange(10_000, dtype=np.int64) * 7919
    a = assign.uniform(keys, seed=0, salt=1)
    assert np.array_equal(a[::-1], assign.uniform(keys[::-1], seed=0, salt=1))
    assert not np.array_equal(a, assign.uniform(keys, seed=1, salt=1))
    assert 0 <= a.min() and a.max() < 1 and abs(a.mean() - 0.5) < 0.02


@pytest.mark.slow
def test_pool_stages_read_audit_dedupe_embed_and_resume(tmp_path, ray_here):
    source = PoolSource.parse(str(pool_files(tmp_path / "pool")))  # a folder: its .txt files
    assert source.parts()[0]["file"].endswith("b.txt")
    source = PoolSource.parse(str(tmp_path / "pool" / "*.jsonl"))
    stages = Stages(tmp_path / "round")
    stages.run("documents", documents_stage(source, FACTS, segment_words=40))
    found = stages.run("unique", unique_stage(stages.folder("documents")))
    assert found.pop("seconds") > 0
    assert found == {"read": 80, "stating_eval_facts": 1, "duplicates": 19, "unique": 60,
                     "fact_examples": ["capital/zembla"]}
    embedded = stages.run("embeddings", embeddings_stage(stages.folder("unique"), "all-MiniLM-L6-v2", ray_here))
    unique_files = sorted(p.name for p in stages.folder("unique").glob("*.parquet"))
    # each unique shard, embedded under its own name by the actor that read it
    assert sorted(p.name for p in stages.folder("embeddings").glob("*.parquet")) == unique_files
    assert embedded["shards"] == len(unique_files) and embedded["embedded"] == 60
    keys, x = read_embeddings(stages.folder("embeddings"))
    assert len(set(keys.tolist())) == 60 and x.shape == (60, 384)
    assert np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-4)

    # a finished stage is read back, not run again; an unfinished one starts from an empty folder
    (stages.folder("unique") / "stray.parquet").write_bytes(b"half written")
    assert stages.run("unique", lambda folder: pytest.fail("ran again")).items() >= found.items()
    assert stages.finished() == ["documents", "embeddings", "unique"]


@pytest.mark.slow
def test_bad_pools_end_the_round_with_what_was_found(tmp_path, ray_here):
    folder = tmp_path / "dups"
    folder.mkdir()
    (folder / "p.jsonl").write_text("\n".join(json.dumps({"text": "the same words again"}) for _ in range(50)))
    stages = Stages(tmp_path / "round")
    stages.run("documents", documents_stage(PoolSource.parse(str(folder / "p.jsonl")), FACTS, 40))
    found = stages.run("unique", unique_stage(stages.folder("documents")))
    with pytest.raises(InputError, match=r"1 unique documents left \(of 50 read: 49 exact duplicates.*fewer than "
                                         r"the 4 clusters.*Fix"):
        require_documents(found, "p.jsonl", clusters=4)
    with pytest.raises(InputError, match=r"holds no documents.*Fix"):
        require_documents({"read": 0, "unique": 0}, "empty.jsonl", clusters=4)


def lopsided_embeddings(folder: Path, sizes: list[int], dim: int = 16, seed: int = 0) -> int:
    """Parquet shards of unit vectors around len(sizes) centres (one blob holds most of the points)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(len(sizes), dim))
    x = np.concatenate([c + 0.3 * rng.normal(size=(n, dim)) for c, n in zip(centres, sizes)]).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    keys = rng.choice(2**40, size=len(x), replace=False)
    folder.mkdir(parents=True)
    for part, rows in enumerate(np.array_split(np.arange(len(x)), 5)):
        flat = pa.array(x[rows].reshape(-1), pa.float32())
        pq.write_table(pa.table({"key": pa.array(keys[rows], pa.int64()),
                                 "text": [f"doc {k}" for k in keys[rows]], "domain": [""] * len(rows),
                                 "embedding": pa.FixedSizeListArray.from_arrays(flat, dim)}),
                       folder / f"part-{part}.parquet")
    return len(x)


@pytest.mark.slow
@pytest.mark.parametrize("method, sample", [("balanced", 1000), ("faiss", 10_000)])
def test_clusters_of_a_pool_read_shard_by_shard_honour_the_balance_bound_and_the_seed(tmp_path, ray_here, method,
                                                                                      sample):
    """A sample of a third of the pool (its prices are corrected on the whole, pass by pass), and a pool no larger
    than the sample (clustered whole)."""
    n = lopsided_embeddings(tmp_path / "embeddings", [2400, 500, 300, 100])
    k = 12
    found = Stages(tmp_path / "a").run("clusters", assign.clusters_stage(tmp_path / "embeddings", k, seed=5,
                                                                          method=method, sample_size=sample))
    lo, hi = size_bounds(n, k)
    assert found["n"] == n and sum(found["sizes"]) == n
    assert 900 <= found["sample"] <= 1100 if sample < n else found["sample"] == n
    assert lo <= min(found["sizes"]) and max(found["sizes"]) <= hi, found
    members = pq.read_table(tmp_path / "a" / "stages" / "clusters" / "members")
    assert members.num_rows == n and len(set(members["key"].to_pylist())) == n
    assert np.array_equal(np.bincount(members["cluster"].to_numpy(), minlength=k), found["sizes"])

    again = Stages(tmp_path / "b").run("clusters", assign.clusters_stage(tmp_path / "embeddings", k, seed=5,
                                                                          method=method, sample_size=sample))
    other = pq.read_table(tmp_path / "b" / "stages" / "clusters" / "members")
    by_key = lambda t: dict(zip(t["key"].to_pylist(), t["cluster"].to_pylist()))
    assert by_key(members) == by_key(other) and again["sizes"] == found["sizes"]


def members_table(n: int = 600, k: int = 3, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    keys = rng.choice(2**40, size=n, replace=False)
    return pa.table({"key": pa.array(keys, pa.int64()), "text": [f"t{k_}" for k_ in keys], "domain": [""] * n,
                     "cluster": pa.array(np.arange(n) % k, pa.int32())})


def test_the_lowest_ranked_per_cluster_do_not_depend_on_how_the_pool_is_split():
    table = members_table()
    need, exclude = {0: 5, 2: 3}, np.sort(table["key"].to_numpy()[:30])
    whole = draws.keep_lowest(draws.lowest_batch(table, need, exclude, seed=4, salt=2), need)
    parts = [draws.lowest_batch(table.slice(s, 100), need, exclude, seed=4, salt=2) for s in range(0, 600, 100)]
    assert draws.keep_lowest(pa.concat_tables(parts[::-1]), need).to_pylist() == whole.to_pylist()
    assert whole["cluster"].to_pylist() == [0] * 5 + [2] * 3
    assert not set(whole["key"].to_pylist()) & set(exclude.tolist())
    anywhere = draws.keep_lowest(draws.lowest_batch(table, {draws.WHOLE_POOL: 7}, exclude, 4, 2),
                                 {draws.WHOLE_POOL: 7})
    assert anywhere.num_rows == 7 and len(set(anywhere["cluster"].to_pylist())) > 1


def test_cluster_draws_follow_p_target_within_capacity_and_extend_their_prefix():
    p_target = np.array([0.6, 0.3, 0.1, 0.0])
    first = draws.cluster_draws(p_target, np.full(4, 2000), 1000, seed=1)
    shares = np.bincount(first, minlength=4) / len(first)
    assert abs(shares[0] - 0.6) < 0.04 and abs(shares[2] - 0.1) < 0.03 and shares[3] == 0  # sampling error
    assert np.array_equal(draws.cluster_draws(p_target, np.full(4, 2000), 500, seed=1), first[:500])
    short = draws.cluster_draws(p_target, np.array([10, 1000, 1000, 1000]), 300, seed=1)
    assert (short == 0).sum() == 10 and len(short) == 300  # a cluster that runs out leaves the draw to the others
    assert len(draws.cluster_draws(p_target, np.array([2, 2, 2, 2]), 50, seed=1)) == 6  # P_target 0: never drawn


def test_documents_come_in_draw_order_each_cluster_by_rank():
    fetched = pa.table({"key": [10, 11, 20, 21, 22], "cluster": [1, 1, 2, 2, 2], "rank": [.1, .2, .1, .3, .5]})
    ordered = draws.in_draw_order(fetched, np.array([2, 1, 2, 2, 2, 1, 1]))
    assert ordered["key"].to_pylist() == [20, 10, 21, 22, 11]


@pytest.mark.slow
def test_an_actor_pool_speaks_documents_planned_from_their_keys_into_one_clip_bank(tmp_path, ray_here):
    from salad_core.clips import ClipBank
    from salad_core.select.speech_actors import doc_id, speak_on_ray
    from salad_core.world.speech import ENCODER

    texts = ["paris is the capital of france", "a cat has four legs and a tail", "lima lies near the sea",
             "bread needs flour and water", "the river runs past the mill"]
    documents = pa.table({"key": pa.array([text_key(t) for t in texts], pa.int64()), "text": texts})
    speak = {"role": "selected", "voices": ("espeak:en-us", "espeak:en-gb"), "speed": 1.0, "seed": 0,
             "speech_words": (2, 4), "text_words": (2, 4), "encoder": ENCODER}
    docs = speak_on_ray(documents, tmp_path / "a", ray_here, batch_size=2, **speak)
    assert [d["doc_id"] for d in docs] == [doc_id("selected", k) for k in documents["key"].to_pylist()]
    assert all(d["seconds"] > 0 for d in docs)
    bank = ClipBank(tmp_path / "a", ENCODER, "test bank", "rerun")
    clip_ids = [clip for d in docs for _, clip in d["spans"] if clip]
    assert sorted(bank.records) == sorted(clip_ids)  # every clip recorded once, by the driver
    assert all(f.shape[0] > 0 for f in bank.features(clip_ids))
    # the plan comes from the key and the seed, not from the batch a document travelled in
    again = speak_on_ray(documents.take([4, 3, 2, 1, 0]), tmp_path / "b", ray_here, batch_size=3, **speak)
    assert [d["spans"] for d in again[::-1]] == [d["spans"] for d in docs]


@pytest.mark.slow
def test_a_draw_on_ray_follows_p_target_whatever_the_blocks_and_extends_its_prefix(ray_here):
    import ray.data

    from salad_core.select.assign import cluster_domains
    from salad_core.select.round_stages import drawn_in_order

    table = members_table(n=3000, k=4, seed=2)
    exclude = np.sort(table["key"].to_numpy()[:40])
    p_target = np.array([0.55, 0.3, 0.15, 0.0])
    members = ray.data.from_arrow(table).repartition(6)
    capacity = draws.free_sizes(members, exclude, 4)
    assert capacity.tolist() == [740, 740, 740, 740]  # 750 each, 10 of each excluded
    drawn = drawn_in_order(members, p_target, capacity, 600, exclude, seed=3)
    shares = np.bincount(drawn["cluster"].to_numpy(), minlength=4) / drawn.num_rows
    # within sampling error of P_target (3 standard errors of a share of 600 draws), never a P_target-0 cluster
    assert drawn.num_rows == 600 and np.all(np.abs(shares - p_target) <= 3 * np.sqrt(p_target * (1 - p_target) / 600))
    assert not set(drawn["key"].to_pylist()) & set(exclude.tolist())
    other = drawn_in_order(ray.data.from_arrow(table).repartition(2), p_target, capacity, 900, exclude, seed=3)
    assert other["key"].to_pylist()[:600] == drawn["key"].to_pylist()  # other blocks, a longer draw: same prefix
    uniform = drawn_in_order(members, None, capacity, 300, exclude, seed=3)
    assert abs(np.mean(uniform["cluster"].to_numpy() == 3) - 0.25) < 0.08  # random: the pool's own mix
    assert [r["size"] for r in cluster_domains(members)] == [750] * 4


def test_shards_are_read_one_block_per_file_with_one_schema(tmp_path, ray_here):
    pq.write_table(pa.table({"key": pa.array([1, 2, 3], pa.int64()), "domain": pa.array([None] * 3, pa.null())}),
                   tmp_path / "a.parquet")
    (tmp_path / "b").mkdir()
    pq.write_table(pa.table({"key": pa.array([4, 5], pa.int64()), "domain": ["x", "y"]}), tmp_path / "b" / "b.parquet")
    assert shard_rows(tmp_path) == 5
    blocks = list(read_shards(tmp_path).iter_batches(batch_format="pyarrow", batch_size=None))
    assert sorted(b.num_rows for b in blocks) == [2, 3]  # a file is a block: no task's memory grows with the pool
    assert all(b.schema.field("domain").type == pa.string() for b in blocks)
    rows = read_shards(tmp_path, ["key"]).take_all()
    assert sorted(r["key"] for r in rows) == [1, 2, 3, 4, 5] and set(rows[0]) == {"key"}
    with pytest.raises(FileNotFoundError, match="no parquet files"):
        read_shards(tmp_path / "nothing")


def test_rounds_share_a_pools_stages_only_when_they_read_it_alike(tmp_path, monkeypatch):
    monkeypatch.setenv("SALAD_DATA", str(tmp_path / "data"))
    source = PoolSource.parse(str(pool_files(tmp_path / "pool") / "*.jsonl"))
    pooled = shared_pool(pool_identity(source, FACTS, 160, "all-MiniLM-L6-v2"))
    assert pooled == shared_pool(pool_identity(source, FACTS, 160, "all-MiniLM-L6-v2"))
    assert pooled.parent == tmp_path / "data" / "pools" and (pooled / "pool.json").exists()
    read_otherwise = [pool_identity(source, FACTS, 80, "all-MiniLM-L6-v2"),
                      pool_identity(source, FACTS, 160, "static:all-MiniLM-L6-v2"),
                      pool_identity(source, {}, 160, "all-MiniLM-L6-v2"),
                      pool_identity(PoolSource.parse(source.spec, "body"), FACTS, 160, "all-MiniLM-L6-v2")]
    assert len({shared_pool(i) for i in read_otherwise} - {pooled}) == 4
    with open(tmp_path / "pool" / "a.jsonl", "a") as f:  # an edited file makes another pool
        f.write(json.dumps({"text": "one more document"}) + "\n")
    assert shared_pool(pool_identity(source, FACTS, 160, "all-MiniLM-L6-v2")) != pooled
