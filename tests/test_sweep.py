"""`salad sweep` runs one Stage I run per (alpha, speech budget), tagged with one sweep id, all in the store."""

import json
import os
import subprocess
import sys

from salad_core.store import Store
from salad_core.train.config import TrainConfig
from salad_core.train.sweep import GridPoint, grid, thread_env, train_command


def test_the_grid_is_seed_then_budget_major_and_every_point_once():
    assert grid([0.0, 1.0], [10.0, 20.0]) == [GridPoint(0.0, 10.0), GridPoint(1.0, 10.0), GridPoint(0.0, 20.0),
                                              GridPoint(1.0, 20.0)]
    assert grid([0.0, 1.0], [None], [0, 1]) == [GridPoint(0.0, None, 0), GridPoint(1.0, None, 0),
                                                GridPoint(0.0, None, 1), GridPoint(1.0, None, 1)]
    cmd = train_command(GridPoint(1.0, None, 2), "mini", "t", [], None)
    assert "--budget-hours" not in cmd and cmd[cmd.index("--seed") + 1] == "2"  # the recipe's steps


def test_the_grid_tag_overrides_a_tag_among_the_train_flags():
    cmd = train_command(GridPoint(0.5, 10.0), "mini", "grid-a", ["--tag", "mine", "--seed", "3"], "x.duckdb")
    tags = [cmd[i + 1] for i, a in enumerate(cmd) if a == "--tag"]
    assert tags[-1] == "grid-a" and cmd[cmd.index("--alpha") + 1] == "0.5" and cmd[-2:] == ["--db", "x.duckdb"]


def test_runs_at_once_split_the_cores_unless_the_threads_are_fixed(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert thread_env(2, cores=8)["OMP_NUM_THREADS"] == "4"  # two runs share eight cores: four each
    assert thread_env(3, cores=8)["OMP_NUM_THREADS"] == "2"  # whole cores only
    assert thread_env(1, cores=8)["OMP_NUM_THREADS"] == "8"
    assert thread_env(16, cores=8)["OMP_NUM_THREADS"] == "1"  # never less than one
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert thread_env(2, cores=2)["OMP_NUM_THREADS"] == "3"


def test_sweep_runs_the_grid(tmp_path):
    db = tmp_path / "store.duckdb"
    cmd = [sys.executable, "-m", "salad_core.cli", "sweep", "--json", "--db", str(db), "--preset", "nano",
           "--alphas", "0,1", "--budgets-hours", "0.002", "--jobs", "2", "--tag", "grid-t", "--", "--batch-size", "2", "--warmup-steps", "1",
           "--eval-items", "1", "--no-final-eval"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "SALAD_DATA": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert [(r["alpha"], r["budget_hours"], r["seed"]) for r in result["runs"]] == [(0.0, 0.002, 0), (1.0, 0.002, 0)]
    runs = Store(db).runs("train")
    assert len(runs) == 2 and (runs["status"] == "done").all()
    configs = runs["config"].tolist()
    assert result["sweep"] == "grid-t" and {c["tag"] for c in configs} == {"grid-t"} and {c["alpha"] for c in configs} == {0.0, 1.0}
    # the budget fixed the step count: 0.002 h of speech at 2 documents per step
    assert all(c["budget_hours"] == 0.002 for c in configs)
    assert all(r["steps"] >= 1 for r in result["runs"])
    store = Store(db)
    plans = runs.set_index("run_id")["plan"]
    for r in result["runs"]:  # the planned steps ran (the schedule decayed), and the last one was evaluated
        steps = store.train_steps(r["run_id"])
        assert steps["step"].max() == r["steps"] == plans[r["run_id"]]["max_steps"]
        assert configs[0]["max_steps"] == TrainConfig.for_preset("nano").max_steps  # the config as given
        assert store.metrics(r["run_id"])["step"].max() == r["steps"]
        hours = steps["speech_s"].max() / 3600
        assert 0.5 * 0.002 < hours < 2 * 0.002  # the budget, within the spread of document lengths
