"""The same documents through both paths: the mini world's own batches against its speech exported as a user's
corpus and streamed (`salad train --speech`), each over seeds, scored on the same dev items. Every number is read
from the store's runs.

    salad world export --corpus mini --out data/export-mini --speech-dataset
    for seed in 0 1 2; do
      salad train --preset mini --llm world:mini/lm-v5-bpe --seed $seed --final-split dev --tag paths-world \
          --db data/paths.duckdb
      salad train --preset mini --llm world:mini/lm-v5-bpe --seed $seed --final-split dev --tag paths-stream \
          --speech hf:data/export-mini/speech --speech-span-words 1,1 --text-span-words 1,1 --word-timings none \
          --db data/paths.duckdb
    done
    python benchmarks/speech_paths.py --db data/paths.duckdb

Each exported utterance is one span of the world's documents (2-11 words, heard or read by turns), and has no word
timings (`--word-timings none`), so it is one unit to the planner: spans of one word at least (`1,1`) make each span
one utterance, as in the world. (With `2,6` a text span could take two short utterances: 56 % of the words were heard
instead of the world's 60 %.)

Per path: dev speech accuracy (and text accuracy) with a 95 % interval over seeds and items, the per-seed values, and
the streamed path minus the world's, per domain and pooled; and the seconds per step of each path (the median step of
each run, from the store's wall time at each step).
"""

from __future__ import annotations

import argparse

import numpy as np

from salad_core import compare
from salad_core.store import Store

ARMS = {"world": "paths-world", "stream": "paths-stream"}


def arm_runs(store: Store) -> dict[str, list[str]]:
    """Path -> its finished runs, in seed order."""
    runs = store.runs("train")
    out = {}
    for arm, tag in ARMS.items():
        mine = sorted((c["seed"], r) for r, c, status in zip(runs["run_id"], runs["config"], runs["status"])
                      if status == "done" and isinstance(c, dict) and c.get("tag") == tag)
        out[arm] = [r for _, r in mine]
    return out


def fmt(est) -> str:
    return f"{est.value:.3f} [{est.ci_low:.3f}, {est.ci_high:.3f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="data/paths.duckdb")
    args = parser.parse_args()
    store = Store(args.db)
    arms = arm_runs(store)
    if not all(arms.values()):
        raise SystemExit(f"Both paths need finished runs; found {arms}.")
    seeds = min(len(r) for r in arms.values())
    arms = {a: r[:seeds] for a, r in arms.items()}
    print(f"{seeds} seeds per path: " + "; ".join(f"{a}: {', '.join(r)}" for a, r in arms.items()))
    for lane in ("speech", "text"):
        correct = {a: [compare.item_correctness(store, r, lane) for r in runs] for a, runs in arms.items()}
        domains = sorted(set(correct["world"][0]["domain"]))
        print(f"\n{lane} accuracy on dev (95 % interval over seeds and items; per seed in brackets)")
        for group, members in [*((d, {d}) for d in domains), ("all", None)]:
            cells = [f"{a} {fmt(compare.contrast(correct, {a: 1.0}, members))} "
                     f"({', '.join(f'{v:.3f}' for v in compare.per_seed(correct[a], members))})" for a in arms]
            diff = compare.contrast(correct, {"stream": 1.0, "world": -1.0}, members)
            print(f"  {group:<11} " + "  ".join(cells) + f"  stream - world {diff.value:+.3f} "
                  f"[{diff.ci_low:+.3f}, {diff.ci_high:+.3f}]")
    for arm, runs in arms.items():
        rates = [float(np.median(np.diff(store.train_steps(r)["wall_s"].to_numpy()))) for r in runs]
        print(f"\n{arm}: {np.mean(rates):.3f} s per step (median per run: {', '.join(f'{x:.3f}' for x in rates)})")


if __name__ == "__main__":
    main()
