"""Stage II from the store, over seeds: where each round's budget went, and active against uniform selection.

    python benchmarks/stage2_report.py --tag v6-stage1          # the α = 1 Stage I runs of that tag, one per seed
    python benchmarks/stage2_report.py --from train-a,train-b   # or name the Stage I runs

An *arm* is a (strategy, budget) setting; its runs are the Stage II runs trained on the first-round selections made
from each Stage I run with that setting (the selection seed is the Stage I run's seed). Prints, per round, the share
of the selected audio that went to the domains missing from the natural speech; per arm, speech accuracy on the
covered and the uncovered domains (mean over seeds, 95 % interval over seeds and items, per-seed values); and
active − uniform per budget and pooled over the budgets, likewise.
"""

from __future__ import annotations

import argparse

import pandas as pd

from salad_core import compare
from salad_core.select import report
from salad_core.store import Store


def stage1_runs(store: Store, tag: str | None, named: str | None) -> list[str]:
    train = store.runs("train")
    if named:
        return named.split(",")
    keep = [r for r, c, s in zip(train["run_id"], train["config"], train["status"])
            if s == "done" and c.get("stage", 1) == 1 and float(c.get("alpha", 1)) == 1.0 and c.get("tag") == tag]
    if not keep:
        raise SystemExit(f"No finished α = 1 Stage I run with tag {tag!r}.")
    return keep


def arms(store: Store, roots: list[str]) -> tuple[dict[str, list[str]], pd.DataFrame]:
    """(arm label -> its Stage II runs in Stage I order, the first rounds made from `roots`)."""
    rounds = report.rounds_table(store.runs("select"), store.runs("train"))
    rounds = rounds[rounds["stage1_run"].isin(roots) & (rounds["round"] == 1) & (rounds["status"] == "done")]
    found: dict[str, dict[str, str]] = {}
    for _, r in rounds.iterrows():
        stage2 = [x for x in r["stage2_runs"].split(", ") if x]
        if stage2:
            found.setdefault(r["label"], {})[r["stage1_run"]] = stage2[0]
    return {label: [runs[root] for root in roots if root in runs] for label, runs in found.items()}, rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tag", help="the tag of the Stage I runs (their α = 1 runs are the roots)")
    parser.add_argument("--from", dest="named", help="comma-separated Stage I runs instead")
    parser.add_argument("--db", default=None)
    args = parser.parse_args()
    store = Store(args.db)
    roots = stage1_runs(store, args.tag, args.named)
    from salad_core.presets import get_preset
    from salad_core.world import load_world

    preset = store.runs("train").set_index("run_id").loc[roots[0], "config"]["preset"]
    world = load_world(get_preset(preset).world)
    covered = world.covered_domains
    groups = {"uncovered": {d.name for d in world.domains} - covered, "covered": covered}
    by_arm, rounds = arms(store, roots)
    print(f"Stage I runs (one per seed): {', '.join(roots)}; natural speech covers {', '.join(sorted(covered))}\n")

    print("| round | Stage I | setting | seed | selected (h) | uncovered: corpus | uncovered: selected audio |")
    print("|---|---|---|---|---|---|---|")
    for _, r in rounds.sort_values(["label", "seed"]).iterrows():
        clusters, selected = store.selection_clusters(r["round_id"]), store.selection_texts(r["round_id"], "selected")
        alloc = report.domain_allocation(clusters, store.selection_domains(r["round_id"]), selected)
        print(f"| {r['round_id']} | {r['stage1_run']} | {r['label']} | {r['seed']} | "
              f"{selected['seconds'].sum() / 3600:.3f} | {report.uncovered_share(alloc, covered, 'p_web'):.0%} | "
              f"{report.uncovered_share(alloc, covered):.0%} |")

    correct = {"Stage I": [compare.item_correctness(store, r) for r in roots]}
    correct |= {label: [compare.item_correctness(store, r) for r in runs] for label, runs in by_arm.items()}
    print("\n## Speech accuracy per arm: mean over seeds [95 % CI over seeds and items] (per seed)\n")
    print("| arm | seeds | " + " | ".join(groups) + " |")
    print("|---|---|" + "---|" * len(groups))
    for label, frames in correct.items():
        cells = [f"{fmt(compare.contrast(correct, {label: 1.0}, members))} "
                 f"({', '.join(f'{v:.3f}' for v in compare.per_seed(frames, members))})" for members in groups.values()]
        print(f"| {label} | {len(frames)} | " + " | ".join(cells) + " |")

    budgets = sorted({label.split(" · ")[1] for label in by_arm}, key=lambda b: float(b.rstrip("%h")))
    pairs = {b: (f"active γ=5 · {b}", f"uniform (γ=0) · {b}") for b in budgets}
    pairs = {b: p for b, p in pairs.items() if p[0] in correct and p[1] in correct
             and len(correct[p[0]]) == len(correct[p[1]])}
    print("\n## Active − uniform: mean over seeds [95 % CI over seeds and items] (per seed)\n")
    print("| budget | " + " | ".join(groups) + " |")
    print("|---|" + "---|" * len(groups))
    for budget, (a, u) in pairs.items():
        cells = []
        for members in groups.values():
            per = [x - y for x, y in zip(compare.per_seed(correct[a], members), compare.per_seed(correct[u], members))]
            cells.append(f"{fmt(compare.contrast(correct, {a: 1.0, u: -1.0}, members), sign=True)} "
                         f"({', '.join(f'{p:+.3f}' for p in per)})")
        print(f"| {budget} | " + " | ".join(cells) + " |")
    if len(pairs) > 1:
        weights = {arm: w / len(pairs) for a, u in pairs.values() for arm, w in ((a, 1.0), (u, -1.0))}
        print(f"| pooled over {', '.join(pairs)} | " + " | ".join(
            fmt(compare.contrast(correct, weights, members), sign=True) for members in groups.values()) + " |")


def fmt(est, sign: bool = False) -> str:
    spec = "+.3f" if sign else ".3f"
    return f"{est.value:{spec}} [{est.ci_low:{spec}}, {est.ci_high:{spec}}]"


if __name__ == "__main__":
    main()
