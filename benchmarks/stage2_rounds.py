"""Stage II over seeds: from each α = 1 Stage I run of a tag, one selection round per (γ, budget) with the run's own
seed as the selection seed, each trained by its Stage II (`salad select ... --train`), `--jobs` at a time.

    python benchmarks/stage2_rounds.py --tag v6-stage1 --gammas 5,0 --budgets 5%,20% --jobs 2
    python benchmarks/stage2_report.py --tag v6-stage1      # then: the rounds, the arms, active - uniform

Prints one line per round (its round id, its Stage II run) and, with --json, one JSON object. A setting whose first
round and Stage II run finished before (the same Stage I run, γ, budget and seed, in the same store) is kept, not
run again, so an interrupted sweep picks up where it stopped.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from salad_core.jobs import cli_command
from salad_core.select.report import rounds_table
from salad_core.store import Store
from salad_core.train.sweep import thread_env


def finished_settings(store: Store) -> dict[tuple, dict]:
    """(Stage I run, γ, budget, seed) -> the round and Stage II run of each finished first round in the store."""
    selects = store.runs("select")
    rounds = rounds_table(selects, store.runs("train")).set_index("round_id")
    found = {}
    for run_id, config in zip(selects["run_id"], selects["config"]):
        row = rounds.loc[run_id]
        stage2 = [x for x in row["stage2_runs"].split(", ") if x]
        if row["status"] == "done" and row["round"] == 1 and stage2:
            found[(config["from_run"], float(config["gamma"]), str(config["budget"]), int(config["seed"]))] = {
                "round_id": run_id, "stage2": stage2[0]}
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tag", required=True, help="the tag of the Stage I runs")
    parser.add_argument("--gammas", default="5,0")
    parser.add_argument("--budgets", default="5%,20%")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--db", default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    store = Store(args.db)
    train = store.runs("train")
    roots = [(c["seed"], r) for r, c, s in zip(train["run_id"], train["config"], train["status"])
             if s == "done" and c.get("tag") == args.tag and c.get("stage", 1) == 1 and float(c["alpha"]) == 1.0]
    if not roots:
        raise SystemExit(f"No finished α = 1 Stage I run with tag {args.tag!r}.")
    settings = [(seed, run, gamma, budget) for seed, run in sorted(roots) for budget in args.budgets.split(",")
                for gamma in args.gammas.split(",")]
    env = thread_env(args.jobs)
    before = finished_settings(store)

    def launch(setting: tuple) -> dict:
        seed, run, gamma, budget = setting
        row = {"stage1": run, "seed": seed, "gamma": gamma, "budget": budget}
        if (run, float(gamma), budget, seed) in before:
            return row | before[run, float(gamma), budget, seed]
        cmd = cli_command(["select", "--from", run, "--gamma", gamma, "--budget", budget, "--seed", str(seed),
                           "--train", "--json"], args.db)
        print(f"[{args.tag}] {run} γ={gamma} {budget} seed {seed}", file=sys.stderr)
        done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=env, check=False)
        if done.returncode:
            return row | {"error": f"exit code {done.returncode}"}
        result = json.loads(done.stdout)
        return row | {"round_id": result["round_id"], "stage2": result["stage2"]["run_id"]}

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        rows = list(pool.map(launch, settings))
    if args.json:
        print(json.dumps({"tag": args.tag, "rounds": rows}))
    else:
        for r in rows:
            print(f"{r['stage1']} γ={r['gamma']} {r['budget']} seed {r['seed']}: "
                  f"{r.get('round_id', '')} {r.get('stage2', r.get('error'))}")


if __name__ == "__main__":
    main()
