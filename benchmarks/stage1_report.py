"""Stage I report from the results store: the α = 0 vs α = 1 table per domain, the R² of the paper's two scatters,
the power-law fits of M per α, and the data-efficiency ratio. Every number is read from the store's runs.

    python benchmarks/stage1_report.py                         # every training run in data/salad.duckdb
    python benchmarks/stage1_report.py --tag sweep-2026...     # the runs of one sweep (`salad sweep` tags them)
    python benchmarks/stage1_report.py --pair RUN_A0,RUN_A1    # the two runs of the table (default: newest of each)

Two tables: the final models' `salad eval` on every test item (when the runs made one), and each run's last periodic
evaluation (dev slice, `--eval-items` items per task, with F and M), both with 95 % bootstrap intervals; the fits pool
every checkpoint of the selected runs (all tasks pooled, `__all__`).
"""

from __future__ import annotations

import argparse
import math

import pandas as pd

from salad_core import analysis
from salad_core.select import report
from salad_core.store import ALL_TASKS, Store

TABLE_METRICS = ("text_acc", "speech_acc", "gap", "F", "M", "item_M")


def selected_runs(store: Store, tag: str | None) -> pd.DataFrame:
    runs = store.runs("train")
    runs = runs[runs["status"] == "done"]
    if tag:
        runs = runs[[isinstance(c, dict) and c.get("tag") == tag for c in runs["config"]]]
    return runs


def pick_pair(runs: pd.DataFrame, pair: str | None) -> tuple[str, str]:
    if pair:
        a0, a1 = pair.split(",")
        return a0, a1
    alphas = runs["config"].map(analysis.run_alpha)
    found = [runs.loc[alphas == a, "run_id"] for a in (0.0, 1.0)]  # runs are newest first
    if any(f.empty for f in found):
        raise SystemExit("Need a finished run with α = 0 and one with α = 1 (salad train --alpha 0 / --alpha 1).")
    return found[0].iloc[0], found[1].iloc[0]


def last_evaluation(store: Store, run_id: str) -> pd.DataFrame:
    metrics = store.metrics(run_id)
    metrics = metrics[metrics["step"].notna()]
    return metrics[metrics["step"] == metrics["step"].max()]


def cell(rows: pd.DataFrame, task: str, metric: str) -> str:
    row = rows[(rows["task"] == task) & (rows["metric"] == metric)]
    if row.empty or pd.isna(row["value"].iloc[0]):
        return "-"
    value, low, high = (float(row[c].iloc[0]) for c in ("value", "ci_low", "ci_high"))
    digits = 3 if metric in ("F", "M", "item_F", "item_M") else 2  # nats per token; F is small
    ci = f" [{low:.{digits}f}, {high:.{digits}f}]" if not (math.isnan(low) or math.isnan(high)) else ""
    return f"{value:.{digits}f}{ci}"


def alpha_table(evals: dict[int, pd.DataFrame], domains: dict[str, bool], metrics: tuple[str, ...]) -> str:
    header = "| domain | in speech | " + " | ".join(f"{m} α={a}" for m in metrics for a in (0, 1)) + " |"
    lines = [header, "|" + "---|" * (2 + 2 * len(metrics))]
    tasks = sorted(set(evals[1]["task"]) - {ALL_TASKS}) + [ALL_TASKS]
    for task in tasks:
        covered = domains.get(task)
        flag = "-" if covered is None else ("yes" if covered else "no")
        cells = [cell(evals[a], task, m) for m in metrics for a in (0, 1)]
        lines.append(f"| {task} | {flag} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def world_domains(runs: pd.DataFrame) -> list:
    """The domains (`world.domains`) of the worlds of the runs' presets (empty when none is built)."""
    from salad_core.world import load_world

    presets = {c.get("preset") for c in runs["config"] if isinstance(c, dict)}
    out = []
    for preset in presets:
        try:
            out += load_world(preset).domains
        except Exception:
            continue
    return out


def speech_differences(store: Store, a0: str, a1: str, domains: list) -> str:
    """α = 1 minus α = 0 speech accuracy on the same test items, paired bootstrap, per group of domains."""
    groups = {"covered": {d.name for d in domains if d.in_natural_speech},
              "uncovered": {d.name for d in domains if not d.in_natural_speech}}
    groups["all"] = groups["covered"] | groups["uncovered"]
    lines = []
    for name, members in groups.items():
        est = report.paired_speech_difference(store, a1, a0, members)
        lines.append(f"{name:<10} {est.value:+.3f} [{est.ci_low:+.3f}, {est.ci_high:+.3f}]  (n = {est.n})")
    return "\n".join(lines)


def dynamics(store: Store, runs: pd.DataFrame) -> str:
    metrics = pd.concat([store.metrics(r) for r in runs["run_id"]], ignore_index=True)
    steps = pd.concat([store.train_steps(r) for r in runs["run_id"]], ignore_index=True)
    points = analysis.checkpoints(runs, metrics, steps)
    lines = [f"{len(points)} checkpoints from {points['run_id'].nunique()} runs, α in "
             f"{sorted(points['alpha'].dropna().unique().tolist())}"]
    lines.append("the paper's scatters over checkpoints, on corpus F and M (held-out documents) and on item_F and "
                 "item_M (answer tokens of dev questions):")
    lines.append(analysis.scatter_table(analysis.scatter_fits(points)).to_string(index=False, float_format="%.3f"))
    lines.append(analysis.partial_r2_table(points).to_string(index=False))
    lines.append("power law M(tokens) = E + B·tokens^(−β) per α:")
    lines.append(analysis.power_law_table(analysis.fit_power_laws(points, "tokens", "M")).to_string(index=False))
    try:
        eff = analysis.data_efficiency(points, alpha=1.0, reference=0.0)
        line = (f"data efficiency: α = 0's final speech accuracy {eff.target:.3f} (smoothed) first reached after "
                f"{eff.reference_hours:.3f} h of natural speech; ")
        if math.isfinite(eff.hours):
            line += f"α = 1 reaches it after {eff.hours:.3f} h (ratio {eff.ratio:.2f}×)"
        else:
            best = points.loc[points["alpha"] == 1.0, "speech_acc"].max()
            line += f"α = 1 does not reach it in these runs (its best: {best:.3f}), so the ratio is undefined"
        lines.append(line)
    except analysis.AnalysisError as err:
        lines.append(f"data efficiency: not available ({err})")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", help="results store (default: data/salad.duckdb)")
    parser.add_argument("--tag", help="only the runs with this tag (a sweep id)")
    parser.add_argument("--pair", help="RUN_A0,RUN_A1: the runs of the α table")
    args = parser.parse_args()
    store = Store(args.db)
    runs = selected_runs(store, args.tag)
    a0, a1 = pick_pair(runs, args.pair)
    world = world_domains(runs)
    domains = {d.task: d.in_natural_speech for d in world}
    print(f"α = 0: {a0}; α = 1: {a1}\n")
    finals = {0: report.final_evaluation(store, a0), 1: report.final_evaluation(store, a1)}
    if not any(f.empty for f in finals.values()):
        print("## Final models on every test item (spoken in held-out voices), 95 % bootstrap CI\n")
        print(alpha_table(finals, domains, ("text_acc_base", "text_acc", "speech_acc", "gap", "forgetting")))
        print("\nSpeech accuracy, α = 1 minus α = 0 on the same test items (paired bootstrap, 95 % CI):\n")
        print(speech_differences(store, a0, a1, world))
        print()
    print("## Last periodic evaluation (dev slice), 95 % bootstrap CI\n")
    print(alpha_table({0: last_evaluation(store, a0), 1: last_evaluation(store, a1)}, domains, TABLE_METRICS))
    print("\n## Dynamics over checkpoints\n")
    print(dynamics(store, runs))


if __name__ == "__main__":
    main()
