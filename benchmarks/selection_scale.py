"""Stage II at web scale: a selection round's pool stages on Ray Data, on pools of millions of documents made offline,
at 1 and 2 local workers; documents per second per stage, and the peak memory of every process.

    python benchmarks/selection_scale.py --docs 200000 --docs 2000000 --workers 1 --workers 2
    python benchmarks/selection_scale.py --docs 200000 --workers 1 --embedder all-MiniLM-L6-v2   # the default model

The pool: WordNet sentences (glosses and examples, the packaged Debian wordnet-base) joined three at a time by a seeded
draw, so that every document is new text; about 1 % are exact copies of another (the dedup stage drops them).
Written once, as parquet files of 50,000 documents, under data/cache/scale-pool/<docs>/.

Each (pool, workers) runs in a fresh process with a fresh local Ray of workers + 1 CPUs (actor pools leave one CPU
to the tasks that feed them: select/ray_runtime.py), through the stages whose cost grows with the pool:

    documents    read, leak audit against the nano world's eval facts, written by dedup bucket
    unique       exact duplicates dropped, one task per bucket
    embeddings   the embedder's actor pool (static model2vec embeddings by default: MiniLM takes hours per million)
    clusters     K = 128: centroids on a 100,000-document sample, then balanced over the whole pool
    draws        8 probes per cluster, the clusters' free sizes, and a two-level draw of 2,000 documents

The probes' speech, their scoring and the selection's speech grow with K and the budget, not with the pool.
Memory: the peak resident set (RSS) of the driver, of the largest Ray worker process (ray::…) and of Ray's own
services, sampled every half second, and the same for the unique set (USS: pages no other process maps, so without
the object store's shared pages that a worker reads blocks from).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # this checkout's salad_core, not an installed one

PART_DOCS = 50_000
COPY_SHARE = 0.01
STAGES = ("documents", "unique", "embeddings", "clusters", "draws")


def make_pool(docs: int, seed: int = 0) -> Path:
    """The pool's parquet files (made on first use)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from benchmarks.embedders import wordnet_sentences
    from salad_core.paths import cache_dir

    folder = cache_dir("scale-pool") / str(docs)
    if (folder / "done").exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    sentences = np.array(wordnet_sentences(None), dtype=object)
    rng = np.random.default_rng(seed)
    for part in range(math.ceil(docs / PART_DOCS)):
        n = min(PART_DOCS, docs - part * PART_DOCS)
        texts = [" ".join(row) for row in sentences[rng.integers(0, len(sentences), size=(n, 3))]]
        for i in np.flatnonzero(rng.random(n) < COPY_SHARE):
            texts[i] = texts[rng.integers(n)]
        pq.write_table(pa.table({"text": texts}), folder / f"part-{part:04d}.parquet")
    (folder / "done").write_text(f"{len(sentences)} sentences\n")
    return folder


class MemoryWatch(threading.Thread):
    """Peak RSS (MB), every half second, of this process, of Ray's worker processes and of Ray's services."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peaks = {"driver": 0.0, "worker": 0.0, "ray services": 0.0}
        self.private = dict(self.peaks)  # the same for USS: memory no other process shares (object store pages aside)
        self.where: dict[str, str] = {}  # kind -> the process title (a worker's: the task it ran) at its peak
        self.stage = ""  # the stage running now (set by the driver)
        self.worker_by_stage: dict[str, tuple[float, str]] = {}  # stage -> the largest worker's peak RSS while it
        # ran, and that worker's title then (the task or actor it was running)
        self.done = threading.Event()

    def kind(self, process) -> str | None:
        if process.pid == os.getpid():
            return "driver"
        line = " ".join(process.info["cmdline"] or [])
        if line.startswith("ray::"):
            return "worker"
        return "ray services" if "/ray/" in line or process.info["name"] in ("raylet", "gcs_server") else None

    def run(self) -> None:
        import psutil

        while not self.done.is_set():
            for process in psutil.process_iter(["name", "cmdline", "memory_info"]):
                kind = self.kind(process) if process.info["memory_info"] else None
                if not kind:
                    continue
                rss = process.info["memory_info"].rss / 2**20
                if rss > self.peaks[kind]:
                    self.peaks[kind] = rss
                    self.where[kind] = " ".join(process.info["cmdline"] or [])[:60]
                if kind == "worker" and rss > self.worker_by_stage.get(self.stage, (0.0, ""))[0]:
                    self.worker_by_stage[self.stage] = (rss, " ".join(process.info["cmdline"] or [])[5:60])
                try:
                    self.private[kind] = max(self.private[kind], process.memory_full_info().uss / 2**20)
                except psutil.Error:  # the process ended between the two reads
                    pass
            self.done.wait(0.5)


def run_one(docs: int, workers: int, embedder: str, k: int) -> dict:
    """The pool stages on a fresh local Ray of `workers` + 1 CPUs; seconds per stage, counts and memory peaks."""
    from salad_core.paths import cache_dir
    from salad_core.select.assign import clusters_stage, read_members
    from salad_core.select.draws import free_sizes
    from salad_core.select.pool import PoolSource
    from salad_core.select.pool_stages import (
        documents_stage,
        embeddings_stage,
        unique_stage,
    )
    from salad_core.select.ray_runtime import start_ray
    from salad_core.select.round_stages import drawn_in_order
    from salad_core.select.stages import Stages
    from salad_core.world import preset_world

    pool = make_pool(docs)
    facts = preset_world("nano", lm=False, progress=False).eval_facts()
    watch = MemoryWatch()
    watch.start()
    resources = start_ray(cpus=workers + 1)
    root = cache_dir("scale-run") / f"{docs}-{workers}"
    shutil.rmtree(root, ignore_errors=True)
    stages = Stages(root)

    def run(name: str, stage) -> dict:
        watch.stage = name
        return stages.run(name, stage)

    source = PoolSource.parse(str(pool / "*.parquet"))
    run("documents", documents_stage(source, facts, segment_words=160))
    found = run("unique", unique_stage(stages.folder("documents")))
    run("embeddings", embeddings_stage(stages.folder("unique"), embedder, resources))
    clustered = run("clusters", clusters_stage(stages.folder("embeddings"), k, seed=0, method="balanced"))

    def draws(folder: Path) -> dict:
        members = read_members(stages.folder("clusters"))
        from salad_core.select.draws import PROBE_SALT, lowest_ranked

        probes = lowest_ranked(members, {c: 8 for c in range(k)}, np.zeros(0, np.int64), 0, PROBE_SALT)
        exclude = np.sort(probes["key"].to_numpy())
        capacity = free_sizes(members, exclude, k)
        p_target = np.random.default_rng(0).dirichlet(np.ones(k))
        drawn = drawn_in_order(members, p_target, capacity, 2000, exclude, seed=0)
        return {"probes": probes.num_rows, "drawn": drawn.num_rows}

    drawn = run("draws", draws)
    watch.done.set()
    watch.join()
    seconds = {name: stages.record(name)["seconds"] for name in STAGES}
    shutil.rmtree(root, ignore_errors=True)
    return {"docs": docs, "workers": workers, "embedder": embedder, "read": found["read"], "unique": found["unique"],
            "duplicates": found["duplicates"], "sizes": [min(clustered["sizes"]), max(clustered["sizes"])],
            "size_bounds": clustered["size_bounds"], "balance_passes": clustered["balance_passes"],
            "probes": drawn["probes"], "drawn": drawn["drawn"], "seconds": seconds,
            "peak_rss_mb": {kind: round(mb) for kind, mb in watch.peaks.items()},
            "peak_uss_mb": {kind: round(mb) for kind, mb in watch.private.items()}, "peak_where": watch.where,
            "worker_rss_mb_by_stage": {stage: round(mb) for stage, (mb, _) in watch.worker_by_stage.items()},
            "worker_by_stage": {stage: title.strip() for stage, (_, title) in watch.worker_by_stage.items()}}


def report(results: list[dict]) -> None:
    print("| pool | workers | " + " | ".join(f"{s} docs/s (s)" for s in STAGES) + " | total s | peak RSS MB: driver / "
          "largest worker / Ray services | peak USS MB: the same |")
    print("|---|---|" + "---|" * (len(STAGES) + 3))
    for r in results:
        cells = [f"{r['read'] / r['seconds'][s]:,.0f} ({r['seconds'][s]:.0f})" for s in STAGES]
        peaks, private = r["peak_rss_mb"], r["peak_uss_mb"]
        print(f"| {r['docs']:,} | {r['workers']} | " + " | ".join(cells) + f" | {sum(r['seconds'].values()):.0f} | "
              f"{peaks['driver']} / {peaks['worker']} / {peaks['ray services']} | "
              f"{private['driver']} / {private['worker']} / {private['ray services']} |")
    for r in results:
        print(f"\n{r['docs']:,} documents, {r['workers']} worker(s): {r['unique']:,} unique ({r['duplicates']:,} "
              f"exact duplicates), cluster sizes {r['sizes'][0]:,}–{r['sizes'][1]:,} (allowed "
              f"{r['size_bounds'][0]:,}–{r['size_bounds'][1]:,}, {r['balance_passes']} balance passes), "
              f"{r['probes']} probes, {r['drawn']} drawn; largest worker: {r['peak_where'].get('worker', '')}")
    by = {(r["docs"], r["workers"]): r for r in results}
    for docs in sorted({r["docs"] for r in results}):
        if (docs, 1) in by and (docs, 2) in by:
            ratio = {s: by[docs, 1]["seconds"][s] / by[docs, 2]["seconds"][s] for s in STAGES}
            print(f"\n{docs:,} documents, 2 workers against 1: " + ", ".join(f"{s} {x:.2f}×" for s, x in ratio.items()))
    sizes = sorted({r["docs"] for r in results})
    for workers in sorted({r["workers"] for r in results}):
        if (sizes[0], workers) in by and (sizes[-1], workers) in by and len(sizes) > 1:
            for measure in ("rss", "uss"):
                small, large = (by[n, workers][f"peak_{measure}_mb"] for n in (sizes[0], sizes[-1]))
                print(f"\npeak {measure.upper()} from {sizes[0]:,} to {sizes[-1]:,} documents, {workers} worker(s): "
                      + ", ".join(f"{kind} {large[kind] / max(small[kind], 1):.2f}×" for kind in small))
            small, large = (by[n, workers]["worker_rss_mb_by_stage"] for n in (sizes[0], sizes[-1]))
            print(f"largest worker's peak RSS MB during each stage, {workers} worker(s): " + ", ".join(
                f"{stage} {small.get(stage, 0)} → {large.get(stage, 0)}" for stage in STAGES))
            print("  that worker, at the larger pool: " + "; ".join(
                f"{stage}: {by[sizes[-1], workers]['worker_by_stage'].get(stage, '')}" for stage in STAGES))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, action="append", help="pool sizes (default 200000 and 2000000)")
    parser.add_argument("--workers", type=int, action="append", help="local workers (default 1 and 2)")
    parser.add_argument("--embedder", default="static:all-MiniLM-L6-v2")
    parser.add_argument("--k", type=int, default=128)
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # a single (pool, workers), as JSON
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.docs[0], args.workers[0], args.embedder, args.k)))
        return
    results = []
    for docs in sorted(args.docs or [200_000, 2_000_000]):
        make_pool(docs)
        for workers in sorted(args.workers or [1, 2]):
            out = subprocess.run([sys.executable, __file__, "--one", "--docs", str(docs), "--workers", str(workers),
                                  "--embedder", args.embedder, "--k", str(args.k)],
                                 capture_output=True, text=True, check=False)
            if out.returncode:
                raise SystemExit(f"{docs:,} documents, {workers} worker(s) failed:\n{out.stderr[-3000:]}")
            results.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"done: {docs:,} documents, {workers} worker(s): {results[-1]['seconds']}", flush=True)
    report(results)


if __name__ == "__main__":
    main()
