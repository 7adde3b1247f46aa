"""`salad train --report-to`: nano trainings shown in TensorBoard (its scalars equal to the store's steps, also across
a SIGKILL and resume), W&B offline and MLflow where those optional packages are installed; `none` writes no tracker
folder; a tracker whose package is missing is one line and exit code 2, before anything is built."""

from __future__ import annotations

import contextlib
import importlib.util
import os
from pathlib import Path
from unittest import mock

import pytest

from salad_core.cli import main
from salad_core.eval.vocabulary import ALL_TASKS
from salad_core.store import Store
from salad_core.train import trackers
from tests.test_trainer import finish, kill_when, salad

STEPS, KILLED_AT = 4, 3  # checkpoints at 2 and 4; the TensorBoard run is killed once it has logged step 3
COMMON = ["--preset", "nano", "--max-steps", str(STEPS), "--batch-size", "2", "--warmup-steps", "1",
          "--eval-every", str(STEPS), "--eval-items", "1", "--ckpt-every", "2", "--no-final-eval", "--json"]
OPTIONAL = [name for name in ("wandb", "mlflow")
            if all(importlib.util.find_spec(m) for m in trackers.needed_modules(name))]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One run per tracker, at once, each in its own data folder and store; TensorBoard's killed by SIGKILL once it
    has logged a step past its checkpoint, then resumed. W&B runs without WANDB_MODE: salad's default keeps it
    offline."""
    root = tmp_path_factory.mktemp("trackers")
    data = {name: root / name for name in ("tensorboard", "none", *OPTIONAL)}
    db = {name: str(folder / "store.duckdb") for name, folder in data.items()}
    with mock.patch.dict(os.environ):
        os.environ.pop("WANDB_MODE", None)
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        started = {name: salad([*COMMON, "--report-to", name, "--db", db[name]], data[name])
                   for name in data if name != "tensorboard"}
        killed = kill_when(salad([*COMMON, "--report-to", "tensorboard", "--db", db["tensorboard"]],
                                 data["tensorboard"]), data["tensorboard"], logged(KILLED_AT))
        started["tensorboard"] = salad(["--resume", killed, "--db", db["tensorboard"], "--no-final-eval", "--json"],
                                       data["tensorboard"])
    return {name: (finish(proc), Store(db[name])) for name, proc in started.items()}


def scalars(folder: Path, tag: str) -> list[tuple[int, float]]:
    """(step, value) of a tag in a TensorBoard run folder, as TensorBoard shows them (none before the folder is)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    if not folder.is_dir():
        return []
    events = EventAccumulator(str(folder))
    events.Reload()
    return [(e.step, e.value) for e in events.Scalars(tag)] if tag in events.Tags()["scalars"] else []


def logged(step: int):
    """The moment a run's TensorBoard events hold training step `step` (for `kill_when`)."""
    return lambda run: any(s == step for s, _ in scalars(run / "trackers" / run.name, "train/loss"))


def store_losses(summary: dict, store: Store) -> list[tuple[int, float]]:
    steps = store.train_steps(summary["run_id"])
    assert steps["step"].tolist() == list(range(1, STEPS + 1))
    return list(zip(steps["step"].tolist(), steps["loss"].tolist()))


def assert_same(shown: list[tuple[int, float]], expected: list[tuple[int, float]], rel: float) -> None:
    """The same steps, each once, with the same values."""
    assert [s for s, _ in shown] == [s for s, _ in expected]
    assert [v for _, v in shown] == pytest.approx([v for _, v in expected], rel=rel)


def test_tensorboard_holds_every_step_as_the_store_does_across_a_resume(runs):
    summary, store = runs["tensorboard"]
    folder = Path(summary["run_dir"]) / "trackers" / summary["run_id"]
    # the step the killed process logged after its checkpoint is hidden (purge_step), the resumed run's shown
    assert_same(scalars(folder, "train/loss"), store_losses(summary, store), rel=1e-6)  # float32 in TensorBoard
    metrics = store.metrics(summary["run_id"]).query(f"task == '{ALL_TASKS}' and metric == 'speech_acc'")
    assert_same(scalars(folder, "eval/speech_acc"), list(zip(metrics["step"], metrics["value"])), rel=1e-6)
    for tag in ("train/lr_adapter", "train/grad_norm", "train/tokens_per_s", "train/speech_s", "eval/F"):
        assert [s for s, _ in scalars(folder, tag)] == ([STEPS] if tag.startswith("eval") else [1, 2, 3, 4])
    assert sorted(folder.glob("*/hparams.yml"))  # the config and plan, as hyperparameters, at each start


def test_report_to_none_writes_no_tracker_folder(runs):
    summary, _ = runs["none"]
    assert summary["steps"] == STEPS
    assert not (Path(summary["run_dir"]) / "trackers").exists()


@pytest.mark.skipif("wandb" not in OPTIONAL, reason="wandb is not installed (optional)")
def test_wandb_writes_an_offline_run_by_default(runs):
    summary, _ = runs["wandb"]
    offline = list((Path(summary["run_dir"]) / "trackers" / "wandb").glob(f"offline-run-*-{summary['run_id']}"))
    assert len(offline) == 1 and (offline[0] / f"run-{summary['run_id']}.wandb").is_file()


@pytest.mark.skipif("mlflow" not in OPTIONAL, reason="mlflow is not installed (optional)")
def test_mlflow_holds_every_step_in_its_local_store(runs):
    import mlflow

    summary, store = runs["mlflow"]
    client = mlflow.MlflowClient(f"sqlite:///{Path(summary['run_dir']) / 'trackers' / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("salad").experiment_id])
    assert run.info.run_name == summary["run_id"] and run.info.status == "FINISHED"
    assert run.data.params["report_to"] == "mlflow" and run.data.params["plan/max_steps"] == str(STEPS)
    history = [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "train/loss")]
    assert_same(history, store_losses(summary, store), rel=1e-12)


@pytest.mark.skipif("mlflow" not in OPTIONAL, reason="mlflow is not installed (optional)")
def test_a_failed_start_is_marked_failed_and_its_resumption_goes_on_in_the_same_mlflow_run(tmp_path, monkeypatch):
    import mlflow
    from accelerate import Accelerator

    from salad_core.train.config import TrainConfig
    from salad_core.train.plan import TrainPlan

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    config = TrainConfig.for_preset("nano", report_to="mlflow", tracker_dir=str(tmp_path))
    statuses = []
    for step, fails in ((0, True), (2, False)):  # the run fails at step 1, resumes from a checkpoint at step 2
        accelerator = Accelerator(**trackers.accelerator_options(config, tmp_path / "unused"))
        with (pytest.raises(RuntimeError) if fails else contextlib.nullcontext(),
              trackers.tracked(accelerator, config, "train-x", TrainPlan(4, 4), step)):
            trackers.log_step(accelerator, {"step": step + 1, "loss": 1.0 + step})
            if fails:
                raise RuntimeError("the run failed")
        statuses.append([r.info.status for r in mlflow.search_runs(experiment_names=["salad"], output_format="list")])
    assert statuses == [["FAILED"], ["FINISHED"]]  # one MLflow run, named by the run id
    (run,) = mlflow.search_runs(experiment_names=["salad"], output_format="list")
    history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "train/loss")
    assert run.info.run_name == "train-x" and [(m.step, m.value) for m in history] == [(1, 1.0), (3, 3.0)]
    assert not (tmp_path / "unused").exists()


@pytest.mark.parametrize("tracker, note", [("mlflow", "(not part of salad's default install)"),
                                           ("tensorboard", "(or rerun the README's set-up command)")])
def test_a_tracker_not_installed_is_one_line_and_exit_code_2(tracker, note, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SALAD_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setattr(trackers, "installed", lambda module: module != tracker)
    db = tmp_path / "store.duckdb"
    assert main(["train", "--preset", "nano", "--report-to", tracker, "--db", str(db)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"salad train: error: --report-to {tracker} needs the package '{tracker}', which is not installed. "
                   f"Fix: pip install {trackers.PINS[tracker]}  {note}.")
    assert Store(db).runs().empty and not (tmp_path / "data" / "runs").exists()  # nothing started


def test_hyperparameters_are_flat_scalars_and_wandb_mode_is_left_to_its_variable(monkeypatch, tmp_path):
    plan = {"max_steps": 4, "speech": [{"kind": "jsonl", "weight": 1.0}]}
    assert trackers.flat({"speech_span_words": [5, 15], "llm": None, "plan": plan}) == {
        "speech_span_words": "5,15", "llm": None, "plan/max_steps": 4,
        "plan/speech": '[{"kind": "jsonl", "weight": 1.0}]'}
    monkeypatch.delenv("WANDB_MODE", raising=False)
    assert trackers.init_kwargs("wandb", "train-x", tmp_path, 0)["wandb"]["mode"] == "offline"
    monkeypatch.setenv("WANDB_MODE", "online")
    assert "mode" not in trackers.init_kwargs("wandb", "train-x", tmp_path, 0)["wandb"]
