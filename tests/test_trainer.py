"""Stage I training end to end on the `nano` world: the store, checkpoints, and exact resume after a SIGKILL at any
moment: during the evaluation of a checkpoint step (saved before it), and before the first checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from salad_core.store import Store
from salad_core.world.lm import LM_FOLDER

STEPS, EVAL_EVERY, KILLED_AT = 12, 6, 6  # checkpoints at 3, 6, 9, 10 (the last before the decay) and 12
COMMON = ["--preset", "nano", "--max-steps", str(STEPS), "--batch-size", "2", "--warmup-steps", "2",
          "--eval-every", str(EVAL_EVERY), "--eval-items", "1", "--ckpt-every", "3", "--no-final-eval", "--json"]


def salad(args: list[str], data: Path, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "SALAD_DATA": str(data), "OMP_NUM_THREADS": "1"}  # three at once share the cores
    return subprocess.Popen([sys.executable, "-m", "salad_core.cli", "train", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def finish(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out)


def kill_when(proc: subprocess.Popen, data: Path, moment) -> str:
    """SIGKILL `proc` as soon as `moment(run folder)` holds; returns the run's id (its folder's name)."""
    deadline = time.time() + 900
    while True:
        found = list((data / "runs").glob("train-*")) if (data / "runs").is_dir() else []
        if found and moment(found[0]):
            break
        assert proc.poll() is None and time.time() < deadline, "the run ended before it could be killed"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    return found[0].name


def checkpointed(step: int):
    return lambda run: (run / "checkpoints" / f"step-{step:06d}" / "meta.json").is_file()


def started(run: Path) -> bool:
    """The run is in the store (its trainer writes the pid file after registering it) and has no checkpoint yet."""
    return (run / "trainer.pid").is_file() and not (run / "checkpoints").exists()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An uninterrupted run, a run killed during its step-6 evaluation (right after that step's checkpoint) and one
    killed before its first checkpoint, both resumed; the same seed, one store, each its own data folder."""
    root = tmp_path_factory.mktemp("train")
    db, data = str(root / "store.duckdb"), {name: root / name for name in ("whole", "in_eval", "early")}
    whole = salad([*COMMON, "--db", db], data["whole"])
    killed = {name: kill_when(salad([*COMMON, "--db", db], data[name]), data[name], moment)
              for name, moment in (("in_eval", checkpointed(KILLED_AT)), ("early", started))}
    store = Store(db)
    left = {name: (store.runs().set_index("run_id").loc[run_id, "status"], store.metrics(run_id))
            for name, run_id in killed.items()}
    resumed = {name: salad(["--resume", run_id, "--db", db, "--no-final-eval", "--json"], data[name])
               for name, run_id in killed.items()}
    return finish(whole), {name: finish(p) for name, p in resumed.items()}, left, store, data


def test_a_run_records_its_steps_metrics_and_model(runs):
    whole, _, _, store, data = runs
    assert whole["steps"] == STEPS and whole["tokens"] > 0 and whole["ctc_targets"] == 0  # no alignment aid
    steps = store.train_steps(whole["run_id"])
    assert steps["step"].tolist() == list(range(1, STEPS + 1))
    assert steps["loss"].notna().all() and (steps["lr_adapter"] > 0).all()
    assert steps["tokens"].iloc[-1] == whole["tokens"] == steps["n_text_positions"].sum()
    metrics = store.metrics(whole["run_id"])
    assert {"text_acc", "speech_acc", "F", "M"} <= set(metrics["metric"])
    assert set(metrics["step"]) == {EVAL_EVERY, STEPS}
    run_dir = Path(whole["run_dir"])
    assert (run_dir / "final" / "model.safetensors").exists()
    saved = json.loads((run_dir / "final" / "config.json").read_text())
    assert saved["llm_name"] == f"world:nano/{LM_FOLDER}"  # the run keeps its teacher when the LM recipe changes
    assert json.loads((run_dir / "final" / "run.json").read_text()) == {"run_id": whole["run_id"]}
    marked = [json.loads((p / "meta.json").read_text()) for p in (run_dir / "checkpoints").iterdir()]
    assert any(m["pre_decay"] for m in marked)  # Stage II resumes from the last step before the decay
    run = store.runs("train").set_index("run_id").loc[whole["run_id"]]
    assert run["plan"] == json.loads((run_dir / "plan.json").read_text()) == {
        "max_steps": STEPS, "decay_start": 11, "synthetic_prob": None}


@pytest.mark.parametrize("moment", ["in_eval", "early"])
def test_a_run_killed_at_any_moment_resumes_to_the_uninterrupted_run(runs, moment):
    whole, resumed, left, store, _ = runs
    status, metrics = left[moment]
    assert status == "running"  # as a SIGKILL leaves it: `salad runs` shows it interrupted
    assert metrics.empty  # "in_eval" was killed during its first evaluation: step 6's, after that step's checkpoint
    run_id = resumed[moment]["run_id"]
    assert resumed[moment]["steps"] == STEPS and store.runs().set_index("run_id").loc[run_id, "status"] == "done"
    a = store.train_steps(whole["run_id"]).set_index("step")
    b = store.train_steps(run_id).set_index("step")
    assert list(b.index) == list(range(1, STEPS + 1))
    # Same seed, same data order, optimizer and RNG restored (or, before any checkpoint, all made afresh).
    assert (a["loss"] - b["loss"]).abs().max() < 1e-4, (a["loss"] - b["loss"]).abs().max()
    assert (a["tokens"] == b["tokens"]).all()
    twice = store.query("SELECT task, metric, step, condition FROM metrics WHERE run_id = ? "
                        "GROUP BY ALL HAVING count(*) > 1", [run_id])
    assert twice.empty  # no metric row written twice, the re-evaluated step's included
    ours, theirs = (store.metrics(r).set_index(["task", "metric", "step"])["value"] for r in (run_id, whole["run_id"]))
    assert sorted(ours.index) == sorted(theirs.index)  # step 6 evaluated again on resume, step 12 once
    assert (ours - theirs.loc[ours.index]).abs().max() < 1e-3


def test_a_continued_run_keeps_its_own_model_when_the_preset_changes(runs, monkeypatch):
    from dataclasses import replace

    from salad_core import presets
    from salad_core.train.config import TrainConfig
    from salad_core.train.trainer import DistillTrainer

    whole, _, _, store, data = runs
    monkeypatch.setenv("SALAD_DATA", str(data["whole"]))
    saved = json.loads((Path(whole["run_dir"]) / "final" / "config.json").read_text())
    wider = replace(presets.PRESETS["nano"], adapter_width=2 * saved["adapter_width"])
    monkeypatch.setitem(presets.PRESETS, "nano", wider)  # a later salad changed the preset
    resumed = DistillTrainer(TrainConfig.for_preset("nano"), store, resume=whole["run_id"])
    stage2 = DistillTrainer(TrainConfig.for_preset("nano", stage=2, from_run=whole["run_id"], round_id="r"), store)
    for trainer in (resumed, stage2):
        config = trainer.continued_model_config()
        assert (config.adapter_width, config.llm_name) == (saved["adapter_width"], saved["llm_name"])
    assert DistillTrainer(TrainConfig.for_preset("nano"), store).continued_model_config() is None  # a new run: preset


def test_nano_recipe_runs_the_whole_pipeline_and_prints_one_json_object(tmp_path):
    """`salad train --preset nano --json` with the preset's recipe: training, then the final evaluation of every
    test item in the world's own voices; stdout is exactly the documented object."""
    db = str(tmp_path / "store.duckdb")
    summary = finish(salad(["--preset", "nano", "--json", "--db", db], tmp_path))
    assert set(summary) >= {"run_id", "wall_s", "steps", "tokens", "eval"}
    from salad_core.train.config import TrainConfig
    from salad_core.world import load_world

    assert summary["steps"] == TrainConfig.for_preset("nano").max_steps
    world = load_world("nano")
    tasks = summary["eval"]["tasks"]
    assert set(tasks) == {d.task for d in world.domains}
    for domain in world.domains:
        row = tasks[domain.task]
        assert row["n"] == len(world.task_items(domain.name, "test")) and 0 <= row["speech_acc"] <= 1
        assert row["cascade_acc"] is None  # the final evaluation leaves the ASR cascade out
    assert summary["eval"]["voice"] == "world"
    evals = Store(db).runs("eval")
    assert evals["config"].iloc[0]["model_path"] == str(Path(summary["run_dir"]) / "final")


def test_the_ctc_warm_up_trains_the_adapter_alone_then_distillation_takes_over(tmp_path):
    """With --ctc-warmup-steps the first steps carry only the aid's CTC loss (no KL: the LLM did not run); the run
    records the machine it trained on."""
    db = str(tmp_path / "warm.duckdb")
    summary = finish(salad(["--preset", "nano", "--align", "ctc-soft", "--ctc-warmup-steps", "3", "--max-steps", "6",
                            "--batch-size", "2", "--warmup-steps", "1", "--eval-every", "100", "--eval-items", "2",
                            "--ckpt-every", "100", "--no-final-eval", "--json", "--db", db], tmp_path))
    steps = Store(db).train_steps(summary["run_id"]).set_index("step")
    assert (steps.loc[1:3, "kl"] == 0).all() and (steps.loc[1:3, "ctc"] > 0).all()
    assert (steps.loc[4:6, "kl"] > 0).all() and (steps.loc[4:6, "ctc"] > 0).all()
    # the warm-up's units are CTC targets, counted apart from the text tokens distillation reads
    assert (steps.loc[1:3, "tokens"] == 0).all() and (steps.loc[1:3, "n_text_positions"] == 0).all()
    assert (steps["n_ctc_targets"] > 0).all() and summary["ctc_targets"] == steps["n_ctc_targets"].sum()
    assert summary["tokens"] == steps.loc[4:6, "n_text_positions"].sum() > 0
    machines = [json.loads(line) for line in (Path(summary["run_dir"]) / "machines.jsonl").read_text().splitlines()]
    assert len(machines) == 1 and machines[0]["from_step"] == 0 and machines[0]["device"] == "cpu"
    assert machines[0]["cpu_cores"] >= 1


def test_any_encoder_and_adapter_shape_train_and_are_saved(tmp_path):
    """`salad train --encoder` takes another Whisper-family encoder (Whisper-base, 512 wide, where the preset's
    tiny.en is 384) and the adapter's shape from flags; the saved model rebuilds with both."""
    from salad_core.model.config import SaladConfig

    summary = finish(salad(["--preset", "nano", "--encoder", "whisper-base", "--adapter-layers", "2",
                            "--adapter-width", "48", "--adapter-heads", "3", "--adapter-hz", "25", "--max-steps", "3",
                            "--batch-size", "2", "--warmup-steps", "1", "--eval-every", "3", "--eval-items", "1",
                            "--ckpt-every", "3", "--no-final-eval", "--json", "--db", str(tmp_path / "s.duckdb")],
                           tmp_path))
    saved = SaladConfig.from_pretrained(Path(summary["run_dir"]) / "final")
    assert (saved.encoder_name, saved.encoder_hidden_size) == ("whisper-base", 512)
    assert (saved.adapter_layers, saved.adapter_width, saved.adapter_heads, saved.adapter_stack) == (2, 48, 3, 2)
    losses = Store(str(tmp_path / "s.duckdb")).train_steps(summary["run_id"])["loss"]
    assert summary["steps"] == 3 and len(losses) == 3 and losses.notna().all() and (losses > 0).all()
