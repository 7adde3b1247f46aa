"""Where a run lives and where it comes from.

`RunDir` is the one folder layout of a run: a training run under `data/runs/<run id>/` (config.json, plan.json,
checkpoints, the final model, the pid file of a live trainer), a selection round under `data/rounds/<round id>/`. Its
kind is given by the caller, which knows it (or reads it from the store's `runs.kind`), never parsed from its id.
`Lineage` is the chain of runs a model comes from, read from the store's `parent_run` column: a Stage I run has none,
a selection round's parent is the model that scored it, a Stage II run's the round it trained on, an evaluation's the
training run whose model it scored, so

    Stage I  <-  round 1  <-  Stage II  <-  round 2  <-  Stage II  ...

The store also holds each training run's final evaluation (`final_eval`). A model folder a trainer wrote names its
run in `run.json` (`model_run`), so `salad eval --model FOLDER` records its parent wherever the folder lies. Nothing
here imports torch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from salad_core.errors import InputError
from salad_core.paths import data_dir

FINAL = "final"  # the model after the last step, in the run folder: `salad eval --model` takes it
FOLDERS = {"train": "runs", "select": "rounds"}  # run kind -> its folder under the data directory
PID_FILE = "trainer.pid"  # present while a trainer runs (written by the trainer, read by the dashboard)
CHECKPOINTS = "checkpoints"
MODEL_RUN_FILE = "run.json"  # in a final model's folder: {"run_id": the training run that wrote it}


def pid_alive(path: Path) -> bool:
    """Whether the process whose id a pid file holds is still running."""
    import os

    try:
        os.kill(int(Path(path).read_text().strip()), 0)
    except (OSError, ValueError):
        return False
    return True


def model_run(model_folder: str | Path) -> str | None:
    """The training run that wrote a model folder, as its trainer recorded it there; None for a model no run of
    salad's wrote (the shipped adapter, a folder of a salad older than the record)."""
    path = Path(model_folder) / MODEL_RUN_FILE
    return json.loads(path.read_text())["run_id"] if path.is_file() else None


def checkpoints_in(root: Path) -> list[tuple[int, Path]]:
    """(step, folder) of every complete checkpoint under a run folder, oldest first."""
    folder = Path(root) / CHECKPOINTS
    found = [(int(p.name.split("-")[1]), p) for p in folder.glob("step-[0-9]*")
             if p.name.split("-")[1].isdigit() and (p / "meta.json").is_file()] if folder.is_dir() else []
    return sorted(found)


@dataclass(frozen=True)
class RunDir:
    run_id: str
    kind: str  # the run's kind ('train' or 'select'): its folder under the data directory

    def __post_init__(self) -> None:
        if self.kind not in FOLDERS:
            raise ValueError(f"A run of kind {self.kind!r} has no folder; runs of {', '.join(FOLDERS)} have one.")

    @property
    def root(self) -> Path:
        return data_dir() / FOLDERS[self.kind] / self.run_id

    @property
    def final(self) -> Path:
        return self.root / FINAL

    @property
    def config_file(self) -> Path:
        return self.root / "config.json"

    @property
    def plan_file(self) -> Path:
        """What the trainer derived from the config (train.plan.TrainPlan), beside it."""
        return self.root / "plan.json"

    @property
    def pid_file(self) -> Path:
        return self.root / PID_FILE

    @property
    def machines_file(self) -> Path:
        """One JSON line per start or resume of the run: which machine trained it (see `train.trainer.machine`)."""
        return self.root / "machines.jsonl"

    def machines(self) -> list[dict]:
        path = self.machines_file
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []

    def is_training(self) -> bool:
        """A trainer process runs this run now (started from the command line or by the dashboard)."""
        return pid_alive(self.pid_file)

    def config(self) -> dict:
        return json.loads(self.config_file.read_text())

    def checkpoint(self, step: int) -> Path:
        return self.root / CHECKPOINTS / f"step-{step:06d}"

    def checkpoints(self) -> list[tuple[int, Path]]:
        """(step, folder) of every complete checkpoint, oldest first."""
        return checkpoints_in(self.root)

    def latest_checkpoint(self) -> Path | None:
        found = self.checkpoints()
        return found[-1][1] if found else None

    def pre_decay_checkpoint(self) -> Path | None:
        """The checkpoint before the learning-rate decay: where Stage II starts."""
        marked = [p for _, p in self.checkpoints() if json.loads((p / "meta.json").read_text()).get("pre_decay")]
        return marked[-1] if marked else None


def shown_status(kind: str, run_id: str, status: str) -> str:
    """A run's status as the store holds it, except that a training run the store still calls running whose trainer
    process is gone from this machine (killed, or the machine stopped) reads "interrupted": `salad train --resume
    RUN` continues it."""
    if kind == "train" and status == "running" and not RunDir(run_id, kind).is_training():
        return "interrupted"
    return status


class Lineage:
    """The runs of a store as a family tree (`parent_run`): what a model was trained on and scored with.

    `runs` is `Store.runs()` (every kind)."""

    def __init__(self, runs: pd.DataFrame):
        self.kind = dict(zip(runs["run_id"], runs["kind"]))
        self.parent = {r: p for r, p in zip(runs["run_id"], runs["parent_run"]) if isinstance(p, str) and p}
        self.status = dict(zip(runs["run_id"], runs["status"]))
        self.created = dict(zip(runs["run_id"], runs["created_at"]))

    @classmethod
    def of(cls, store) -> Lineage:
        return cls(store.runs())

    def chain(self, run_id: str) -> list[str]:
        """The run, its parent, the parent's parent, ... back to a Stage I run."""
        out = [run_id]
        while out[-1] in self.parent and self.parent[out[-1]] not in out:
            out.append(self.parent[out[-1]])
        return out

    def stage1(self, run_id: str) -> str:
        """The Stage I run at the start of a run's lineage (the run itself for a Stage I run)."""
        root = self.chain(run_id)[-1]
        if self.kind.get(root) != "train":
            raise InputError(f"run {run_id!r} has no Stage I run behind it (its lineage ends at {root!r}). Fix: name "
                             "a Stage I or Stage II run, or a round made from one.")
        return root

    def rounds_behind(self, run_id: str | None) -> list[str]:
        """The selection rounds behind a model (or a round), newest first: the round it trained on, the round
        behind the model that scored that round, and so on back to Stage I."""
        return [r for r in self.chain(run_id) if self.kind.get(r) == "select"] if run_id else []

    def training_rounds(self, round_id: str) -> list[str]:
        """The rounds a Stage II run on `round_id` trains on: that round and every round behind its scoring model."""
        if self.kind.get(round_id) != "select":
            raise InputError(f"Selection round {round_id!r} is not in the store. Fix: run salad select.")
        return self.rounds_behind(round_id)

    def round_number(self, round_id: str) -> int:
        """1 for a round scored by a Stage I model, 2 for one scored by a Stage II model of round 1, ..."""
        return len(self.rounds_behind(round_id))

    def children(self, run_id: str, kind: str | None = None, status: str | None = None) -> list[str]:
        """The runs whose parent is `run_id`, newest first."""
        found = [r for r, p in self.parent.items() if p == run_id and (kind is None or self.kind.get(r) == kind)
                 and (status is None or self.status.get(r) == status)]
        return sorted(found, key=lambda r: (self.created.get(r), r), reverse=True)
