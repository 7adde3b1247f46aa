"""Stage II end to end on the `nano` world: `salad select` rounds (recorded, seeded, chained) and `salad train
--stage 2` from the Stage I run's pre-decay checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from salad_core.select.clustering import size_bounds
from salad_core.store import Store
from tests.pipeline import salad_result, start_salad

STAGE1 = ["--preset", "nano", "--max-steps", "40", "--batch-size", "2", "--warmup-steps", "2", "--eval-every", "100",
          "--eval-items", "2", "--ckpt-every", "4", "--no-final-eval"]
SELECT = ["--clusters", "4", "--probes", "2", "--budget", "30%", "--gamma", "5"]


def command(args: list[str], data: Path) -> list[str]:
    return [sys.executable, "-m", "salad_core.cli", *args, "--json", "--db", str(data / "s.duckdb")]


def salad(args: list[str], data: Path) -> dict:
    return salad_result(start_salad(args, data, data / "s.duckdb"))


def killed_after(stage: str, args: list[str], data: Path) -> str:
    """Start `salad select`, kill it (and the local Ray it started) once `stage` has finished; its round id."""
    before = set((data / "rounds").iterdir())
    proc = subprocess.Popen(command(args, data), env={**os.environ, "SALAD_DATA": str(data)}, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        started = set((data / "rounds").iterdir()) - before
        if started and (started.pop() / "stages" / f"{stage}.json").exists():
            break
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    (folder,) = set((data / "rounds").iterdir()) - before
    assert (folder / "stages" / f"{stage}.json").exists() and not (folder / "stages" / "selected.json").exists()
    return folder.name


@pytest.fixture(scope="module")
def rounds(tmp_path_factory, ray_cluster):
    data = tmp_path_factory.mktemp("stage2")
    select = [*SELECT, "--ray-address", ray_cluster]  # the rounds join the session's cluster
    stage1 = salad(["train", *STAGE1], data)
    first = salad(["select", "--from", stage1["run_id"], *select, "--map-points", "40"], data)
    # the same config again, killed between two stages and resumed
    again = salad(["select", "--resume", killed_after("probes", ["select", "--from", stage1["run_id"], *select,
                                                                  "--map-points", "0"], data)], data)
    replay, stage2 = (salad_result(p) for p in [  # two trainings at once, a core each
        start_salad(["train", "--stage", "2", "--from", stage1["run_id"], "--round", first["round_id"],
                     "--synthetic-prob", share, "--no-final-eval"], data, data / "s.duckdb", threads=1)
        for share in ("0", "0.5")])
    # one round end to end: selection, then Stage II (in a process of its own) and its final evaluation
    chained = salad(["select", "--from", stage2["run_id"], *select, "--map-points", "0", "--train"], data)
    return {"data": data, "store": Store(data / "s.duckdb"), "stage1": stage1, "first": first, "again": again,
            "replay": replay, "stage2": stage2, "chained": chained}


def test_select_prints_the_documented_object_and_spends_the_budget(rounds, ray_cluster):
    first, store = rounds["first"], rounds["store"]
    assert {"round_id", "gamma", "budget_hours", "selected_hours", "clusters"} <= set(first)
    clusters = first["clusters"]
    assert len(clusters) == 4
    for c in clusters:
        assert {"id", "size", "p_web", "m", "filtered", "p_target", "n_selected", "domain"} <= set(c)
        assert c["p_target"] == 0 or not c["filtered"]
    n_texts = sum(c["size"] for c in clusters)
    lo, hi = size_bounds(n_texts, 4)
    assert all(lo <= c["size"] <= hi for c in clusters)
    assert sum(c["p_web"] for c in clusters) == pytest.approx(1) and sum(c["p_target"] for c in clusters) == pytest.approx(1)
    # P_target ∝ P_web · M^5 over the clusters kept
    kept = [c for c in clusters if not c["filtered"]]
    weights = np.array([c["p_web"] * c["m"] ** 5 for c in kept])
    assert np.allclose([c["p_target"] for c in kept], weights / weights.sum())
    assert first["selected_hours"] >= first["budget_hours"]
    selected = store.selection_texts(first["round_id"], "selected")
    assert len(selected) == sum(c["n_selected"] for c in clusters) > 0
    assert selected["seconds"].sum() / 3600 == pytest.approx(first["selected_hours"])
    assert set(selected["cluster"]) <= {c["id"] for c in kept}
    members = store.selection_texts(first["round_id"], "member")
    assert len(members) == 40 and members["x"].notna().all()  # the UMAP cluster map: a sample, not the pool
    domains = store.selection_domains(first["round_id"])
    assert domains.groupby("cluster")["size"].sum().tolist() == [c["size"] for c in clusters]
    folder = rounds["data"] / "rounds" / first["round_id"]
    docs = [json.loads(line) for line in (folder / "stages" / "selected" / "speech_docs.jsonl").read_text().splitlines()]
    assert sorted(d["key"] for d in docs) == sorted(selected["text_key"])
    config = json.loads((folder / "round.json").read_text())
    assert config["from_run"] == rounds["stage1"]["run_id"] and config["k"] == 4
    assert config["pool_counts"]["unique"] == n_texts
    assert config["ray_address"] == ray_cluster and config["ray_cpus"] == 2  # it joined the cluster: 2 CPUs
    assert store.runs("select").set_index("run_id").loc[first["round_id"], "status"] == "done"


def test_the_same_seed_selects_the_same_texts_even_when_killed_between_stages_and_resumed(rounds):
    store = rounds["store"]
    a = store.selection_texts(rounds["first"]["round_id"], "selected")
    b = store.selection_texts(rounds["again"]["round_id"], "selected")
    assert a["text_key"].tolist() == b["text_key"].tolist()
    assert store.runs("select").set_index("run_id").loc[rounds["again"]["round_id"], "status"] == "done"
    assert [c["m"] for c in rounds["first"]["clusters"]] == [c["m"] for c in rounds["again"]["clusters"]]
    # the second round over the world's pool read the first round's pool stages instead of making them again
    first, again = (json.loads((rounds["data"] / "rounds" / rounds[name]["round_id"] / "round.json").read_text())
                    for name in ("first", "again"))
    assert first["pool_stages_reused"] == [] and again["pool_dir"] == first["pool_dir"]
    assert again["pool_stages_reused"] == ["documents", "unique", "embeddings", first["clustering"]]


def test_stage2_without_synthetic_speech_replays_the_stage1_decay_exactly(rounds):
    """From the pre-decay checkpoint (weights, optimizer, RNG, data position) with the same schedule, Stage II
    drawing no synthetic batch is Stage I's own decay phase, step for step."""
    store = rounds["store"]
    stage1 = store.train_steps(rounds["stage1"]["run_id"]).set_index("step")
    replay = store.train_steps(rounds["replay"]["run_id"]).set_index("step")
    assert rounds["replay"]["steps"] == 8  # the 20 % decay of 40 steps
    tail = stage1.loc[33:40]
    assert np.allclose(replay["lr_adapter"].to_numpy(), tail["lr_adapter"].to_numpy())
    assert np.abs(replay["loss"].to_numpy() - tail["loss"].to_numpy()).max() < 1e-4
    assert replay["lr_adapter"].iloc[-1] == 0 or replay["lr_adapter"].iloc[-1] < replay["lr_adapter"].iloc[0] / 4


def test_stage2_trains_on_the_selected_speech_and_records_its_lineage(rounds):
    store = rounds["store"]
    run = store.runs("train").set_index("run_id").loc[rounds["stage2"]["run_id"]]
    assert run["config"]["stage"] == 2 and run["config"]["round_id"] == rounds["first"]["round_id"]
    assert run["config"]["from_run"] == rounds["stage1"]["run_id"]
    losses = store.train_steps(rounds["stage2"]["run_id"])["loss"].to_numpy()
    replay = store.train_steps(rounds["replay"]["run_id"])["loss"].to_numpy()
    assert not np.allclose(losses, replay)  # synthetic batches were drawn
    assert {"speech_acc", "M"} <= set(store.metrics(rounds["stage2"]["run_id"])["metric"])


def test_a_chained_round_scores_the_stage2_model_and_skips_texts_already_selected(rounds):
    store = rounds["store"]
    before = set(store.selection_texts(rounds["first"]["round_id"], "selected")["text_key"])
    after = set(store.selection_texts(rounds["chained"]["round_id"], "selected")["text_key"])
    assert after and not (before & after)
    config = store.runs("select").set_index("run_id").loc[rounds["chained"]["round_id"], "config"]
    assert config["from_run"] == rounds["stage2"]["run_id"]
    assert [c["m"] for c in rounds["chained"]["clusters"]] != [c["m"] for c in rounds["first"]["clusters"]]


def test_select_train_runs_stage2_on_the_round_and_evaluates_it(rounds):
    store, chained = rounds["store"], rounds["chained"]
    summary = chained["stage2"]
    run = store.runs("train").set_index("run_id").loc[summary["run_id"]]
    assert run["status"] == "done" and run["config"]["stage"] == 2
    assert run["config"]["round_id"] == chained["round_id"]
    assert run["config"]["from_run"] == rounds["stage1"]["run_id"]  # the lineage's Stage I, not the Stage II it scored
    assert run["parent_run"] == chained["round_id"]
    # the config stays as given (no share named); the plan records the share drawn: the selection's share of the hours
    assert run["config"]["synthetic_prob"] is None and 0 < run["plan"]["synthetic_prob"] < 1
    assert run["plan"]["max_steps"] == summary["steps"] == 8 and summary["eval"]["tasks"]
    assert all(task["speech_acc"] is not None for task in summary["eval"]["tasks"].values())


def test_select_train_names_the_round_and_the_command_when_stage2_fails(monkeypatch):
    import subprocess

    from salad_core.cli_training import train_stage2_process
    from salad_core.errors import TrainingError

    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: subprocess.CompletedProcess(cmd, 1, stdout=""))
    with pytest.raises(TrainingError, match="round select-1 failed.*salad train --stage 2 --from train-1 --round "
                                            "select-1 --json --db s.duckdb"):
        train_stage2_process("train-1", "select-1", "s.duckdb")


def test_stage2_on_a_chained_round_trains_on_every_round_of_the_lineage_from_the_stage1_checkpoint(rounds):
    from salad_core.runs import Lineage
    from salad_core.train.stage2 import stage2_of

    store, chained = rounds["store"], rounds["chained"]["round_id"]
    assert Lineage.of(store).training_rounds(chained) == [chained, rounds["first"]["round_id"]]
    config = stage2_of(store, rounds["stage2"]["run_id"], chained)
    assert config.stage == 2 and config.from_run == rounds["stage1"]["run_id"] and config.round_id == chained
    assert config.max_steps == 8 and config.decay_fraction == 1.0 and config.warmup_steps == 0
    assert config.synthetic_prob is None  # by default: the synthetic speech's share of the pooled hours


def test_selected_documents_take_the_voices_in_turn(tmp_path):
    from salad_core.documents import speak_documents
    from salad_core.select.config import SelectConfig

    texts = ["paris is the capital of france .", "lima is the capital of peru .", "a cat has four legs ."]
    voices = SelectConfig(from_run="x", voice="espeak:en-us, espeak:en-gb").voices()
    assert voices == ("espeak:en-us", "espeak:en-gb")
    docs = speak_documents(texts, tmp_path, prefix="sel0", voices=voices, speed=1.0, seed=0, speech_words=(2, 4),
                           text_words=(2, 4), role="selected", encoder="whisper-tiny.en")
    assert all(doc is not None and doc["seconds"] > 0 for doc in docs)
    clips = [json.loads(line) for line in (tmp_path / "clips.jsonl").read_text().splitlines()]
    heard: dict[str, set] = {}
    for clip in clips:
        heard.setdefault(clip["clip_id"].rsplit("-", 1)[0], set()).add(clip["voice"])
    assert heard == {"sel0-00000": {"espeak:en-us"}, "sel0-00001": {"espeak:en-gb"}, "sel0-00002": {"espeak:en-us"}}
    with pytest.raises(ValueError, match="--voice"):
        SelectConfig(from_run="x", voice=" , ")
