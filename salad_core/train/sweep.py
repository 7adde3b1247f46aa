"""`salad sweep`: a grid of Stage I runs over α × speech budget × seed, each one `salad train` process tagged with the
grid's name, so that the store, `benchmarks/stage1_report.py --tag` and the Forgetting & dynamics page can find them
together. A recipe compared over seeds is one arm per α, one run per seed in each.

Runs go `jobs` at a time; on a CPU each then gets its share of the cores as torch threads (two runs on one thread
each finish a grid sooner than one run after the other on two threads, which contend for the CPU).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass


@dataclass(frozen=True)
class GridPoint:
    alpha: float
    budget_hours: float | None  # None: the preset recipe's steps
    seed: int = 0


def grid(alphas: list[float], budgets_hours: list[float | None], seeds: list[int] = (0,)) -> list[GridPoint]:
    """Every (α, budget, seed), seed-major then budget-major: a grid cut short has every α of its first budgets and
    seeds, so its arms stay comparable."""
    return [GridPoint(a, h, s) for s in seeds for h in budgets_hours for a in alphas]


def train_command(point: GridPoint, preset: str, tag: str, extra: list[str], db: str | None) -> list[str]:
    from salad_core.jobs import cli_command

    budget = [] if point.budget_hours is None else ["--budget-hours", str(point.budget_hours)]
    return cli_command(["train", "--json", "--preset", preset, "--alpha", str(point.alpha), *budget, "--seed",
                        str(point.seed), *extra, "--tag", tag], db)  # the grid's tag wins over one in extra


def thread_env(jobs: int, cores: int | None = None) -> dict[str, str]:
    """The environment of one run: the cores split between the runs going at once, unless the caller fixed it."""
    env = dict(os.environ)
    if "OMP_NUM_THREADS" not in env:
        env["OMP_NUM_THREADS"] = str(max(1, (cores or os.cpu_count() or 1) // max(1, jobs)))
    return env


def run_point(point: GridPoint, cmd: list[str], env: dict[str, str]) -> dict:
    """One `salad train` process; a failed run is reported in the result and the grid goes on."""
    done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=env)
    row = {"alpha": point.alpha, "budget_hours": point.budget_hours, "seed": point.seed}
    if done.returncode:
        return row | {"error": f"exit code {done.returncode}"}
    result = json.loads(done.stdout)
    return row | {"run_id": result["run_id"], "steps": result["steps"], "wall_s": round(result["wall_s"], 1)}


def run_sweep(preset: str, alphas: list[float], budgets_hours: list[float | None], extra: list[str] | None = None,
              db: str | None = None, jobs: int = 1, tag: str | None = None, seeds: list[int] = (0,)) -> dict:
    tag = tag or f"sweep-{time.strftime('%Y%m%d-%H%M%S')}"
    env = thread_env(jobs)
    points = grid(alphas, budgets_hours, seeds)

    def launch(point: GridPoint) -> dict:
        budget = "the recipe's steps" if point.budget_hours is None else f"{point.budget_hours:g} h"
        print(f"[{tag}] alpha={point.alpha:g} budget={budget} seed={point.seed}", file=sys.stderr)
        return run_point(point, train_command(point, preset, tag, list(extra or []), db), env)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        runs = list(pool.map(launch, points))  # in grid order, whatever order they finish in
    return {"sweep": tag, "runs": runs}
