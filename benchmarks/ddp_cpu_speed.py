"""Stage I on the CPU: one process with every core as torch threads against N processes (DDP) of one thread each.

    python benchmarks/ddp_cpu_speed.py                   # mini, 80 steps, 2 processes
    python benchmarks/ddp_cpu_speed.py --steps 120 --processes 2 --warmup 20

Both runs train the same model (`--batch-size` is the global batch; `tests/test_trainer_ddp.py`), with the LLM
learning from the first step so that every timed step is a full Stage I step; evaluation and checkpoints are left
out. Each run has a temporary data folder (the world, its LM and the caches are shared). Prints the seconds per step
after `--warmup` steps, from the steps' own wall clock in the store, and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
from pathlib import Path

from salad_core.jobs import cpu_ddp_command
from salad_core.paths import data_dir
from salad_core.store import Store

REPO = Path(__file__).resolve().parent.parent


def seconds_per_step(processes: int, args: argparse.Namespace) -> float:
    folder = tempfile.mkdtemp(prefix=f"salad-ddp{processes}-")
    train = ["train", "--preset", args.preset, "--max-steps", str(args.steps), "--llm-unfreeze-step", "0",
             "--eval-every", "100000", "--ckpt-every", "100000", "--no-final-eval", "--json",
             "--db", f"{folder}/salad.duckdb"]
    command, extra = cpu_ddp_command(train, processes)
    # the shared cache holds the built world and its LM; only the run and its store go to the temporary folder
    cache = os.environ.get("SALAD_CACHE") or str(data_dir() / "cache")
    env = {**os.environ, **extra, "SALAD_DATA": folder, "SALAD_CACHE": cache}
    done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    run_id = json.loads(done.stdout)["run_id"]
    steps = Store(f"{folder}/salad.duckdb").train_steps(run_id).set_index("step")["wall_s"]
    return float((steps.iloc[-1] - steps.loc[args.warmup]) / (len(steps) - args.warmup))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="mini")
    parser.add_argument("--steps", type=int, default=80)
    parser.add_argument("--warmup", type=int, default=20, help="steps left out of the timing")
    parser.add_argument("--processes", type=int, default=2)
    args = parser.parse_args()
    one = seconds_per_step(1, args)
    print(f"1 process, {os.cpu_count()} threads:     {one:.3f} s/step", flush=True)
    many = seconds_per_step(args.processes, args)
    print(f"{args.processes} processes, 1 thread each: {many:.3f} s/step")
    print(f"speed-up: {one / many:.2f}x (steps {args.warmup + 1}-{args.steps}, {args.preset})")


if __name__ == "__main__":
    main()
