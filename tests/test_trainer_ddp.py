"""The same tiny run on one process and under `accelerate launch` with 2 CPU processes gives the same losses.

`--batch-size 4` is the global batch: each of two processes takes 2 documents, every other one of the shared order,
so step by step they see the same documents as one process; all processes throw the same replay coin, so a step is
a replay step everywhere or nowhere; the loss is weighted by the global count of text positions, and DDP averages
gradients: so the runs agree up to float32 summation order. Tolerance per step: 1e-4 relative, or 1e-4 nats per
token absolute (a replay step's KL, student against its own starting point, is near zero).
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from salad_core.jobs import cpu_ddp_command
from salad_core.store import Store
from salad_core.train.machine import process_share

# A learning LLM, so that replay batches are drawn (seed 0's coin: replay at steps 1 and 4, speech at 2 and 3).
ARGS = ["--preset", "nano", "--max-steps", "4", "--llm-mode", "full", "--llm-unfreeze-step", "0", "--replay-prob", "0.5",
        "--warmup-steps", "3", "--eval-every", "100", "--eval-items", "1", "--ckpt-every", "100", "--no-final-eval",
        "--batch-size", "4", "--json"]


def run(prefix: list[str], env_vars: dict[str, str], tmp_path, name: str) -> tuple[str, Store]:
    db = str(tmp_path / f"{name}.duckdb")
    env = {**os.environ, "SALAD_DATA": str(tmp_path / name), **env_vars}
    cmd = [*prefix, "train", *ARGS, "--db", db]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)["run_id"], Store(db)


def test_two_cpu_processes_match_one(tmp_path):
    one_id, one = run(*cpu_ddp_command([], 1), tmp_path, "one")
    two_id, two = run(*cpu_ddp_command([], 2), tmp_path, "two")
    a = one.train_steps(one_id).set_index("step")
    b = two.train_steps(two_id).set_index("step")
    assert list(a.index) == list(b.index) == [1, 2, 3, 4]
    assert list(a["replay"]) == list(b["replay"]) == [True, False, False, True]
    assert (a["tokens"] == b["tokens"]).all()  # the same text positions, globally
    for rate in ("lr_adapter", "lr_llm"):  # one schedule step per optimizer step, however many processes
        assert b[rate].to_numpy() == pytest.approx(a[rate].to_numpy(), rel=1e-9)
    assert a["lr_adapter"].nunique() > 1  # the run covers the warmup
    assert b["speech_s"].to_numpy() == pytest.approx(a["speech_s"].to_numpy(), abs=0.01)  # both processes' speech
    assert a["speech_s"].iloc[-1] > 0
    assert b["loss"].to_numpy() == pytest.approx(a["loss"].to_numpy(), rel=1e-4, abs=1e-4)


def test_the_batch_size_is_split_over_the_processes():
    from salad_core.errors import TrainingError

    assert process_share(16, 1) == 16
    assert process_share(16, 2) == 8
    with pytest.raises(TrainingError, match="multiple of 3"):
        process_share(16, 3)
