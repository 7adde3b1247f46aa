"""The same tiny run on one process and under `accelerate launch` with 2 CPU processes gives the same losses.

Two processes with batch 2 see, step by step, the same documents as one process with batch 4 (each process takes
every other document of the shared order), the loss is weighted by the global count of text positions, and DDP
averages gradients: so the runs agree up to float32 summation order. Tolerance: 1e-4 relative per step.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from salad_core.store import Store

ARGS = ["--preset", "nano", "--max-steps", "3", "--replay-prob", "0", "--warmup-steps", "1", "--eval-every", "100",
        "--eval-items", "1", "--ckpt-every", "100", "--no-final-eval", "--json"]


def run(prefix: list[str], batch: int, tmp_path, name: str, **env_vars: str) -> tuple[str, Store]:
    db = str(tmp_path / f"{name}.duckdb")
    env = {**os.environ, "SALAD_DATA": str(tmp_path / name), **env_vars}
    cmd = [*prefix, "train", *ARGS, "--batch-size", str(batch), "--db", db]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)["run_id"], Store(db)


def test_two_cpu_processes_match_one(tmp_path):
    python = [sys.executable, "-m", "salad_core.cli"]
    # accelerate's --cpu flag runs one process; DDP over gloo on CPU processes is --multi_gpu with ACCELERATE_USE_CPU=1.
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
              "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "salad_core.cli"]
    one_id, one = run(python, 4, tmp_path, "one")
    two_id, two = run(launch, 2, tmp_path, "two", ACCELERATE_USE_CPU="1")
    a = one.train_steps(one_id).set_index("step")
    b = two.train_steps(two_id).set_index("step")
    assert list(a.index) == list(b.index) == [1, 2, 3]
    assert (a["tokens"] == b["tokens"]).all()  # the same text positions, globally
    assert b["loss"].to_numpy() == pytest.approx(a["loss"].to_numpy(), rel=1e-4)
