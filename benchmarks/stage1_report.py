"""Stage I report from the results store, over seeds: α = 1 against α = 0 per domain, the covered against the
uncovered domains, the paper's scatters (corpus and item-level F and M), the power-law fits of M, and the
data-efficiency ratio. Every number is read from the store's runs.

    python benchmarks/stage1_report.py --tag v6-stage1        # the runs of one experiment (salad train --tag ...)
    python benchmarks/stage1_report.py --tag v6-stage1 --arms 0,1

Each α is an arm of runs, one per seed (`salad train --seed`). Accuracies are the final models' answers on every
item of their final evaluation (`--final-split`: test for a reported configuration), and each arm's value is the mean
over its seeds with a 95 % interval that resamples seeds, then items (compare.contrast); the per-seed values follow
in brackets. F and M are corpus values (held-out probe documents, per domain), averaged over seeds.
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import pandas as pd

from salad_core import analysis, compare, fitting
from salad_core.eval.vocabulary import ALL_TASKS
from salad_core.store import Store


def selected_runs(store: Store, tag: str | None) -> pd.DataFrame:
    runs = store.runs("train")
    stage1 = np.array([isinstance(c, dict) and c.get("stage", 1) == 1 for c in runs["config"]], dtype=bool)
    runs = runs[(runs["status"] == "done").to_numpy() & stage1]
    if tag:
        runs = runs[np.array([c.get("tag") == tag for c in runs["config"]], dtype=bool)]
    return runs


def arms_of(runs: pd.DataFrame, alphas: list[float]) -> dict[float, list[str]]:
    """α -> its runs (one per seed), seeds in order."""
    arms = {}
    for alpha in alphas:
        mine = [(c["seed"], r) for r, c in zip(runs["run_id"], runs["config"]) if float(c["alpha"]) == alpha]
        if not mine:
            raise SystemExit(f"No finished Stage I run with α = {alpha:g} among the selected runs.")
        arms[alpha] = [r for _, r in sorted(mine)]
    return arms


def fmt(est, digits: int = 3) -> str:
    return f"{est.value:.{digits}f} [{est.ci_low:.{digits}f}, {est.ci_high:.{digits}f}]"


def seeds_text(values: list[float]) -> str:
    return "(" + ", ".join(f"{v:.2f}" for v in values) + ")"


def metric_by_seed(store: Store, runs: list[str], task: str, metric: str) -> list[float]:
    out = []
    for run_id in runs:
        rows = compare.final_evaluation(store, run_id)
        row = rows[(rows["task"] == task) & (rows["metric"] == metric)]
        out.append(float(row["value"].iloc[0]) if len(row) else math.nan)
    return out


def domain_table(store: Store, arms: dict[float, list[str]], domains: list, lanes=("speech", "text")) -> str:
    correct = {lane: {a: [compare.item_correctness(store, r, lane) for r in runs] for a, runs in arms.items()}
               for lane in (*lanes, "base_text")}
    alphas = list(arms)
    header = ["domain", "in speech"] + [f"{lane} α={a:g}" for lane in lanes for a in alphas] + \
             [f"gap α={a:g}" for a in alphas] + [f"{m} α={a:g}" for m in ("F", "M") for a in alphas]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    groups = [(d.name, {d.name}, d.task, "yes" if d.in_natural_speech else "no") for d in domains]
    groups.append(("all", None, ALL_TASKS, "-"))
    for name, members, task, covered in groups:
        cells = []
        for lane in lanes:
            for a in alphas:
                est = compare.contrast(correct[lane], {a: 1.0}, members)
                cells.append(f"{fmt(est, 2)} {seeds_text(compare.per_seed(correct[lane][a], members))}")
        for a in alphas:
            both = {"base": correct["base_text"][a], "speech": correct["speech"][a]}
            est = compare.contrast(both, {"base": 1.0, "speech": -1.0}, members)
            cells.append(fmt(est, 2))
        for metric in ("F", "M"):
            for a in alphas:
                values = metric_by_seed(store, arms[a], task, metric)
                cells.append(f"{np.nanmean(values):.3f} {seeds_text(values)}" if values else "-")
        lines.append(f"| {name} | {covered} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def differences(store: Store, arms: dict[float, list[str]], domains: list, a: float, b: float) -> str:
    """Speech accuracy α=a minus α=b per group of domains, seeds and items resampled."""
    correct = {x: [compare.item_correctness(store, r, "speech") for r in arms[x]] for x in (a, b)}
    groups = {"covered": {d.name for d in domains if d.in_natural_speech},
              "uncovered": {d.name for d in domains if not d.in_natural_speech}}
    groups["all"] = groups["covered"] | groups["uncovered"]
    lines = []
    for name, members in groups.items():
        est = compare.contrast(correct, {a: 1.0, b: -1.0}, members)
        per = [x - y for x, y in zip(compare.per_seed(correct[a], members), compare.per_seed(correct[b], members))]
        lines.append(f"{name:<10} {est.value:+.3f} [{est.ci_low:+.3f}, {est.ci_high:+.3f}]  per seed "
                     f"{', '.join(f'{p:+.3f}' for p in per)}  (n = {est.n} items)")
    return "\n".join(lines)


def covered_vs_uncovered(store: Store, arms: dict[float, list[str]], domains: list) -> str:
    """Gap and corpus M on the covered domains against the uncovered ones, per α (means over seeds)."""
    lines = []
    for alpha, runs in arms.items():
        for name, covered in (("covered", True), ("uncovered", False)):
            members = [d for d in domains if d.in_natural_speech == covered]
            gap = np.nanmean([metric_by_seed(store, runs, d.task, "gap") for d in members])
            m = np.nanmean([metric_by_seed(store, runs, d.task, "M") for d in members])
            lines.append(f"α = {alpha:g} {name:<10} gap {gap:.3f}  M {m:.3f}")
    return "\n".join(lines)


def dynamics(store: Store, runs: pd.DataFrame) -> str:
    metrics = pd.concat([store.metrics(r) for r in runs["run_id"]], ignore_index=True)
    steps = pd.concat([store.train_steps(r) for r in runs["run_id"]], ignore_index=True)
    points = analysis.checkpoints(runs, metrics, steps)
    lines = [f"{len(points)} checkpoints (dev slice) from {points['run_id'].nunique()} runs, α in "
             f"{sorted(points['alpha'].dropna().unique().tolist())}",
             "the paper's scatters over checkpoints, on corpus F and M (held-out documents) and on item_F and item_M "
             "(answer tokens of dev questions):",
             analysis.scatter_table(analysis.scatter_fits(points)).to_string(index=False, float_format="%.3f"),
             analysis.partial_r2_table(points).to_string(index=False),
             "power law M(tokens) = E + B·tokens^(−β) per α:",
             fitting.power_law_table(fitting.fit_power_laws(points, "tokens", "M")).to_string(index=False)]
    try:
        lines.append("data efficiency (each α's seeds pooled into one monotone dev curve): "
                     + analysis.data_efficiency(points, alpha=1.0, reference=0.0).sentence())
    except analysis.AnalysisError as err:
        lines.append(f"data efficiency: not available ({err})")
    return "\n".join(lines)


def world_domains(runs: pd.DataFrame) -> list:
    """The domains of the world the runs' preset trains on."""
    from salad_core.presets import get_preset
    from salad_core.world import load_world

    presets = {c.get("preset") for c in runs["config"]}
    if len(presets) != 1:
        raise SystemExit(f"The selected runs train on several presets ({sorted(presets)}). Fix: select by --tag.")
    return load_world(get_preset(presets.pop()).world).domains


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", help="results store (default: data/salad.duckdb)")
    parser.add_argument("--tag", help="only the runs with this tag")
    parser.add_argument("--arms", default="0,1", help="the α values compared, the reference first (default 0,1)")
    args = parser.parse_args()
    store = Store(args.db)
    runs = selected_runs(store, args.tag)
    alphas = [float(a) for a in args.arms.split(",")]
    arms = arms_of(runs, alphas)
    domains = world_domains(runs)
    print("runs: " + "; ".join(f"α = {a:g}: {', '.join(r)}" for a, r in arms.items()) + "\n")
    print("## Final models per domain: mean over seeds [95 % CI over seeds and items] (per seed)\n")
    print(domain_table(store, arms, domains))
    print(f"\nSpeech accuracy, α = {alphas[-1]:g} minus α = {alphas[0]:g} (seeds and items resampled):\n")
    print(differences(store, arms, domains, alphas[-1], alphas[0]))
    print("\nGap and corpus M, covered against uncovered domains:\n")
    print(covered_vs_uncovered(store, arms, domains))
    print("\n## Dynamics over checkpoints\n")
    print(dynamics(store, runs))


if __name__ == "__main__":
    main()
