"""`python -m salad_core.explore --model REF --items SPEC`: compute (or find) one representation cache entry.

The explorer page starts this as a background job (salad_core.jobs), so the model never loads inside a page run.
REF is a model folder or `eval:<model id>` (salad_core.explore.sources.store_models lists them); SPEC an item set
such as `world:nano/test@50`. With `--json`, stdout carries exactly one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys

import salad_core.world  # noqa: F401  (registers the worlds' LLM names: models of a world read its LM)
from salad_core.eval.vocabulary import K_SHOT
from salad_core.explore.representations import ensure_representations
from salad_core.explore.sources import find_model, load_item_set
from salad_core.store import Store


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m salad_core.explore", description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a model folder, or eval:<model id>")
    parser.add_argument("--items", required=True, help="world:<preset>/<split>@<limit> or run:<eval run id>@<limit>")
    parser.add_argument("--k-shot", type=int, default=K_SHOT, help="text examples before each question when scoring")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--db", default=None, help="results store (default: $SALAD_STORE or data/salad.duckdb)")
    parser.add_argument("--force", action="store_true", help="recompute even when the entry exists")
    parser.add_argument("--json", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    store = Store(args.db)
    ref = find_model(store, args.model)
    entry = ensure_representations(ref, load_item_set(args.items, store), k_shot=args.k_shot, seed=args.seed,
                                   force=args.force)
    summary = {"folder": str(entry.folder), **{k: entry.meta[k] for k in ("n_items", "n_layers", "compute_s")}}
    print(json.dumps(summary) if args.json else f"representations in {entry.folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
