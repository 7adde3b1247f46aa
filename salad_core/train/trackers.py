"""Experiment trackers: `salad train --report-to tensorboard|wandb|mlflow` shows a run in the tools researchers
already watch, beside the results store and the dashboard's Training page, through accelerate's trackers.

What a tracker gets: the run's config and plan as its hyperparameters, each training step's record under
`train/<name>` (loss, KL, NLL, CTC, learning rates, gradient norm, tokens/s, speech seconds ...) and each periodic
evaluation's pooled metrics under `eval/<metric>`, at the step they belong to.

Where: under the tracker folder (`--tracker-dir`, default the run folder's `trackers/`). TensorBoard writes its event
files to `<dir>/<run id>/`, so runs given one shared folder sit side by side; W&B its runs to `<dir>/wandb/`, offline
unless WANDB_MODE says otherwise; MLflow to the SQLite store `<dir>/mlflow.db` (3.18 refuses its old file store) unless
MLFLOW_TRACKING_URI names another. W&B's project and MLflow's experiment are `salad`, the run named by its run id.

A resumed run goes on in the same folder and the same tracker run (W&B's id and MLflow's run are found by the run
id). Steps after its checkpoint that the interrupted process had logged are logged again: TensorBoard is told to
hide the old ones (`purge_step`), MLflow keeps both values, W&B applies its own rules to steps it already has.

The packages are optional (tensorboard is in requirements.txt; wandb and mlflow are not): `require` refuses a
tracker whose package is missing before anything is built, with the pinned install that brings it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from salad_core.assets import MissingPackageError

if TYPE_CHECKING:
    from accelerate import Accelerator

    from salad_core.train.config import TrainConfig
    from salad_core.train.plan import TrainPlan

TRACKERS = ("none", "tensorboard", "wandb", "mlflow")
PROJECT = "salad"  # W&B's project and MLflow's experiment
PINS = {"tensorboard": "tensorboard==2.21.0", "wandb": "wandb==0.31.0", "mlflow": "mlflow==3.18.0"}
DEFAULT_INSTALL = ("tensorboard",)  # in requirements.txt: the README's set-up brings it back


def needed_modules(report_to: str) -> tuple[str, ...]:
    """The modules `report_to` imports; MLflow's local SQLite store also needs alembic (mlflow-skinny lacks it)."""
    if report_to == "none":
        return ()
    if report_to == "mlflow" and not os.environ.get("MLFLOW_TRACKING_URI"):
        return ("mlflow", "alembic")
    return (report_to,)


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def require(report_to: str) -> None:
    """Refuse a tracker whose package is not installed (accelerate would drop it without a word)."""
    missing = [m for m in needed_modules(report_to) if not installed(m)]
    if missing:
        note = None if report_to in DEFAULT_INSTALL else "(not part of salad's default install)"
        raise MissingPackageError(missing[0], f"--report-to {report_to}", PINS[report_to], note=note)


def accelerator_options(config: TrainConfig, run_root: Path) -> dict:
    """`Accelerator` keyword arguments of a `TrainConfig`: its tracker and the folder that tracker writes to
    (`tracker_dir`, else the run folder's `trackers/`); nothing for `none`."""
    if config.report_to == "none":
        return {}
    folder = Path(config.tracker_dir).expanduser().resolve() if config.tracker_dir else run_root / "trackers"
    return {"log_with": config.report_to, "project_dir": str(folder)}


def flat(values: dict, prefix: str = "") -> dict:
    """`values` as trackers take hyperparameters: scalars and strings, nested dicts as `outer/inner`, lists of
    scalars joined by commas (as their flags are written), anything else as JSON."""
    out = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flat(value, name + "/"))
        elif isinstance(value, (list, tuple)):
            scalars = all(isinstance(v, (str, int, float, bool)) for v in value)
            out[name] = ",".join(map(str, value)) if scalars else json.dumps(value)
        else:
            out[name] = value
    return out


def init_kwargs(report_to: str, run_id: str, folder: Path, step: int) -> dict:
    """Each tracker's own options: the run id as the run's name, a resumed run's tracker run found again."""
    if report_to == "tensorboard":  # a resumed run hides what the killed process logged after the checkpoint
        return {"tensorboard": {"purge_step": step + 1}}
    if report_to == "wandb":
        mode = {} if os.environ.get("WANDB_MODE") else {"mode": "offline"}
        return {"wandb": {"name": run_id, "id": run_id, "resume": "allow", "dir": str(folder), **mode}}
    return {"mlflow": {"run_name": run_id, "run_id": mlflow_run(folder, run_id),
                       "logging_dir": str(folder / "mlflow-artifacts")}}


def mlflow_run(folder: Path, run_id: str) -> str | None:
    """The MLflow run of `run_id` when a start before this one made it (None: a new one is made); the tracking URI
    is set here, before accelerate's tracker reads it."""
    import mlflow

    if not os.environ.get("MLFLOW_TRACKING_URI"):
        mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
    experiment = mlflow.get_experiment_by_name(os.environ.get("MLFLOW_EXPERIMENT_NAME", PROJECT))
    if experiment is None:
        return None
    found = mlflow.search_runs([experiment.experiment_id], filter_string=f"attributes.run_name = '{run_id}'",
                               output_format="list")
    return found[0].info.run_id if found else None


@contextlib.contextmanager
def tracked(accelerator: Accelerator, config: TrainConfig, run_id: str, plan: TrainPlan, step: int):
    """The run's tracker from the run's start (or resumption at `step`) to its end, done or failed, with the
    `TrainConfig` and the plan as hyperparameters; nothing for `none`. The main process tracks, the others pass."""
    report_to = config.report_to
    if report_to == "none" or not accelerator.is_main_process:
        yield
        return
    folder = Path(accelerator.project_dir)
    folder.mkdir(parents=True, exist_ok=True)
    project = run_id if report_to == "tensorboard" else PROJECT  # TensorBoard's runs are the project's folders
    accelerator.init_trackers(project, config=flat({**config.to_dict(), "plan": plan.to_dict()}),
                              init_kwargs=init_kwargs(report_to, run_id, folder, step))
    failed = True
    try:
        yield
        failed = False
    finally:
        finish(accelerator.trackers, failed)


def finish(trackers: list, failed: bool) -> None:
    """Close the trackers, a failed run marked so where the tracker can say it. Not `accelerator.end_training()`:
    it also destroys the process group, which a multi-process run still uses after training."""
    for tracker in trackers:
        if failed and tracker.name == "wandb":
            tracker.run.finish(exit_code=1)
        elif failed and tracker.name == "mlflow":
            import mlflow

            mlflow.end_run(status="FAILED")
        else:
            tracker.finish()


def log_step(accelerator: Accelerator, record: dict) -> None:
    """A training step's record, its numbers under `train/`."""
    values = {f"train/{k}": float(v) for k, v in record.items() if k != "step" and isinstance(v, (int, float))}
    accelerator.log(values, step=record["step"])


def log_evaluation(accelerator: Accelerator, pooled: dict[str, float], step: int) -> None:
    """A periodic evaluation's pooled metrics (those over all tasks), under `eval/`."""
    values = {f"eval/{k}": float(v) for k, v in pooled.items() if isinstance(v, (int, float))}
    accelerator.log(values, step=step)
