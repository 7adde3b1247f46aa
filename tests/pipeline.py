"""A store made by the real commands, as a new user makes one: the `nano` world built, Stage I trained twice (α = 1
and α = 0), one selection round with its Stage II, and an evaluation with the ASR cascade.

Each step is the `salad` command a user types, run as a child process into one data folder (runs, rounds, jobs)
and one store; the world and the converted models stay in the machine's shared cache. Built once per test session
(`pipeline` fixture in tests/conftest.py) in about 75 s on 2 cores with a warm cache.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from salad_core.jobs import cli_command
from salad_core.store import Store


@dataclass(frozen=True)
class Pipeline:
    data: Path  # SALAD_DATA of every command: runs/, rounds/, jobs/
    store: Store
    alpha1: str  # Stage I run, α = 1
    alpha0: str  # Stage I run, α = 0
    round_id: str  # the selection round made from the α = 1 run
    stage2: str  # Stage II on that round
    eval_run: str  # `salad eval` of the α = 1 model with every lane, the cascade included

    def env(self) -> dict[str, str]:
        return {**os.environ, "SALAD_DATA": str(self.data), "SALAD_STORE": str(self.store.path)}

    def final(self, run_id: str) -> Path:
        return self.data / "runs" / run_id / "final"


def _env(data: Path, threads: int) -> dict[str, str]:
    return {**os.environ, "SALAD_DATA": str(data), "OMP_NUM_THREADS": str(threads), "SALAD_NO_AUTOSTART": "1"}


def start_salad(args: list[str], data: Path, db: Path, threads: int = 2) -> subprocess.Popen:
    """`salad <args> --json --db DB` started as a child process with `data` as its SALAD_DATA."""
    return subprocess.Popen(cli_command([*args, "--json"], str(db)), env=_env(data, threads), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def salad_result(proc: subprocess.Popen) -> dict:
    """The JSON object a started `salad` command printed; its stderr's tail if it failed."""
    out, err = proc.communicate()
    if proc.returncode:
        raise RuntimeError(f"{' '.join(proc.args[2:])} failed ({proc.returncode}):\n{err[-3000:]}")
    return json.loads(out)


def build_pipeline(root: Path, ray_address: str = "") -> Pipeline:
    """The pipeline's store under `root`; its selection round joins the Ray cluster at `ray_address` (default: a
    Ray of its own)."""
    data, db = root / "data", root / "salad.duckdb"
    salad_result(start_salad(["world", "build", "--corpus", "nano"], data, db))
    # the two Stage I runs at once, a core each (each is a separate store writer: the store retries its lock)
    trains = [start_salad(["train", "--preset", "nano", "--alpha", alpha], data, db, threads=1) for alpha in ("1", "0")]
    alpha1, alpha0 = (salad_result(p)["run_id"] for p in trains)
    joined = ["--ray-address", ray_address] if ray_address else []
    # the round (then its Stage II) and the evaluation of the α = 1 model at once: neither reads the other
    selecting = start_salad(["select", "--from", alpha1, "--budget", "20%", "--train", *joined], data, db, threads=1)
    final = str(data / "runs" / alpha1 / "final")
    evaluating = start_salad(["eval", "--model", final, "--tasks", "nano-capitals,nano-arithmetic", "--voice", "world",
                         "--limit", "4", "--asr", "whisper-tiny.en"], data, db, threads=1)
    selected, evaluated = salad_result(selecting), salad_result(evaluating)
    return Pipeline(data, Store(db), alpha1, alpha0, selected["round_id"], selected["stage2"]["run_id"],
                    evaluated["run_id"])
