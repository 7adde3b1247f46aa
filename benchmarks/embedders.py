"""Embedders and in-memory clustering for Stage II: embed N real sentences (WordNet 3 glosses and their examples,
Debian wordnet-base) with the sentence embedder, then balanced k-means with K = 128 in one process; prints wall
times, cluster sizes and memory. (The round's pipeline on Ray at millions of documents: selection_scale.py.)

    python benchmarks/embedders.py --n 100000            # one process, 100,000 sentences
    python benchmarks/embedders.py --n 25000 --n 100000  # memory at two sizes, side by side
    python benchmarks/embedders.py --n 20000 --compare static:all-MiniLM-L6-v2   # a second embedder beside it

Memory: the embeddings are N × 384 float32; clustering is measured with tracemalloc (numpy's allocations), so its
peak beyond the embeddings shows whether it grows with the corpus. Embedding memory is the process's peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import time
import tracemalloc

import numpy as np

from salad_core.select.clustering import balanced_kmeans, size_bounds
from salad_core.select.embed import DEFAULT_EMBEDDER, Embedder, embed_texts
from salad_core.tasks.definitions import POS_FILES, load_synsets
from salad_core.tasks.sources import wordnet_dir


def wordnet_sentences(limit: int | None) -> list[str]:
    """Definitions and quoted examples of every WordNet synset, each piece one sentence, deduplicated, in file order
    (the first `limit`; all of them for None)."""
    seen: dict[str, None] = {}
    for pos_file in POS_FILES:
        for synset in load_synsets(wordnet_dir(), pos_file).values():
            for piece in synset.gloss.split(";"):
                text = piece.strip().strip('"').strip()
                if len(text.split()) >= 3:
                    seen.setdefault(text, None)
    sentences = list(seen)
    if limit is None:
        return sentences
    if len(sentences) < limit:
        raise SystemExit(f"WordNet gives {len(sentences):,} sentences, fewer than --n {limit:,}")
    return sentences[:limit]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, action="append", help="corpus sizes (default 100000)")
    parser.add_argument("--k", type=int, default=128)
    parser.add_argument("--embedder", default=DEFAULT_EMBEDDER)
    parser.add_argument("--compare", help="a second embedder (e.g. static:all-MiniLM-L6-v2): its speed on the same "
                        "sentences, and how far its clusters agree with the first's (adjusted Rand index)")
    args = parser.parse_args()
    sizes = sorted(args.n or [100_000])
    corpus = wordnet_sentences(sizes[-1])
    embedder = Embedder(args.embedder)
    print(f"corpus: {len(corpus):,} WordNet sentences, mean {np.mean([len(s.split()) for s in corpus[:5000]]):.1f} "
          f"words; embedder {args.embedder}; K = {args.k}; peak RSS after loading {peak_rss_mb():.0f} MB")
    print("| N | embed s | sentences/s | cluster s | iterations | sizes min–max (allowed) | embeddings MB | "
          "clustering peak beyond them MB | process peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n in sizes:
        start = time.perf_counter()
        vectors = embed_texts(corpus[:n], args.embedder, embedder=embedder, progress=False)
        embed_s = time.perf_counter() - start
        tracemalloc.start()
        start = time.perf_counter()
        clustering = balanced_kmeans(vectors, args.k, seed=0)
        cluster_s = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        lo, hi = size_bounds(n, args.k)
        sizes_found = clustering.sizes
        print(f"| {n:,} | {embed_s:.0f} | {n / embed_s:.0f} | {cluster_s:.1f} | {clustering.iterations} | "
              f"{sizes_found.min()}–{sizes_found.max()} ({lo}–{hi}) | {vectors.nbytes / 2**20:.0f} | "
              f"{peak / 2**20:.1f} | {peak_rss_mb():.0f} |", flush=True)
        if args.compare:
            reseeded = balanced_kmeans(vectors, args.k, seed=1).labels
            compare_embedder(args.compare, corpus[:n], args.k, embed_s, clustering.labels, reseeded)


def compare_embedder(name: str, corpus: list[str], k: int, first_s: float, first_labels: np.ndarray,
                     reseeded: np.ndarray) -> None:
    """The second embedder on the same sentences: its speed against the first's, and the agreement of the two
    clusterings (adjusted Rand index: 1 the same partition, 0 chance), beside the agreement of the first embedder's
    clusterings with two seeds (what k-means itself leaves open)."""
    from sklearn.metrics import adjusted_rand_score

    embedder = Embedder(name)  # a static model is distilled on first use, before the clock starts
    start = time.perf_counter()
    vectors = embed_texts(corpus, name, embedder=embedder, progress=False)
    embed_s = time.perf_counter() - start
    labels = balanced_kmeans(vectors, k, seed=0).labels
    print(f"  {name}: {len(corpus) / embed_s:.0f} sentences/s ({first_s / embed_s:.1f} times the first embedder), "
          f"dim {vectors.shape[1]}; clusters against the first's: adjusted Rand index "
          f"{adjusted_rand_score(first_labels, labels):.3f} (the first's own clusterings, seeds 0 and 1: "
          f"{adjusted_rand_score(first_labels, reseeded):.3f})", flush=True)


if __name__ == "__main__":
    main()
