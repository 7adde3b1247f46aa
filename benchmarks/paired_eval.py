"""Two evaluations of the same items compared item by item: one lane's accuracy in run A minus run B, per task and
pooled, with a 95 % bootstrap interval over items (the same items resampled for both runs), and run A's text
forgetting (its `text` lane against the original LLM's `base_text`) where A scored both. Every number is read from
the results store.

    python benchmarks/paired_eval.py --a EVAL_A --b EVAL_B [--lane speech] [--db data/salad.duckdb]

Used to choose a recipe on dev: `salad eval --model data/runs/RUN/final --split dev ...` for each arm, in one store.
"""

from __future__ import annotations

import argparse

import pandas as pd

from salad_core.compare import eval_correctness
from salad_core.eval.metrics import Estimate, bootstrap_indices, mean_with_ci
from salad_core.store import Store

ALL_TASKS_LABEL = "all tasks"  # the pooled row, as the table prints it


def correctness(store: Store, run_id: str, lane: str) -> pd.Series:
    """0/1 per item of one lane of an evaluation, indexed by (task, item_id)."""
    frame = eval_correctness(store, run_id, lane)
    return frame.set_index("task", append=True).reorder_levels(["task", "item_id"])["correct"]


def paired_by_task(a: pd.Series, b: pd.Series, seed: int = 0) -> dict[str, tuple[int, float, float, Estimate]]:
    """Per task and pooled: (items in both runs, A's accuracy, B's accuracy, A - B with its interval)."""
    both = pd.concat({"a": a, "b": b}, axis=1, join="inner")
    if both.empty:
        raise ValueError("the two evaluations share no items. Fix: evaluate both on the same split, tasks and limit.")
    groups = [(task, frame) for task, frame in both.groupby(level="task")] + [(ALL_TASKS_LABEL, both)]
    out = {}
    for task, frame in groups:
        difference = (frame["a"] - frame["b"]).to_numpy()
        estimate = mean_with_ci(difference, bootstrap_indices(len(difference), seed=seed))
        out[task] = (len(frame), float(frame["a"].mean()), float(frame["b"].mean()), estimate)
    return out


def forgetting(store: Store, run_id: str) -> Estimate | None:
    """base_text minus text accuracy of one evaluation over the items scored in both, pooled; None if it lacks one."""
    try:
        base, text = correctness(store, run_id, "base_text"), correctness(store, run_id, "text")
    except ValueError:
        return None
    return paired_by_task(base, text)[ALL_TASKS_LABEL][3]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--a", required=True, help="evaluation run of the new arm")
    parser.add_argument("--b", required=True, help="evaluation run of the arm it is compared with")
    parser.add_argument("--lane", default="speech")
    parser.add_argument("--db", default=None)
    args = parser.parse_args()
    store = Store(args.db)
    rows = paired_by_task(correctness(store, args.a, args.lane), correctness(store, args.b, args.lane))
    print(f"{args.lane} accuracy, {args.a} (A) minus {args.b} (B), paired by item, 95 % interval over items")
    print(f"{'task':<14}{'n':>5}{'A':>8}{'B':>8}   A - B")
    for task, (n, acc_a, acc_b, diff) in rows.items():
        interval = f"[{diff.ci_low:+.3f}, {diff.ci_high:+.3f}]"
        print(f"{task:<14}{n:>5}{acc_a:>8.3f}{acc_b:>8.3f}   {diff.value:+.3f} {interval}")
    lost = forgetting(store, args.a)
    if lost is not None:
        print(f"\nA's text forgetting (base_text - text), pooled: {lost.value:+.3f} [{lost.ci_low:+.3f}, "
              f"{lost.ci_high:+.3f}] over {lost.n} items")
    print(f"\nA's {args.lane} accuracy above B's (pooled interval above 0): "
          f"{'yes' if rows[ALL_TASKS_LABEL][3].ci_low > 0 else 'no'}")


if __name__ == "__main__":
    main()
