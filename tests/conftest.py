"""Shared test fixtures: `fixture_store`, a small realistic results store built through the public write API.

Two tasks (capitals, chemical symbols; 6 items x 4 options each) scored in every lane as an untrained adapter
scores them: the original LLM and the adapted model on text answer 5 of 6 right, the speech lane picks the option
after the answer on 4 of 6 (accuracy 2/6 per task, within chance's CI) and the no-audio lane (silence heard) picks
as the speech lane does, the cascade answers as the text LLM but mishears one word per question. Outputs are derived from the per-option log-probabilities, metrics from the
outputs (normal-approximation CIs), exactly as a consumer would recompute them; F and M are fixed example values.
Each item has a real 16 kHz WAV file (a short tone: the tests check the player, not the words).
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import jiwer
import numpy as np
import pytest
import soundfile as sf

import salad_core.world  # noqa: F401  (registers the mini worlds' tasks, LLM names and probe documents)
from salad_core.eval.metrics import DIFFERENCES
from salad_core.eval.vocabulary import ALL_TASKS, LANE_ACC_METRIC, LANES
from salad_core.paths import cache_dir
from salad_core.store import Store, audio_key, item_key

# Tests move SALAD_DATA to temporary folders; converted models and synthesized speech stay in the one shared cache.
os.environ.setdefault("SALAD_CACHE", str(cache_dir("").resolve()))

CAPITALS = [("France", "Paris"), ("Japan", "Tokyo"), ("Kenya", "Nairobi"), ("Peru", "Lima"),
            ("Canada", "Ottawa"), ("Egypt", "Cairo")]
SYMBOLS = [("gold", "Au"), ("iron", "Fe"), ("sodium", "Na"), ("potassium", "K"), ("silver", "Ag"), ("lead", "Pb")]
FIXTURE_F, FIXTURE_M = 0.0123, 2.71


def fixture_items() -> list[dict]:
    rows = []
    for task, facts, template in (("capitals", CAPITALS, "The capital of {} is"),
                                  ("symbols", SYMBOLS, "The chemical symbol of {} is")):
        answers = [a for _, a in facts]
        for i, (subject, answer) in enumerate(facts):
            choices = [answers[(i + k) % len(answers)] for k in range(4)]
            rotate = i % 4  # the right answer moves through every position
            choices = choices[-rotate:] + choices[:-rotate] if rotate else choices
            rows.append({"item_id": item_key(task, "1", i), "task": task, "task_version": "1", "doc_id": str(i),
                         "split": "test", "question": template.format(subject), "choices": choices,
                         "answer": choices.index(answer), "domain": "geography" if task == "capitals" else "science"})
    return rows


def lane_pick(item: dict, lane: str, index: int) -> int:
    """The option this lane prefers on the item-th item of its task (see the module docstring)."""
    n = len(item["choices"])
    if lane in ("speech", "noaudio"):  # an untrained adapter hears nothing: silence scores as its speech does
        return item["answer"] if index < 2 else (item["answer"] + 1) % n
    return (item["answer"] + 1) % n if index == 5 else item["answer"]


def _ci(values: list[float]) -> tuple[float, float, float]:
    mean = float(np.mean(values))
    half = 1.96 * math.sqrt(max(mean * (1 - mean), 1e-12) / len(values))
    return mean, mean - half, mean + half


def _metric_rows(task: str, outputs: list[dict]) -> list[dict]:
    correct = {lane: [o["correct"] for o in outputs if o["lane"] == lane] for lane in LANES}
    rows = []
    for lane in LANES:
        value, low, high = _ci(correct[lane])
        rows.append({"task": task, "metric": LANE_ACC_METRIC[lane], "value": value, "ci_low": low, "ci_high": high,
                     "n": len(correct[lane])})
    for name, (a, b) in DIFFERENCES.items():
        diffs = np.array(correct[a], float) - np.array(correct[b], float)
        half = 1.96 * diffs.std() / math.sqrt(len(diffs))
        rows.append({"task": task, "metric": name, "value": diffs.mean(), "ci_low": diffs.mean() - half,
                     "ci_high": diffs.mean() + half, "n": len(diffs)})
    wers = [o["wer"] for o in outputs if o["lane"] == "cascade"]
    rows.append({"task": task, "metric": "cascade_wer", "value": float(np.mean(wers)), "n": len(wers)})
    return rows


def _write_tone(path: Path, seconds: float = 0.4, rate: int = 16000) -> float:
    t = np.arange(int(seconds * rate)) / rate
    sf.write(path, 0.2 * np.sin(2 * np.pi * 440 * t), rate)
    return seconds


def build_fixture_store(path: Path, audio_dir: Path) -> Store:
    store = Store(path)
    items = fixture_items()
    store.upsert_tasks([{"task": "capitals", "version": "1", "domain": "geography", "description": "capital cities",
                         "source": "hand-written fixture"},
                        {"task": "symbols", "version": "1", "domain": "science", "description": "element symbols",
                         "source": "hand-written fixture"}])
    store.upsert_items(items)
    audio_dir.mkdir(parents=True, exist_ok=True)
    wavs = {it["item_id"]: audio_dir / f"{it['task']}-{it['doc_id']}.wav" for it in items}
    store.upsert_audio([{"item_id": it["item_id"], "engine": "tone", "voice": "440hz", "speed": 1.0,
                         "path": str(wavs[it["item_id"]]), "text": it["question"],
                         "duration_s": _write_tone(wavs[it["item_id"]]), "sample_rate": 16000} for it in items])
    model = {"model_id": "smol-untrained", "name": "smol (untrained adapter, seed 0)", "llm": "SmolLM2-135M-Instruct",
             "encoder": "whisper-tiny.en", "adapter": {"layers": 2, "width": 576}, "path": None}
    run_id = store.create_run("eval", {"limit": 6, "voice": "tone:440hz@1"}, model=model,
                              prompt_template="{question} {choice}", seed=0)
    for task in ("capitals", "symbols"):
        task_items = [it for it in items if it["task"] == task]
        predictions, outputs = [], []
        for index, item in enumerate(task_items):
            for lane in LANES:
                pick = lane_pick(item, lane, index)
                for c, choice in enumerate(item["choices"]):
                    predictions.append({"item_id": item["item_id"], "lane": lane, "choice_idx": c,
                                        "logprob": -2.0 - c * 0.1 + (3.0 if c == pick else 0.0),
                                        "n_chars": len(choice) + 1, "n_tokens": 2, "is_greedy": c == pick})
                transcript = item["question"].replace(" is", " his") if lane == "cascade" else None
                outputs.append({"item_id": item["item_id"], "lane": lane, "pred": pick, "pred_norm": pick,
                                "correct": pick == item["answer"], "correct_norm": pick == item["answer"],
                                "audio_id": None if lane in ("base_text", "text") else
                                audio_key(item["item_id"], "tone", "440hz", 1.0),
                                "transcript": transcript,
                                "wer": jiwer.wer(item["question"], transcript) if transcript else None})
        store.add_predictions(run_id, predictions)
        store.add_outputs(run_id, outputs)
        store.add_metrics(run_id, _metric_rows(task, outputs))
    all_outputs = store.query("SELECT lane, correct, wer FROM outputs WHERE run_id = ?", [run_id]).to_dict("records")
    store.add_metrics(run_id, _metric_rows(ALL_TASKS, all_outputs) + [
        {"task": ALL_TASKS, "metric": "F", "value": FIXTURE_F, "n": 120},
        {"task": ALL_TASKS, "metric": "M", "value": FIXTURE_M, "n": 120}])
    store.finish_run(run_id, "done")
    return store


def fixture_run(store: Store) -> str:
    """The newest evaluation run of a store (the fixture store's one run)."""
    return str(store.runs("eval")["run_id"].iloc[0])


@pytest.fixture(scope="session")
def fixture_store_template(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """Built once per test session; tests get copies (`fixture_store`), so they may write to them."""
    root = tmp_path_factory.mktemp("fixture_store")
    return build_fixture_store(root / "salad.duckdb", root / "audio")


@pytest.fixture
def fixture_store(tmp_path: Path, fixture_store_template: Store) -> Store:
    """A finished eval run over 12 items in all four lanes, in a store file of this test's own.

    `fixture_run(fixture_store)` gives the run id; the audio files are shared (read them, do not change them).
    """
    path = tmp_path / "salad.duckdb"
    shutil.copyfile(fixture_store_template.path, path)
    return Store(path)


# The slow lane: the modules that build a world, train, run the real commands, load real pretrained models or drive
# a browser, and every test of the real commands' store (`pipeline`). `pytest -m "not slow"` (docs/testing.md) runs
# the rest: the fast lane.
SLOW_MODULES = {"test_browser", "test_compare", "test_demo", "test_eval", "test_explore", "test_explorer_page",
                "test_one_evaluation", "test_reports", "test_speechllm_eval", "test_stage2", "test_stream_training",
                "test_speech_check", "test_speech_kinds", "test_sweep", "test_trackers", "test_trainer",
                "test_trainer_ddp", "test_trainer_failures", "test_trainer_steps", "test_voices", "test_world",
                "test_world_audit"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.module.__name__.rsplit(".", 1)[-1] in SLOW_MODULES or "pipeline" in item.fixturenames:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[str]:
    """The address of a Ray cluster on this machine with two CPUs, started as docs/selection.md starts a cluster's
    head (`ray start --head`), for the session: the tests' selection rounds join it (`--ray-address`) instead of
    each starting and stopping a Ray of its own."""
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    head = subprocess.Popen([str(Path(sys.executable).with_name("ray")), "start", "--head", "--block", "--port",
                             str(port), "--num-cpus", "2", "--include-dashboard", "false", "--disable-usage-stats"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                            # a head enables token authentication where ~/.ray/auth_token exists, which any local
                            # Ray started before may have written; a test cluster on localhost goes without
                            env={**os.environ, "RAY_AUTH_MODE": "disabled",
                                 "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0"})  # stop at once when told
    written = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"  # once the head is up
    deadline = time.monotonic() + 60
    while head.poll() is None and time.monotonic() < deadline:
        if written.exists() and written.read_text().strip().endswith(f":{port}"):
            break
        time.sleep(0.2)
    else:
        os.killpg(head.pid, signal.SIGKILL)
        pytest.fail("`ray start --head` did not start a cluster within a minute")
    address = written.read_text().strip()
    yield address
    head.terminate()  # `ray start --block` drains the node and stops its processes
    try:
        head.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(head.pid, signal.SIGKILL)
    if written.exists() and written.read_text().strip() == address:
        written.unlink()  # as `ray stop` does: no later `ray.init()` tries to join it


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory: pytest.TempPathFactory, ray_cluster: str):
    """The store and data folder the real commands make on the nano world (tests/pipeline.py), once per session."""
    from tests.pipeline import build_pipeline

    return build_pipeline(tmp_path_factory.mktemp("pipeline"), ray_cluster)


@pytest.fixture
def isolated_app(tmp_path, monkeypatch):
    """For dashboard tests: own data folder, no automatic evaluation job, fresh Streamlit caches."""
    import streamlit as st

    monkeypatch.setenv("SALAD_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("SALAD_NO_AUTOSTART", "1")
    monkeypatch.delenv("SALAD_STORE", raising=False)
    monkeypatch.delenv("SALAD_FIRST_LIMIT", raising=False)
    st.cache_data.clear()


class _StartedJobs(list):
    def __init__(self):
        super().__init__()
        self.options: list[dict] = []


@pytest.fixture
def started(monkeypatch) -> list[tuple[list[str], str]]:
    """Jobs a page would start, recorded instead of started: (arguments, job name); keyword options in
    `started.options`, one dict per call."""
    from salad_core import jobs

    calls = _StartedJobs()

    def record(args, name, **options):
        calls.append((list(args), name))
        calls.options.append(options)
        return f"{name}-recorded"

    monkeypatch.setattr(jobs, "start_job", record)
    return calls

