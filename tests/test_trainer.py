"""Stage I training end to end on the `nano` world: the store, checkpoints, and exact resume after SIGKILL."""

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

STEPS = 40
COMMON = ["--preset", "nano", "--max-steps", str(STEPS), "--batch-size", "2", "--warmup-steps", "2",
          "--eval-every", "100", "--eval-items", "2", "--ckpt-every", "4", "--no-final-eval", "--json"]


def salad(args: list[str], data: Path, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "SALAD_DATA": str(data)}
    return subprocess.Popen([sys.executable, "-m", "salad_core.cli", "train", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def finish(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An uninterrupted run, and a run killed at its first checkpoint then resumed, with the same seed."""
    data = tmp_path_factory.mktemp("train")
    db = str(data / "store.duckdb")
    whole = finish(salad([*COMMON, "--db", db], data))
    victim = salad([*COMMON, "--db", db], data)
    deadline = time.time() + 900
    while True:
        others = [p for p in (data / "runs").iterdir() if p.name != whole["run_id"]]
        if others and list((others[0] / "checkpoints").glob("step-??????")):
            break
        assert victim.poll() is None and time.time() < deadline, "the run ended before it could be killed"
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    killed_id = others[0].name
    resumed = finish(salad(["--resume", killed_id, "--db", db, "--no-final-eval", "--json"], data))
    return whole, resumed, Store(db), data


def test_a_run_records_its_steps_metrics_and_model(runs):
    whole, _, store, data = runs
    assert whole["steps"] == STEPS and whole["tokens"] > 0
    steps = store.train_steps(whole["run_id"])
    assert steps["step"].tolist() == list(range(1, STEPS + 1))
    assert steps["loss"].notna().all() and (steps["lr_adapter"] > 0).all()
    metrics = store.metrics(whole["run_id"])
    assert {"text_acc", "speech_acc", "F", "M"} <= set(metrics["metric"]) and (metrics["step"] == STEPS).all()
    run_dir = Path(whole["run_dir"])
    assert (run_dir / "final" / "model.safetensors").exists()
    saved = json.loads((run_dir / "final" / "config.json").read_text())
    assert saved["llm_name"] == f"world:nano/{LM_FOLDER}"  # the run keeps its teacher when the LM recipe changes
    marked = [json.loads((p / "meta.json").read_text()) for p in (run_dir / "checkpoints").iterdir()]
    assert any(m["pre_decay"] for m in marked)  # Stage II resumes from the last step before the decay


def test_resume_after_sigkill_matches_the_uninterrupted_run(runs):
    whole, resumed, store, _ = runs
    assert resumed["steps"] == STEPS
    checkpoints = sorted(p.name for p in (Path(resumed["run_dir"]) / "checkpoints").iterdir())
    assert checkpoints  # the resumed run went on checkpointing
    a = store.train_steps(whole["run_id"]).set_index("step")["loss"]
    b = store.train_steps(resumed["run_id"]).set_index("step")["loss"]
    assert list(b.index) == list(range(1, STEPS + 1))
    # Same seed, same data order, optimizer and RNG restored: losses agree to float32 noise.
    assert (a - b).abs().max() < 1e-4, (a - b).abs().max()
    assert store.runs("train").set_index("run_id").loc[resumed["run_id"], "status"] == "done"


def test_a_continued_run_keeps_its_own_model_when_the_preset_changes(runs, monkeypatch):
    from dataclasses import replace

    from salad_core import presets
    from salad_core.train.config import TrainConfig
    from salad_core.train.trainer import DistillTrainer

    whole, _, store, data = runs
    monkeypatch.setenv("SALAD_DATA", str(data))
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


def test_the_ctc_warm_up_trains_the_adapter_alone_then_distillation_takes_over(runs, tmp_path):
    """With --ctc-warmup-steps the first steps carry only the aid's CTC loss (no KL: the LLM did not run); the run
    records the machine it trained on."""
    _, _, _, data = runs
    db = str(tmp_path / "warm.duckdb")
    summary = finish(salad(["--preset", "nano", "--align", "ctc-soft", "--ctc-warmup-steps", "3", "--max-steps", "6",
                            "--batch-size", "2", "--warmup-steps", "1", "--eval-every", "100", "--eval-items", "2",
                            "--ckpt-every", "100", "--no-final-eval", "--json", "--db", db], data))
    steps = Store(db).train_steps(summary["run_id"]).set_index("step")
    assert (steps.loc[1:3, "kl"] == 0).all() and (steps.loc[1:3, "ctc"] > 0).all()
    assert (steps.loc[4:6, "kl"] > 0).all() and (steps.loc[4:6, "ctc"] > 0).all()
    machines = [json.loads(line) for line in (Path(summary["run_dir"]) / "machines.jsonl").read_text().splitlines()]
    assert len(machines) == 1 and machines[0]["from_step"] == 0 and machines[0]["device"] == "cpu"
    assert machines[0]["cpu_cores"] >= 1
