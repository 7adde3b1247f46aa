"""Stage II on the mini world, from the store: where each round's budget went, and Stage I vs Stage II per domain.

    python benchmarks/stage2_report.py --from train-…          # every round of that Stage I run's lineage

Prints, per round (strategy, γ, budget): the share of the selected audio (and of P_target) that went to the domains
missing from the natural speech, against their share of the corpus, and the round's stage timings; each domain's
share of the selected audio; then the final evaluations (every test item, held-out voices, 95 % bootstrap CI) of the
Stage I model and of each Stage II model trained on a round, per domain, and the mean over covered and uncovered
domains; then paired bootstrap differences between every two models (test items pooled over the uncovered and the
covered domains, and per uncovered domain); last, active − uniform for each pair of Stage II runs that differ only
in the strategy, and pooled over the pairs.
"""

from __future__ import annotations

import argparse
import json

import pandas as pd

from salad_core.select import report
from salad_core.select.round import round_dir
from salad_core.store import ALL_TASKS, Store
from salad_core.world import load_world


def cell(frame: pd.DataFrame, task: str, metric: str) -> str:
    row = frame[(frame["task"] == task) & (frame["metric"] == metric)]
    if row.empty:
        return "—"
    r = row.iloc[0]
    return f"{r['value']:.2f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--from", dest="from_run", required=True, help="the Stage I run")
    parser.add_argument("--db", default=None)
    args = parser.parse_args()
    store = Store(args.db)
    train = store.runs("train")
    config = train.set_index("run_id").loc[args.from_run, "config"]
    world = load_world(config["preset"])
    covered = world.covered_domains
    rounds = report.rounds_table(store.runs("select"), train)
    rounds = rounds[(rounds["stage1_run"] == args.from_run) & (rounds["status"] == "done")].iloc[::-1]
    rounds = rounds.assign(label=[f"{label} (round {n})" if n > 1 else label  # later rounds: scored by Stage II
                                  for label, n in zip(rounds["label"], rounds["round"])])

    print(f"Stage I run {args.from_run}; natural speech covers {', '.join(sorted(covered))}\n")
    print("| round | strategy | budget (h) | selected (h) | uncovered: corpus | uncovered: P_target | "
          "uncovered: selected audio | round wall s |")
    print("|---|---|---|---|---|---|---|---|")
    allocations = {}
    for _, r in rounds.iterrows():
        clusters, texts = store.selection_clusters(r["round_id"]), store.selection_texts(r["round_id"])
        members, selected = texts[texts["role"] == "member"], texts[texts["role"] == "selected"]
        alloc = allocations[f"{r['label']} ({r['round_id'][-4:]})"] = report.domain_allocation(clusters, members,
                                                                                               selected)
        timings = json.loads((round_dir(r["round_id"]) / "round.json").read_text()).get("timings", {}) \
            if (round_dir(r["round_id"]) / "round.json").exists() else {}
        print(f"| {r['round_id']} | {r['label']} | {r['budget_hours']:.3f} | {selected['seconds'].sum() / 3600:.3f} | "
              f"{report.uncovered_share(alloc, covered, 'p_web'):.0%} | "
              f"{report.uncovered_share(alloc, covered, 'p_target'):.0%} | "
              f"{report.uncovered_share(alloc, covered):.0%} | {sum(timings.values()):.0f} |")

    print("\n## Selected audio per domain (share of the round's seconds; corpus share in brackets)\n")
    domains = sorted(d.name for d in world.domains)
    print("| round | " + " | ".join(f"{d}{'' if d in covered else ' (uncovered)'}" for d in domains) + " |")
    print("|---|" + "---|" * len(domains))
    for name, alloc in allocations.items():
        by_domain = alloc.set_index("domain")
        print(f"| {name} | " + " | ".join(
            f"{by_domain['selected_share'].get(d, 0.0):.0%} ({by_domain['p_web'].get(d, 0.0):.0%})" for d in domains)
            + " |")

    finals = {"Stage I": report.final_evaluation(store, args.from_run)}
    configs = train.set_index("run_id")["config"]
    for _, r in rounds.iterrows():
        for run_id in filter(None, r["stage2_runs"].split(", ")):
            share = configs[run_id].get("synthetic_prob")
            finals[f"II · {r['label']} · synthetic {share:.2f} ({run_id[-4:]})"] = report.final_evaluation(store, run_id)
    finals = {k: v for k, v in finals.items() if not v.empty}
    for metric in ("speech_acc", "text_acc"):
        print(f"\n## {metric} on every test item (95 % CI)\n")
        print("| domain | in speech | " + " | ".join(finals) + " |")
        print("|---|---|" + "---|" * len(finals))
        tasks = sorted(t for t in next(iter(finals.values()))["task"].unique() if t != ALL_TASKS)
        for task in tasks:
            domain = task.split("-", 1)[1]
            print(f"| {domain} | {'yes' if domain in covered else 'no'} | " +
                  " | ".join(cell(f, task, metric) for f in finals.values()) + " |")
        for group, keep in (("covered", True), ("uncovered", False)):
            means = []
            for frame in finals.values():
                part = frame[(frame["metric"] == metric) & frame["task"].map(
                    lambda t: t != ALL_TASKS and (t.split("-", 1)[1] in covered) == keep)]
                means.append(f"{part['value'].mean():.3f}")
            print(f"| mean, {group} | | " + " | ".join(means) + " |")

    print("\n## Paired differences in speech accuracy, test items pooled per group, then per uncovered domain "
          "(95 % paired bootstrap CI)\n")
    runs = {"Stage I": args.from_run}
    for _, r in rounds.iterrows():
        for run_id in filter(None, r["stage2_runs"].split(", ")):
            runs[f"{r['label']} ({run_id[-4:]})"] = run_id
    names = list(runs)
    correct = {run_id: report.final_speech_correct(store, run_id) for run_id in runs.values()}  # read once each
    uncovered = {d.name for d in world.domains} - covered
    groups = {"uncovered": uncovered, "covered": covered} | {d: {d} for d in sorted(uncovered)}
    print("| A − B | " + " | ".join(groups) + " |")
    print("|---|" + "---|" * len(groups))
    for i, a in enumerate(names):
        for b in names[:i]:
            cells = [report.paired_difference(correct[runs[a]], correct[runs[b]], domains) for domains in groups.values()]
            print(f"| {a} − {b} | " + " | ".join(fmt(e.value, e.ci_low, e.ci_high) for e in cells) + " |")

    pairs = report.equal_budget_pairs(rounds, configs)
    for steps, same_length in report.pairs_by_length(pairs).items():  # one table and pooled estimate per length
        print(f"\n## Active − uniform at equal budget, selection seed and synthetic share; Stage II of {steps} steps "
              "(paired bootstrap, 95 % CI)\n")
        table = report.equal_budget_table(same_length, correct, groups)
        print("| active − uniform | budget (h) | seed | synthetic | " + " | ".join(groups) + " |")
        print("|---|---|---|---|" + "---|" * len(groups))
        for _, row in table.iterrows():
            setting = (f"{row['budget_hours']:.3f} | {row['seed']:.0f} | {row['synthetic_prob']:.2f}"
                       if pd.notna(row.get("seed")) else " | | ")
            print(f"| {row['pair']} | {setting} | " + " | ".join(
                fmt(row[g], row[f"{g} low"], row[f"{g} high"]) for g in groups) + " |")


def fmt(value: float, low: float, high: float) -> str:
    return f"{value:+.3f} [{low:+.3f}, {high:+.3f}]"


if __name__ == "__main__":
    main()
