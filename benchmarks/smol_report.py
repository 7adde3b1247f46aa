"""The `smol` preset's report from the results store: the per-task table of one evaluation (the paper's Table 3
layout: text, speech, cascade, no audio, gap, forgetting, misalignment, F, M), the issue's targets read from it, and
the training run's cost. Every number is read from the store.

    python benchmarks/smol_report.py --eval EVAL_RUN --train TRAIN_RUN

Targets: on every task, speech accuracy above the no-audio floor with an interval that excludes it (audio_gain's
interval above 0); forgetting at most 0.02; speech within 0.10 of the cascade, averaged over the tasks.
"""

from __future__ import annotations

import argparse

import numpy as np

from salad_core.eval.vocabulary import ALL_TASKS
from salad_core.runs import RunDir
from salad_core.shipping import metrics_table
from salad_core.store import Store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--eval", required=True, dest="eval_run")
    parser.add_argument("--train", dest="train_run")
    parser.add_argument("--db", default=None)
    args = parser.parse_args()
    store = Store(args.db)
    metrics = store.metrics(args.eval_run)
    final = metrics[metrics["step"].isna()]
    if final.empty:
        raise SystemExit(f"the store {store.path} holds no final metrics of evaluation {args.eval_run!r}. Fix: pass "
                         "an evaluation run of this store (`salad runs`), or --db the store that made it.")
    print(metrics_table(final))
    wide = final.pivot_table(index="task", columns="metric", values="value")
    low = final.pivot_table(index="task", columns="metric", values="ci_low")
    tasks = [t for t in wide.index if t != ALL_TASKS]
    missing = [m for m in ("audio_gain", "forgetting", "cascade_acc", "speech_acc") if m not in wide.columns]
    if missing:
        raise SystemExit(f"evaluation {args.eval_run} lacks {', '.join(missing)}. Fix: report an evaluation with every "
                         "lane (salad eval without --lanes).")
    above = {t: bool(low.loc[t, "audio_gain"] > 0) for t in tasks}
    print(f"\nspeech above the no-audio floor (audio_gain interval above 0): {sum(above.values())} of {len(tasks)} "
          f"tasks; not on: {', '.join(t for t, ok in above.items() if not ok) or 'none'}")
    print(f"forgetting, all tasks: {wide.loc[ALL_TASKS, 'forgetting']:+.3f}; worst task "
          f"{wide.loc[tasks, 'forgetting'].max():+.3f}")
    behind = wide.loc[tasks, "cascade_acc"] - wide.loc[tasks, "speech_acc"]
    print(f"cascade minus speech, mean over the {len(tasks)} tasks: {np.mean(behind):+.3f} "
          f"(per task {', '.join(f'{t} {v:+.2f}' for t, v in behind.items())})")
    if args.train_run:
        steps = store.train_steps(args.train_run)
        if steps.empty:
            raise SystemExit(f"the store {store.path} holds no training steps of run {args.train_run!r}. Fix: pass a "
                             "training run of this store (`salad runs`), or leave out --train.")
        machines = RunDir(args.train_run, "train").machines()
        print(f"\ntraining {args.train_run}: {int(steps['step'].max())} steps, "
              f"{steps['speech_s'].max() / 3600:.1f} h of speech heard, "
              f"{steps['wall_s'].max() / 3600:.2f} h wall time on "
              + "; ".join(f"{m['cpu_cores']} CPU cores ({m['device']}, {m['processes']} process)" for m in machines))


if __name__ == "__main__":
    main()
