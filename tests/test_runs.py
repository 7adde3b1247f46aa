"""Runs have one home: `RunDir` (the folder layout), `Lineage` (Stage I <- round <- Stage II <- evaluation, from the
store's parent_run column), the final evaluation as a store column, and `salad runs` over what the real commands made.
Nothing is parsed from a run's id or a model's path."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from salad_core.runs import Lineage, RunDir, checkpoints_in, model_run, shown_status


def test_a_run_folder_and_its_checkpoints(tmp_path, monkeypatch):
    monkeypatch.setenv("SALAD_DATA", str(tmp_path))
    run = RunDir("train-20261202-000000-abcd", "train")
    assert run.root == tmp_path / "runs" / run.run_id and run.final == run.root / "final"
    assert RunDir("any-id", "select").root == tmp_path / "rounds" / "any-id"  # the kind is given, not read from the id
    with pytest.raises(ValueError, match="kind 'eval' has no folder"):
        RunDir("eval-20261202-000000-abcd", "eval")
    for step, pre in ((100, False), (160, True), (200, False)):
        run.checkpoint(step).mkdir(parents=True)
        (run.checkpoint(step) / "meta.json").write_text(json.dumps({"step": step, "pre_decay": pre}))
    run.checkpoint(300).mkdir()  # no meta.json: an unfinished checkpoint does not count
    assert [s for s, _ in run.checkpoints()] == [100, 160, 200]
    assert run.latest_checkpoint() == run.checkpoint(200) and run.pre_decay_checkpoint() == run.checkpoint(160)
    assert not run.is_training()
    assert checkpoints_in(run.root) == run.checkpoints()


def test_a_model_folder_names_the_run_that_wrote_it_wherever_it_lies(tmp_path):
    copied = tmp_path / "copied" / "renamed"
    copied.mkdir(parents=True)
    assert model_run(copied) is None  # no record: the shipped adapter, or a folder of an older salad
    (copied / "run.json").write_text(json.dumps({"run_id": "train-20261202-000000-abcd"}))
    assert model_run(copied) == "train-20261202-000000-abcd"


def test_a_training_run_whose_trainer_is_gone_reads_interrupted(tmp_path, monkeypatch):
    monkeypatch.setenv("SALAD_DATA", str(tmp_path))
    run = RunDir("train-20261202-000000-abcd", "train")
    run.root.mkdir(parents=True)
    assert shown_status("train", run.run_id, "running") == "interrupted"  # no pid file: the machine stopped
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    run.pid_file.write_text(dead.stdout.strip())  # a trainer that was killed leaves its pid file behind
    assert shown_status("train", run.run_id, "running") == "interrupted"
    run.pid_file.write_text(str(os.getpid()))  # a live process
    assert shown_status("train", run.run_id, "running") == "running"
    run.pid_file.unlink()
    for kind, status in (("train", "done"), ("train", "failed"), ("eval", "running")):
        assert shown_status(kind, run.run_id, status) == status


def test_the_lineage_of_what_the_real_commands_made(pipeline):
    lineage = Lineage.of(pipeline.store)
    assert lineage.chain(pipeline.stage2) == [pipeline.stage2, pipeline.round_id, pipeline.alpha1]
    assert lineage.stage1(pipeline.stage2) == pipeline.alpha1 == lineage.stage1(pipeline.round_id)
    assert lineage.training_rounds(pipeline.round_id) == [pipeline.round_id]
    assert lineage.round_number(pipeline.round_id) == 1
    assert lineage.children(pipeline.alpha1, kind="select") == [pipeline.round_id]
    runs = pipeline.store.runs("train").set_index("run_id")
    evals = pipeline.store.runs("eval").set_index("run_id")
    for run_id in (pipeline.alpha1, pipeline.alpha0, pipeline.stage2):  # the training's own final evaluation ...
        final = runs.loc[run_id, "final_eval"]
        assert evals.loc[final, "parent_run"] == run_id and lineage.chain(final) == [final, *lineage.chain(run_id)]
        assert model_run(pipeline.final(run_id)) == run_id
    assert runs.loc[pipeline.alpha1, "final_eval"] != pipeline.eval_run  # ... not a later one with the cascade
    assert evals.loc[pipeline.eval_run, "parent_run"] == pipeline.alpha1  # `salad eval --model FOLDER` names it too


def test_salad_runs_lists_and_shows(pipeline):
    def salad(*args: str):
        done = subprocess.run([sys.executable, "-m", "salad_core.cli", "runs", *args, "--json", "--db",
                               str(pipeline.store.path)], capture_output=True, text=True, env=pipeline.env(),
                              timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        return json.loads(done.stdout)

    listed = salad("--kind", "train")
    assert {r["run_id"] for r in listed} == {pipeline.alpha1, pipeline.alpha0, pipeline.stage2}
    shown = salad("show", pipeline.stage2)
    assert shown["lineage"] == [pipeline.stage2, pipeline.round_id, pipeline.alpha1] and shown["kind"] == "train"
    assert 0.0 <= shown["metrics"]["speech_acc"] <= 1.0 and shown["config"]["stage"] == 2
    assert shown["config"]["synthetic_prob"] is None and 0 < shown["plan"]["synthetic_prob"] < 1  # the share drawn
    assert shown["notes"] == []
    done = subprocess.run([sys.executable, "-m", "salad_core.cli", "runs", "show", "train-missing", "--db",
                           str(pipeline.store.path)], capture_output=True, text=True, env=pipeline.env(), timeout=120)
    assert done.returncode == 2 and "pick one from `salad runs`" in done.stderr


def test_a_round_is_summarised_as_the_pages_name_it():
    from salad_core.console import run_summary

    assert run_summary("select", {"gamma": 0.0, "strategy": "active", "budget": "5%", "seed": 1}) == \
        "uniform (γ=0) · 5% seed 1"
    assert run_summary("select", {"gamma": 5.0, "strategy": "active", "budget": "20%", "seed": 0}) == \
        "active γ=5 · 20% seed 0"
