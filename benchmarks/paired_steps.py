"""Two training runs' logged curves compared step by step: one column of `train_steps` (ctc, kl, loss, ...) averaged
over bins of steps for run A and run B, on the steps both logged, with A - B. Every number is read from the store.

    python benchmarks/paired_steps.py --a RUN_A --b RUN_B [--column ctc] [--bin 100] [--until 800] [--per-batch]

`--per-batch` reads the column's sum over each batch (the column times the batch's text positions): the CTC loss of
runs logged before 2026-12-03, which was per text position once distillation began and per speech token before, is
comparable across that switch only as a sum (a batch of the same documents holds the same speech in both phases).

Two runs of the same preset, corpus, batch size and seed draw identical batches; the script says whether they did (the
speech heard, summed step by step, agrees), since only then is a step-by-step difference free of data noise. Steps
are not independent draws, so no interval is given: read the trend over bins.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from salad_core.store import Store


def per_batch(steps: pd.DataFrame, column: str) -> pd.DataFrame:
    """`steps` with `column` replaced by its sum over each step's batch (the logged mean times its text positions)."""
    return steps.assign(**{column: steps[column] * steps["n_text_positions"]})


def joined(a: pd.DataFrame, b: pd.DataFrame, column: str) -> pd.DataFrame:
    """Columns "a" and "b": `column` of the two `Store.train_steps` frames on the steps both logged, indexed by step."""
    both = pd.concat({"a": a.set_index("step")[column], "b": b.set_index("step")[column]}, axis=1, join="inner")
    return both.dropna()


def paired_steps(a: pd.DataFrame, b: pd.DataFrame, column: str, bin_steps: int,
                 until: int | None = None) -> pd.DataFrame:
    """Per bin of `bin_steps` steps (bins 1..bin, bin+1..2 bin, ...): the first and last step logged by both, the
    mean of `column` in A and in B over those steps, and A - B."""
    both = joined(a, b, column)
    if until is not None:
        both = both[both.index <= until]
    if both.empty:
        raise ValueError(f"the two runs share no logged step with a {column!r} value. Fix: pick runs that both logged "
                         "it (the CTC loss only with --align ctc or ctc-soft).")
    both["step"] = both.index
    table = both.groupby((both.index.to_numpy() - 1) // bin_steps).agg(
        first=("step", "min"), last=("step", "max"), a=("a", "mean"), b=("b", "mean"))
    table["a_minus_b"] = table["a"] - table["b"]
    return table.reset_index(drop=True)


def same_batches(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    """Whether the runs heard the same speech step by step (cumulative seconds equal on every shared step)."""
    both = joined(a, b, "speech_s")
    return not both.empty and bool(np.allclose(both["a"], both["b"], rtol=0, atol=1e-3))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--a", required=True, help="training run A")
    parser.add_argument("--b", required=True, help="training run B")
    parser.add_argument("--column", default="ctc", help="a train_steps column: ctc, kl, nll, loss, grad_norm, ...")
    parser.add_argument("--bin", type=int, default=100, help="steps per bin")
    parser.add_argument("--until", type=int, default=None, help="only steps up to this one")
    parser.add_argument("--per-batch", action="store_true", help="the column's sum over each batch (see above)")
    parser.add_argument("--db", default=None, help="results store (default: data/salad.duckdb)")
    args = parser.parse_args()
    store = Store(args.db) if args.db else Store()
    a, b = store.train_steps(args.a), store.train_steps(args.b)
    if args.per_batch:
        a, b = per_batch(a, args.column), per_batch(b, args.column)
    table = paired_steps(a, b, args.column, args.bin, args.until)
    what = f"{args.column} summed over each batch" if args.per_batch else args.column
    print(f"{what}, {args.a} (A) against {args.b} (B), mean per bin of steps both logged")
    print(f"same batches step by step: {'yes' if same_batches(a, b) else 'no (data order differs: noisier)'}")
    print(f"{'steps':>11} {'A':>8} {'B':>8} {'A - B':>8}")
    for row in table.itertuples():
        print(f"{row.first:>5}-{row.last:<5} {row.a:8.3f} {row.b:8.3f} {row.a_minus_b:+8.3f}")


if __name__ == "__main__":
    main()
